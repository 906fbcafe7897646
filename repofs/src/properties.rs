//! Property tests over hostile input (issue 13): every parser of data an
//! upstream or a user controls returns a value or an error on any input,
//! never panics; dpkg's version order is a total order. proptest generates
//! the inputs (bounded case counts keep CI short; `PROPTEST_CASES=100000`
//! runs longer, as docs/performance.md's fuzzing note says).

use proptest::prelude::*;

use crate::debian::relation::check_relation;
use crate::debian::version::Version;

/// Text shaped like control data: field names, colons, continuation
/// lines, blank lines, brackets, operators and odd bytes.
fn controlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("Package: ".to_string()),
            Just("Version: ".to_string()),
            Just("Depends: ".to_string()),
            Just("\n".to_string()),
            Just("\n ".to_string()),
            Just("\n\n".to_string()),
            Just(":".to_string()),
            Just("(>= ".to_string()),
            Just(")".to_string()),
            Just(" | ".to_string()),
            Just(", ".to_string()),
            Just("[amd64]".to_string()),
            Just("-----BEGIN PGP SIGNED MESSAGE-----\n".to_string()),
            "[a-z0-9.+~:-]{0,8}",
            "\\PC{0,4}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn version_text() -> impl Strategy<Value = String> {
    "([0-9]{1,2}:)?[0-9][0-9a-z.+~]{0,6}(-[0-9a-z.+~]{1,4})?"
}

/// 512 cases a property in CI; `PROPTEST_CASES=N` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn deb822_never_panics(text in controlish()) {
        let _ = crate::deb822::parse_paragraphs(&text);
        let _ = crate::deb822::strip_cleartext_signature(&text);
        let _ = crate::index::read::release::parse_release(&text);
    }

    #[test]
    fn control_paragraphs_never_panic(text in controlish()) {
        if let Ok(p) = crate::deb822::parse_single(&text) {
            let _ = crate::debian::BinaryControl::from_paragraph(p.clone());
            let _ = crate::debian::SourceControl::from_paragraph(p.clone());
            let _ = crate::debian::ChangesControl::from_paragraph(p);
        }
    }

    #[test]
    fn relations_never_panic(text in controlish()) {
        let _ = check_relation("Depends", &text);
        let _ = check_relation("Build-Depends", &text);
    }

    #[test]
    fn deb_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048), arch_head in any::<bool>()) {
        let mut data = if arch_head { b"!<arch>\n".to_vec() } else { Vec::new() };
        data.extend(bytes);
        let _ = crate::debian::deb::read_control(&data[..]);
    }

    #[test]
    fn openpgp_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024), text in controlish()) {
        let _ = crate::sign::Keyring::from_bytes(&bytes);
        let _ = crate::sign::SigningKey::from_bytes(&bytes);
        let _ = crate::sign::SigningKeys::from_bytes(&bytes);
        let _ = crate::sign::cleartext_signers(text.as_bytes());
        let _ = crate::sign::cleartext_signers(&bytes);
        if let Ok(k) = crate::sign::Keyring::from_bytes(&bytes) {
            let _ = k.verify_cleartext(text.as_bytes(), std::time::SystemTime::now());
        }
    }

    #[test]
    fn package_specs_parse_or_err_and_print_back(text in "[a-z0-9.+~:=/-]{0,16}|\\PC{0,16}") {
        if let Ok(spec) = crate::model::edit::PackageSpec::parse(&text) {
            prop_assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn any_version_text_parses_or_errs(text in "\\PC{0,16}") {
        let _ = Version::parse(&text);
    }

    #[test]
    fn version_order_is_a_total_order(a in version_text(), b in version_text(), c in version_text()) {
        let (Ok(a), Ok(b), Ok(c)) = (Version::parse(&a), Version::parse(&b), Version::parse(&c)) else {
            return Ok(());
        };
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c, "{:?} <= {:?} <= {:?}", a, b, c);
        }
        prop_assert_eq!(a.cmp(&a), std::cmp::Ordering::Equal);
    }
}

/// Release-shaped text: the fields the mirror acts on, checksum lines
/// with odd hashes, sizes and paths, and dates in every shape.
fn releaseish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("Components: main contrib\n".to_string()),
            Just("Architectures: amd64 all\n".to_string()),
            Just("Acquire-By-Hash: yes\n".to_string()),
            Just("No-Support-for-Architecture-all: Packages\n".to_string()),
            Just("SHA256:\n".to_string()),
            Just("MD5Sum:\n".to_string()),
            "Valid-Until: [A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} [A-Z+0-9]{3,5}\n",
            "Date: \\PC{0,30}\n",
            " [0-9a-f]{0,64} [0-9]{0,22} (main|contrib|\\.\\.)/(binary-(amd64|all)|source|i18n|debian-installer/binary-amd64)/(Packages|Sources|Translation-en)(\\.xz|\\.gz|\\.bz2)?\n",
            " \\PC{0,20}\n",
            "\\PC{0,12}",
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn release_parsing_and_index_planning_never_panic(text in releaseish()) {
        if let Ok(release) = crate::index::read::release::parse_release(&text) {
            plan_and_check(&release);
        }
    }

    #[test]
    fn index_readers_never_panic(text in controlish()) {
        let _ = crate::index::read::packages::parse_packages(&text);
        let _ = crate::index::read::packages::parse_sources(&text);
        let _ = crate::index::read::stanzas::stanzas(&text).count();
    }

    #[test]
    fn decompression_never_panics_nor_passes_its_limit(bytes in proptest::collection::vec(any::<u8>(), 0..2048), which in 0..4usize) {
        use crate::index::read::plan::Compression;
        let c = [Compression::Xz, Compression::Gzip, Compression::Bzip2, Compression::None][which];
        if let Ok(out) = crate::index::read::packages::decompress(&bytes, c, 4096) {
            prop_assert!(out.len() <= 4096);
        }
    }
}

fn plan_and_check(release: &crate::index::read::release::Release) {
    use crate::index::read::plan::{plan_indices, Wanted};
    let (comps, archs, langs) = (
        vec!["main".to_string()],
        vec!["amd64".to_string()],
        vec!["en".to_string()],
    );
    let wanted = Wanted {
        components: &comps,
        architectures: &archs,
        sources: true,
        translations: &langs,
        udebs: true,
    };
    let _ = crate::index::read::release::check_release(release, &wanted, jiff::Timestamp::now());
    let _ = plan_indices(release, &wanted);
}

/// Every parser, on one input. What a parser accepts it must also be able
/// to hand to the next step without panicking.
fn feed(bytes: &[u8]) {
    let _ = crate::debian::deb::read_control(bytes);
    let _ = crate::sign::cleartext_signers(bytes);
    let _ = crate::deb822::parse_single_bytes(bytes);
    for c in [
        crate::index::read::plan::Compression::Xz,
        crate::index::read::plan::Compression::Gzip,
    ] {
        let _ = crate::index::read::packages::decompress(bytes, c, 1 << 20);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let text = crate::deb822::strip_cleartext_signature(text).unwrap_or_else(|_| text.to_string());
    let _ = crate::deb822::parse_paragraphs(&text);
    if let Ok(p) = crate::deb822::parse_single(&text) {
        for f in p.fields() {
            let _ = check_relation(&f.name, &f.value);
        }
        let _ = crate::debian::BinaryControl::from_paragraph(p.clone());
        let _ = crate::debian::SourceControl::from_paragraph(p.clone());
        let _ = crate::debian::ChangesControl::from_paragraph(p);
    }
    if let Ok(release) = crate::index::read::release::parse_release(&text) {
        plan_and_check(&release);
    }
    let _ = crate::index::read::packages::parse_packages(&text);
    let _ = crate::index::read::packages::parse_sources(&text);
}

/// The input itself, cut at 64 points, and `flips` copies with one byte
/// changed (positions and values from a fixed generator: the same inputs
/// every run, so a failure reproduces).
fn mutations(data: &[u8], flips: usize) -> Vec<Vec<u8>> {
    let mut out = vec![data.to_vec()];
    if data.is_empty() {
        return out;
    }
    for k in 0..64 {
        out.push(data[..data.len() * k / 64].to_vec());
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ data.len() as u64;
    for _ in 0..flips {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pos = (state >> 33) as usize % data.len();
        let mut d = data.to_vec();
        d[pos] = match state & 3 {
            0 => b'\n',
            1 => b':',
            2 => b' ',
            _ => (state >> 24) as u8,
        };
        out.push(d);
    }
    out
}

/// The checked-in corpus (`repofs/corpus/`): real upstream files (a
/// Debian InRelease and Packages, our own Release, Sources and .deb) and
/// the hostile inputs issue 13 found, each whole, truncated and with
/// single-byte changes, through every parser. CI runs 256 changes a file;
/// `HALO_CORPUS_FLIPS=100000` runs longer. A finding becomes a corpus file.
#[test]
fn the_corpus_and_its_mutations_never_panic() {
    let flips = std::env::var("HALO_CORPUS_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files = 0;
    for kind in ["release", "packages", "sources", "control", "deb"] {
        for entry in std::fs::read_dir(root.join(kind)).expect("corpus directory") {
            let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
            for input in mutations(&data, flips) {
                feed(&input);
            }
            files += 1;
        }
    }
    assert!(files >= 9, "only {files} corpus files");
}

/// The corpus is what it claims to be: its real files parse as what they
/// are, and its hostile ones are refused. Without this, a corpus of files
/// every parser rejects at byte 0 would prove nothing.
#[test]
fn the_corpus_holds_real_and_hostile_inputs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("corpus file");
    let inrelease = read("release/bookworm-updates.InRelease");
    let release = crate::index::read::release::parse_release(
        &crate::deb822::strip_cleartext_signature(&inrelease).expect("signed"),
    )
    .expect("Debian's InRelease parses");
    assert!(release.components.iter().any(|c| c == "main"));
    assert!(release.sha256.len() > 50);
    let packages = read("packages/bookworm-updates-main-amd64.Packages");
    assert!(
        crate::index::read::packages::parse_packages(&packages)
            .expect("Packages")
            .len()
            >= 10
    );
    let sources = read("sources/halo-hello.Sources");
    assert_eq!(
        crate::index::read::packages::parse_sources(&sources)
            .expect("Sources")
            .len(),
        1
    );
    let deb = std::fs::read(root.join("deb/halo-hello_1.1_amd64.deb")).expect("deb");
    let control = crate::debian::deb::read_control(&deb[..]).expect(".deb control");
    assert_eq!(control.get("Package"), Some("halo-hello"));
    let hostile =
        crate::deb822::parse_single(&read("control/bad-relations.control")).expect("paragraph");
    assert!(check_relation("Depends", hostile.get("Depends").expect("Depends")).is_err());
    assert!(check_relation(
        "Pre-Depends",
        hostile.get("Pre-Depends").expect("Pre-Depends")
    )
    .is_err());
    assert!(crate::deb822::parse_single(&read("control/duplicates.control")).is_err());
}
