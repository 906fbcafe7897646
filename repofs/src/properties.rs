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
