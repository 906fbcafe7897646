//! PURE: upstream `Packages` and `Sources` indices: decompression, and a
//! zero-copy parse into records that borrow the index text (a 50 MB
//! Packages index is read in one pass, one small struct per stanza).
//!
//! Only the fields the mirror needs are picked out; the stanza text itself
//! is kept byte for byte (it becomes the stanza we serve). Pool paths from
//! the upstream are checked to be plain relative paths: they become paths
//! of the exported tree and of the mount.
//!
//! A large index is cut at empty lines into pieces parsed on every core
//! (rayon); the records and the first error, with its line, are exactly
//! those of a parse in one pass.

use std::io::Read;

use rayon::prelude::*;

use super::plan::Compression;
use super::stanzas::{split_at_blank_lines, Stanza, Stanzas};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("cannot decompress: {0}")]
    Decompress(String),
    #[error("decompresses to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("is not UTF-8 text")]
    NotUtf8,
    #[error("stanza at line {line}: no {field} field")]
    MissingField { line: usize, field: &'static str },
    #[error("stanza at line {line}: {field} {value:?} is not valid")]
    BadField {
        line: usize,
        field: &'static str,
        value: String,
    },
    #[error("stanza at line {line}: pool path {path:?} is not a plain relative path under the repository")]
    UnsafePath { line: usize, path: String },
    /// A relationship field apt cannot parse: serving the stanza would
    /// make `apt-get update` fail for every client of the dist.
    #[error("stanza at line {line}: {error}")]
    Relation {
        line: usize,
        error: crate::debian::relation::RelationError,
    },
}

impl IndexError {
    /// The same error for a piece of an index that starts `lines` lines in.
    fn shifted(mut self, lines: usize) -> Self {
        match &mut self {
            IndexError::MissingField { line, .. }
            | IndexError::BadField { line, .. }
            | IndexError::UnsafePath { line, .. }
            | IndexError::Relation { line, .. } => *line += lines,
            IndexError::Decompress(_) | IndexError::TooLarge { .. } | IndexError::NotUtf8 => {}
        }
        self
    }
}

/// The largest decompressed index accepted when the Release does not list
/// the uncompressed size: Debian's biggest `Packages` is about 50 MB, so a
/// gigabyte is a broken or hostile upstream, not a big archive.
pub const MAX_INDEX_SIZE: u64 = 1 << 30;

/// Decompresses an index as fetched, refusing output beyond `limit` bytes:
/// the compressed file's hash is checked before this, but a signed
/// upstream can still serve a decompression bomb, and the store must not
/// run out of memory for it.
pub fn decompress(
    data: &[u8],
    compression: Compression,
    limit: u64,
) -> Result<Vec<u8>, IndexError> {
    let reader: Box<dyn Read + '_> = match compression {
        Compression::None if data.len() as u64 > limit => {
            return Err(IndexError::TooLarge { limit })
        }
        Compression::None => return Ok(data.to_vec()),
        Compression::Bzip2 => {
            return Err(IndexError::Decompress("bzip2 indices are not read".into()))
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(data)),
    };
    let expect = (data.len() as u64).saturating_mul(6).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(expect).unwrap_or(0));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| IndexError::Decompress(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(IndexError::TooLarge { limit });
    }
    Ok(out)
}

/// One binary package of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub filename: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub depends: Option<&'a str>,
    pub pre_depends: Option<&'a str>,
    pub provides: Option<&'a str>,
    /// `Source: name` or `Source: name (version)`, when it differs from the package.
    pub source: Option<&'a str>,
    /// The whole stanza, ending with a newline, without the blank separator.
    pub stanza: &'a str,
    /// 1-based line of the stanza's first field.
    pub line: usize,
}

impl PackageRecord<'_> {
    /// The source package's name.
    pub fn source_name(&self) -> &str {
        self.source
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(self.package)
    }
}

/// One file of a source package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
}

/// One source package of a `Sources` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub directory: &'a str,
    /// From `Checksums-Sha256`, the `.dsc` first.
    pub files: Vec<SourceFile<'a>>,
    pub stanza: &'a str,
    pub line: usize,
}

impl<'a> Stanza<'a> {
    fn need(&self, name: &'static str) -> Result<&'a str, IndexError> {
        self.need_value(name, self.get(name))
    }

    /// `value` (the field `name` as found) when present and not empty.
    fn need_value(
        &self,
        name: &'static str,
        value: Option<&'a str>,
    ) -> Result<&'a str, IndexError> {
        match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(IndexError::MissingField {
                line: self.line,
                field: name,
            }),
        }
    }

    fn single(&self, name: &'static str) -> Result<&'a str, IndexError> {
        self.single_value(name, self.get(name))
    }

    /// As [`Stanza::need_value`], refusing white space inside.
    fn single_value(
        &self,
        name: &'static str,
        value: Option<&'a str>,
    ) -> Result<&'a str, IndexError> {
        let v = self.need_value(name, value)?;
        // One pass over the bytes without a branch each (five such fields
        // a stanza): the white space of `char::is_whitespace` in ASCII is
        // tab, LF, VT, FF, CR, space; a non-ASCII byte hands the value to
        // the Unicode test.
        let (ascii_space, non_ascii) = v.bytes().fold((false, false), |(sp, na), b| {
            (
                sp | (b.wrapping_sub(b'\t') < 5) | (b == b' '),
                na | !b.is_ascii(),
            )
        });
        let spaced = if non_ascii {
            v.contains(char::is_whitespace)
        } else {
            ascii_space
        };
        if spaced {
            return Err(self.bad(name, v));
        }
        Ok(v)
    }

    fn check_relations(&self) -> Result<(), IndexError> {
        crate::debian::relation::check_relations(self.fields.iter().copied()).map_err(|error| {
            IndexError::Relation {
                line: self.line,
                error,
            }
        })
    }

    fn bad(&self, field: &'static str, value: &str) -> IndexError {
        IndexError::BadField {
            line: self.line,
            field,
            value: value.to_string(),
        }
    }
}

/// A pool path the upstream gives must be relative, plain and outside
/// `dists/`: it becomes a path of our tree.
pub fn is_safe_pool_path(path: &str) -> bool {
    // On bytes: `/`, `.`, `\` and NUL are ASCII, so no character of a
    // multi-byte sequence is mistaken for them.
    let b = path.as_bytes();
    !b.is_empty()
        && !b.starts_with(b"dists/")
        && memchr::memchr2(b'\\', 0, b).is_none()
        && b.split(|&c| c == b'/')
            .all(|seg| !seg.is_empty() && seg != b"." && seg != b"..")
}

/// `is_ascii_hexdigit` of every byte, as a table.
const HEX_DIGIT: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_hexdigit();
        i += 1;
    }
    t
};

fn check_sha256(st: &Stanza<'_>, field: &'static str, v: &str) -> Result<(), IndexError> {
    // Every byte looked at, without a branch each (a digest of 64 per
    // stanza, 4 MB of them in Debian's main).
    if v.len() == 64 && v.bytes().fold(true, |ok, b| ok & HEX_DIGIT[usize::from(b)]) {
        Ok(())
    } else {
        Err(st.bad(field, v))
    }
}

/// Indices smaller than this are parsed in one piece (splitting would
/// cost more than it saves).
const PARALLEL_MIN: usize = 1 << 20;

/// A record that knows its line (shifted when its piece is placed).
trait Lined {
    fn shift(&mut self, lines: usize);
}

impl Lined for PackageRecord<'_> {
    fn shift(&mut self, lines: usize) {
        self.line += lines;
    }
}

impl Lined for SourceRecord<'_> {
    fn shift(&mut self, lines: usize) {
        self.line += lines;
    }
}

/// Every stanza of `text` through `record`, in order; stops at the first
/// error. Returns the records and the lines read.
fn parse_piece<'a, R>(
    text: &'a str,
    record: fn(&Stanza<'a>) -> Result<R, IndexError>,
) -> Result<(Vec<R>, usize), IndexError> {
    let mut reader = Stanzas::new(text);
    // Room for a stanza per 512 bytes (Debian's average 790): the vector
    // is not copied as it grows, and room never used is never touched.
    let mut out = Vec::with_capacity(text.len() / 512 + 1);
    // One field vector for every stanza of the piece.
    let mut fields = Vec::with_capacity(32);
    while let Some((stanza, line)) = reader.next_into(&mut fields) {
        let st = Stanza {
            text: stanza,
            line,
            fields: std::mem::take(&mut fields),
        };
        out.push(record(&st)?);
        fields = st.fields;
    }
    Ok((out, reader.lines_read()))
}

/// `text` parsed in `pieces` pieces on the rayon pool, joined in order;
/// the error is the first in the text, with its line in the whole text.
fn parse_in_pieces<'a, R: Lined + Send>(
    text: &'a str,
    pieces: usize,
    record: fn(&Stanza<'a>) -> Result<R, IndexError>,
) -> Result<Vec<R>, IndexError> {
    let parts = split_at_blank_lines(text, pieces);
    if parts.len() <= 1 {
        return parse_piece(text, record).map(|(records, _)| records);
    }
    let parsed: Vec<_> = parts
        .into_par_iter()
        .map(|piece| parse_piece(piece, record))
        .collect();
    let total = parsed
        .iter()
        .map(|p| p.as_ref().map_or(0, |(r, _)| r.len()))
        .sum();
    let mut out = Vec::with_capacity(total);
    let mut lines = 0;
    for piece in parsed {
        let (mut records, read) = piece.map_err(|e| e.shifted(lines))?;
        if lines > 0 {
            records.iter_mut().for_each(|r| r.shift(lines));
        }
        out.append(&mut records);
        lines += read;
    }
    Ok(out)
}

/// How many pieces to cut an index of `len` bytes into.
fn pieces_for(len: usize) -> usize {
    if len < PARALLEL_MIN {
        1
    } else {
        // A few per thread, so a slow piece does not hold up the rest.
        (rayon::current_num_threads() * 4).min(len / (PARALLEL_MIN / 4))
    }
}

/// The fields a binary's record takes, each at its first occurrence (as
/// [`Stanza::get`] finds it), picked in one pass over the stanza's fields
/// instead of one search per field.
#[derive(Default)]
struct BinaryFields<'a> {
    package: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    filename: Option<&'a str>,
    size: Option<&'a str>,
    sha256: Option<&'a str>,
    depends: Option<&'a str>,
    pre_depends: Option<&'a str>,
    provides: Option<&'a str>,
    source: Option<&'a str>,
}

impl<'a> BinaryFields<'a> {
    fn of(fields: &[(&'a str, &'a str)]) -> Self {
        let mut f = Self::default();
        for &(name, value) in fields {
            let is = |want: &str| name.eq_ignore_ascii_case(want);
            // The length first: most fields are none of these.
            let slot = match name.len() {
                4 if is("Size") => &mut f.size,
                6 if is("SHA256") => &mut f.sha256,
                6 if is("Source") => &mut f.source,
                7 if is("Package") => &mut f.package,
                7 if is("Version") => &mut f.version,
                7 if is("Depends") => &mut f.depends,
                8 if is("Filename") => &mut f.filename,
                8 if is("Provides") => &mut f.provides,
                11 if is("Pre-Depends") => &mut f.pre_depends,
                12 if is("Architecture") => &mut f.architecture,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        f
    }
}

fn package_record<'a>(st: &Stanza<'a>) -> Result<PackageRecord<'a>, IndexError> {
    let f = BinaryFields::of(&st.fields);
    let filename = st.single_value("Filename", f.filename)?;
    if !is_safe_pool_path(filename) {
        return Err(IndexError::UnsafePath {
            line: st.line,
            path: filename.to_string(),
        });
    }
    let size = st.need_value("Size", f.size)?;
    let sha256 = st.single_value("SHA256", f.sha256)?;
    check_sha256(st, "SHA256", sha256)?;
    st.check_relations()?;
    Ok(PackageRecord {
        package: st.single_value("Package", f.package)?,
        version: st.single_value("Version", f.version)?,
        arch: st.single_value("Architecture", f.architecture)?,
        filename,
        size: size.parse().map_err(|_| st.bad("Size", size))?,
        sha256,
        depends: f.depends,
        pre_depends: f.pre_depends,
        provides: f.provides,
        source: f.source,
        stanza: st.text,
        line: st.line,
    })
}

fn source_record<'a>(st: &Stanza<'a>) -> Result<SourceRecord<'a>, IndexError> {
    let directory = st.single("Directory")?;
    if !is_safe_pool_path(directory) {
        return Err(IndexError::UnsafePath {
            line: st.line,
            path: directory.to_string(),
        });
    }
    let mut files = Vec::new();
    for l in st.need("Checksums-Sha256")?.lines() {
        let mut w = l.split_whitespace();
        let (Some(sha256), Some(size), Some(name), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            return Err(st.bad("Checksums-Sha256", l));
        };
        check_sha256(st, "Checksums-Sha256", sha256)?;
        if name.contains('/') || name == ".." || name == "." {
            return Err(IndexError::UnsafePath {
                line: st.line,
                path: format!("{directory}/{name}"),
            });
        }
        files.push(SourceFile {
            name,
            size: size.parse().map_err(|_| st.bad("Checksums-Sha256", l))?,
            sha256,
        });
    }
    files.sort_by_key(|f| !f.name.ends_with(".dsc"));
    st.check_relations()?;
    Ok(SourceRecord {
        package: st.single("Package")?,
        version: st.single("Version")?,
        directory,
        files,
        stanza: st.text,
        line: st.line,
    })
}

/// Parses a `Packages` index.
pub fn parse_packages(text: &str) -> Result<Vec<PackageRecord<'_>>, IndexError> {
    parse_in_pieces(text, pieces_for(text.len()), package_record)
}

/// Parses a `Sources` index.
pub fn parse_sources(text: &str) -> Result<Vec<SourceRecord<'_>>, IndexError> {
    parse_in_pieces(text, pieces_for(text.len()), source_record)
}

#[cfg(test)]
mod tests {
    use super::super::stanzas::stanzas;
    use super::*;

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn packages() -> String {
        format!(
            "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@b>\n\
Depends: libc6 (>= 2.17),\n libfoo | libbar\nFilename: pool/main/h/hello/hello_1.0-1_amd64.deb\n\
Size: 1234\nSHA256: {SHA}\nDescription: hi\n multi line\n\n\n\
Package: hello-doc\nSource: hello (1.0-1)\nVersion: 1.0-1\nArchitecture: all\n\
Filename: pool/main/h/hello/hello-doc_1.0-1_all.deb\nSize: 5\nSHA256: {SHA}\n"
        )
    }

    #[test]
    fn records_borrow_fields_and_keep_the_stanza() {
        let text = packages();
        let recs = parse_packages(&text).unwrap();
        assert_eq!(recs.len(), 2);
        let h = &recs[0];
        assert_eq!((h.package, h.version, h.arch), ("hello", "1.0-1", "amd64"));
        assert_eq!(h.size, 1234);
        assert_eq!(h.depends, Some("libc6 (>= 2.17),\n libfoo | libbar"));
        assert!(h.stanza.starts_with("Package: hello\n"));
        assert!(h.stanza.ends_with(" multi line\n"), "{:?}", h.stanza);
        assert_eq!(h.line, 1);
        assert_eq!(recs[1].source_name(), "hello");
        assert_eq!(h.source_name(), "hello");
        assert_eq!(recs[1].line, 14);
        assert!(recs[1].stanza.ends_with(&format!("SHA256: {SHA}\n")));
    }

    #[test]
    fn a_field_given_twice_is_read_at_its_first_occurrence_in_any_case() {
        let text = format!(
            "package: first\nPackage: second\nVERSION: 1\nVersion: 2\nArchitecture: all\n\
Filename: pool/a.deb\nfilename: pool/b.deb\nSize: 1\nSHA256: {SHA}\nsource: s\nSource: t\n\
Depends: d\nPRE-DEPENDS: p\nProvides: v\nProvides: w\n"
        );
        let r = &parse_packages(&text).unwrap()[0];
        let want = |name| stanzas(&text).next().unwrap().get(name);
        assert_eq!((r.package, r.version), ("first", "1"));
        assert_eq!(Some(r.filename), want("Filename"));
        assert_eq!(r.source, want("Source"));
        assert_eq!(r.pre_depends, Some("p"));
        assert_eq!(r.provides, Some("v"));
        assert_eq!(r.depends, Some("d"));
    }

    #[test]
    fn white_space_inside_a_single_valued_field_is_refused() {
        for (version, ok) in [
            ("1.0", true),
            ("1.0\u{e9}", true),
            ("1 0", false),
            ("1\t0", false),
            ("1\u{b}0", false),
            ("1\r0", false),
            ("1\u{a0}0", false),
            ("\u{e9}\u{2003}0", false),
        ] {
            let text = packages().replace(
                "Version: 1.0-1\nArchitecture: amd64",
                &format!("Version: {version}\nArchitecture: amd64"),
            );
            let got = parse_packages(&text);
            assert_eq!(got.is_ok(), ok, "{version:?}: {got:?}");
            if !ok {
                assert!(
                    matches!(
                        got,
                        Err(IndexError::BadField {
                            field: "Version",
                            ..
                        })
                    ),
                    "{version:?}"
                );
            }
        }
    }

    #[test]
    fn a_stanza_without_trailing_newline_still_ends_with_one() {
        let text = packages();
        let text = text.trim_end();
        let recs = parse_packages(text).unwrap();
        assert!(recs[1].stanza.ends_with(SHA), "{:?}", recs[1].stanza);
    }

    #[test]
    fn missing_or_bad_fields_name_the_line() {
        let text = packages().replace("Size: 5\n", "");
        assert_eq!(
            parse_packages(&text).unwrap_err().to_string(),
            "stanza at line 14: no Size field"
        );
        let text = packages().replace(
            &format!("SHA256: {SHA}\nDescription"),
            "SHA256: abc\nDescription",
        );
        assert!(matches!(
            parse_packages(&text),
            Err(IndexError::BadField {
                line: 1,
                field: "SHA256",
                ..
            })
        ));
    }

    #[test]
    fn unsafe_pool_paths_are_refused() {
        for p in [
            "../../etc/passwd",
            "/etc/passwd",
            "pool//x.deb",
            "dists/x/InRelease",
            "pool/./x",
        ] {
            assert!(!is_safe_pool_path(p), "{p}");
            let text = packages().replace("pool/main/h/hello/hello_1.0-1_amd64.deb", p);
            assert!(
                matches!(parse_packages(&text), Err(IndexError::UnsafePath { .. })),
                "{p}"
            );
        }
        assert!(is_safe_pool_path("pool/main/h/hello/hello_1.0_amd64.deb"));
    }

    proptest::proptest! {
        /// The byte test says what the test on `str` segments said.
        #[test]
        fn pool_paths_are_judged_as_on_str_segments(p in "[a./\\\\\u{0}\u{e9}d]{0,10}|dists/[a./]{0,4}") {
            let before = !p.is_empty()
                && !p.starts_with("dists/")
                && p.split('/').all(|seg| {
                    !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0'])
                });
            proptest::prop_assert_eq!(is_safe_pool_path(&p), before);
        }
    }

    #[test]
    fn sources_list_the_dsc_first() {
        let text = format!(
            "Package: hello\nVersion: 1.0-1\nDirectory: pool/main/h/hello\n\
Checksums-Sha256:\n {SHA} 10 hello_1.0.orig.tar.gz\n {SHA} 3 hello_1.0-1.dsc\n"
        );
        let s = parse_sources(&text).unwrap();
        assert_eq!(s[0].files[0].name, "hello_1.0-1.dsc");
        assert_eq!(s[0].files[1].size, 10);
        let bad = text.replace("hello_1.0-1.dsc", "../x.dsc");
        assert!(matches!(
            parse_sources(&bad),
            Err(IndexError::UnsafePath { .. })
        ));
    }

    #[test]
    fn decompresses_what_it_is_given() {
        let data = b"Package: x\n".repeat(100);
        let gz = crate::index::compress::gzip(&data).unwrap();
        let xz = crate::index::compress::xz(&data).unwrap();
        let max = MAX_INDEX_SIZE;
        assert_eq!(decompress(&gz, Compression::Gzip, max).unwrap(), data);
        assert_eq!(decompress(&xz, Compression::Xz, max).unwrap(), data);
        assert_eq!(decompress(&data, Compression::None, max).unwrap(), data);
        assert!(decompress(b"junk", Compression::Xz, max).is_err());
        // Exactly the limit passes; one byte less refuses.
        let n = data.len() as u64;
        for c in [Compression::Gzip, Compression::Xz] {
            let packed = if c == Compression::Gzip { &gz } else { &xz };
            assert_eq!(decompress(packed, c, n).unwrap(), data);
            assert_eq!(
                decompress(packed, c, n - 1),
                Err(IndexError::TooLarge { limit: n - 1 })
            );
        }
        assert!(decompress(&data, Compression::None, n - 1).is_err());
    }

    #[test]
    fn a_relation_or_multi_arch_dpkg_refuses_refuses_the_index() {
        for (field, want) in [
            (
                "Depends: foo (>= 1.0",
                "field Depends: reference to \"foo\": version unterminated (an unclosed '(') in \"foo (>= 1.0\"",
            ),
            (
                "Multi-Arch: sometimes",
                "field Multi-Arch: not one of no, same, foreign, allowed in \"sometimes\"",
            ),
        ] {
            let text = format!(
                "Package: a\nVersion: 1\nArchitecture: all\n{field}\nFilename: pool/a.deb\nSize: 1\nSHA256: {SHA}\n"
            );
            let e = parse_packages(&text).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn pieces_give_the_records_and_the_first_error_of_one_pass() {
        // A blank line after each copy, so copies do not run together.
        let one = packages() + "\n";
        let text = one.repeat(50);
        let whole = parse_in_pieces(&text, 1, package_record).unwrap();
        assert_eq!(whole.len(), 100);
        assert_eq!(whole[99].line, 49 * 21 + 14);
        for n in [2, 3, 8, 64] {
            assert_eq!(
                parse_in_pieces(&text, n, package_record).unwrap(),
                whole,
                "{n}"
            );
        }
        // Two bad stanzas: every cut reports the first, at its line.
        let bad = format!(
            "{}{}{}{}",
            one.repeat(20),
            one.replace("Size: 5\n", ""),
            one.repeat(10),
            one.replace("Size: 1234\n", "")
        );
        let first = parse_in_pieces(&bad, 1, package_record).unwrap_err();
        assert_eq!(first.to_string(), "stanza at line 434: no Size field");
        for n in [2, 3, 8, 64] {
            assert_eq!(
                parse_in_pieces(&bad, n, package_record).unwrap_err(),
                first,
                "{n}"
            );
        }
        let sources = format!(
            "Package: hello\nVersion: 1.0-1\nDirectory: pool/main/h/hello\n\
Checksums-Sha256:\n {SHA} 3 hello_1.0-1.dsc\n\n"
        )
        .repeat(30);
        let whole = parse_in_pieces(&sources, 1, source_record).unwrap();
        assert_eq!(parse_in_pieces(&sources, 7, source_record).unwrap(), whole);
        assert_eq!(whole[29].line, 29 * 6 + 1);
    }
}
