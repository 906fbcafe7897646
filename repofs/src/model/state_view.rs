//! A component state read for rendering: its binaries borrowed from the
//! blob's bytes.
//!
//! A snapshot copies each binary's stanza into `Packages` and looks only at
//! its name, architecture and pool file. Parsing the whole state into a
//! [`ComponentState`] made a `String` of every field of every binary, each
//! stanza unescaped into its own, copied them again into the index and then
//! freed them all: at 200,000 packages, 172 MB of JSON turned into about
//! 1.4 million allocations, the largest part of a churn snapshot. A view
//! borrows the short fields from the mapped blob (they hold no escapes) and
//! keeps each stanza as its JSON text, unescaped once, straight into the
//! index being rendered.
//!
//! The view accepts what [`state_json::parse`] accepts: every field of a
//! binary is read with its type, and a blob that is not in our layout is
//! parsed whole, the same way, then viewed.

use std::borrow::Cow;

use serde::de::{Deserializer, Error as _, Unexpected};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::state::ReleaseIdentity;
use super::state::{BinaryEntry, ComponentState, SourceEntry};
use super::state_json::{self, PARALLEL_FROM, PIECE};
use super::verbatim::UpstreamFiles;
use super::DistFile;

/// One binary of a [`StateView`]: the fields of a [`BinaryEntry`].
#[derive(Debug, Deserialize)]
pub struct BinaryView<'a> {
    #[serde(borrow)]
    pub package: Cow<'a, str>,
    #[serde(borrow)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub arch: Cow<'a, str>,
    #[serde(borrow)]
    pub stanza: Stanza<'a>,
    #[serde(borrow)]
    pub file: FileView<'a>,
    #[serde(borrow)]
    pub origin: Cow<'a, str>,
}

/// A binary's [`super::PoolFile`].
#[derive(Debug, Deserialize)]
pub struct FileView<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(borrow)]
    pub sha256: Cow<'a, str>,
    pub size: u64,
}

impl<'a> BinaryView<'a> {
    fn of(b: &'a BinaryEntry) -> Self {
        BinaryView {
            package: Cow::Borrowed(&b.package),
            version: Cow::Borrowed(&b.version),
            arch: Cow::Borrowed(&b.arch),
            stanza: Stanza::Text(Cow::Borrowed(&b.stanza)),
            file: FileView {
                path: Cow::Borrowed(&b.file.path),
                sha256: Cow::Borrowed(&b.file.sha256),
                size: b.file.size,
            },
            origin: Cow::Borrowed(&b.origin),
        }
    }

    fn owned(b: BinaryEntry) -> BinaryView<'static> {
        BinaryView {
            package: Cow::Owned(b.package),
            version: Cow::Owned(b.version),
            arch: Cow::Owned(b.arch),
            stanza: Stanza::Text(Cow::Owned(b.stanza)),
            file: FileView {
                path: Cow::Owned(b.file.path),
                sha256: Cow::Owned(b.file.sha256),
                size: b.file.size,
            },
            origin: Cow::Owned(b.origin),
        }
    }

    /// An installer package (`.udeb`): indexed under `debian-installer/`.
    pub fn is_udeb(&self) -> bool {
        self.file.path.ends_with(".udeb")
    }
}

/// A stanza: the JSON string it was stored as (quotes and escapes
/// included, checked by the JSON parser), or text.
#[derive(Debug)]
pub enum Stanza<'a> {
    Json(&'a str),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Stanza<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let text = raw.get();
        if text.len() >= 2 && text.starts_with('"') {
            Ok(Stanza::Json(text))
        } else {
            Err(D::Error::invalid_type(
                Unexpected::Other("a JSON value other than a string"),
                &"a string",
            ))
        }
    }
}

impl Stanza<'_> {
    /// Its text, ready to be copied: unescaping is planned here (and its
    /// length known) so that the copy can go straight into its place.
    pub fn prepare(&self) -> Prepared<'_> {
        match self {
            Stanza::Text(t) => Prepared::Text(t),
            Stanza::Json(json) => {
                let body = &json.as_bytes()[1..json.len() - 1];
                match simple_len(body) {
                    Some(len) => Prepared::Escaped { body, len },
                    // A `\u` escape (a control character): rare, decoded whole.
                    None => Prepared::Decoded(
                        serde_json::from_str(json).expect("a string the JSON parser checked"),
                    ),
                }
            }
        }
    }
}

/// A stanza's bytes, about to be copied (see [`Stanza::prepare`]).
pub enum Prepared<'a> {
    Text(&'a str),
    /// A JSON string's body with only one-character escapes (`\n`, `\"`..).
    Escaped {
        body: &'a [u8],
        len: usize,
    },
    Decoded(String),
}

impl Prepared<'_> {
    /// The length of the text.
    pub fn len(&self) -> usize {
        match self {
            Prepared::Text(t) => t.len(),
            Prepared::Escaped { len, .. } => *len,
            Prepared::Decoded(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the text into `out`, exactly [`Prepared::len`] bytes long.
    pub fn write_into(&self, out: &mut [u8]) {
        match self {
            Prepared::Text(t) => out.copy_from_slice(t.as_bytes()),
            Prepared::Decoded(t) => out.copy_from_slice(t.as_bytes()),
            Prepared::Escaped { body, .. } => {
                let (mut at, mut to) = (0, 0);
                while let Some(i) = memchr::memchr(b'\\', &body[at..]) {
                    out[to..to + i].copy_from_slice(&body[at..at + i]);
                    to += i;
                    out[to] = unescape(body[at + i + 1]);
                    to += 1;
                    at += i + 2;
                }
                out[to..].copy_from_slice(&body[at..]);
            }
        }
    }
}

/// The unescaped length of a checked JSON string's body, or `None` when it
/// holds a `\u` escape.
fn simple_len(body: &[u8]) -> Option<usize> {
    let (mut at, mut len) = (0, body.len());
    while let Some(i) = memchr::memchr(b'\\', &body[at..]) {
        if body[at + i + 1] == b'u' {
            return None;
        }
        len -= 1;
        at += i + 2;
    }
    Some(len)
}

/// The character a one-character JSON escape stands for (`simple_len` has
/// ruled `\u` out, and the JSON parser every other character).
fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'b' => 0x08,
        b'f' => 0x0c,
        other => other, // `"`, `\` and `/` stand for themselves
    }
}

/// A component state whose binaries are viewed (see the module's text).
pub struct StateView<'a> {
    /// In the order of the state, cut in pieces as they were parsed.
    pieces: Vec<Vec<BinaryView<'a>>>,
    /// Beside each binary, its architecture (an index into `archs`) and
    /// whether it is a udeb: the indices of each architecture are picked
    /// from this, not from fields spread over the blob (reading those for
    /// every index cost more than rendering it).
    kinds: Vec<Vec<Kind>>,
    /// Every architecture named, `all` included, sorted.
    archs: Vec<String>,
    /// The other fields (its own `binaries` are not read).
    rest: Cow<'a, ComponentState>,
}

/// A binary's architecture (index into [`StateView::archs`]) and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    arch: u32,
    udeb: bool,
}

impl<'a> StateView<'a> {
    /// Views a component state blob, parsing it on every core when large.
    pub fn parse(data: &'a [u8]) -> serde_json::Result<StateView<'a>> {
        if data.len() >= PARALLEL_FROM {
            if let Some((pieces, rest)) = state_json::parse_pieces::<BinaryView>(data, PIECE) {
                return Ok(Self::new(pieces, Cow::Owned(rest)));
            }
        }
        let mut state: ComponentState = serde_json::from_slice(data)?;
        let binaries = std::mem::take(&mut state.binaries);
        let pieces = vec![binaries.into_iter().map(BinaryView::owned).collect()];
        Ok(Self::new(pieces, Cow::Owned(state)))
    }

    /// A view of a parsed state.
    pub fn of(state: &'a ComponentState) -> Self {
        let pieces = vec![state.binaries.iter().map(BinaryView::of).collect()];
        Self::new(pieces, Cow::Borrowed(state))
    }

    fn new(pieces: Vec<Vec<BinaryView<'a>>>, rest: Cow<'a, ComponentState>) -> Self {
        use rayon::prelude::*;
        let mut archs: Vec<String> = pieces
            .par_iter()
            .map(|piece| {
                let mut seen: Vec<&str> = Vec::new();
                for b in piece {
                    if !seen.contains(&b.arch.as_ref()) {
                        seen.push(&b.arch);
                    }
                }
                seen
            })
            .flatten()
            .map(str::to_string)
            .collect();
        archs.sort();
        archs.dedup();
        let kinds = pieces
            .par_iter()
            .map(|piece| {
                let mut last = (usize::MAX, "");
                piece
                    .iter()
                    .map(|b| {
                        // Neighbours share their architecture more often than not.
                        if b.arch != last.1 {
                            let arch: &str = &b.arch;
                            let i = archs.binary_search_by(|a| a.as_str().cmp(arch));
                            let i = i.expect("every architecture was gathered");
                            last = (i, &archs[i]);
                        }
                        Kind {
                            arch: last.0 as u32,
                            udeb: b.is_udeb(),
                        }
                    })
                    .collect()
            })
            .collect();
        StateView {
            pieces,
            kinds,
            archs,
            rest,
        }
    }

    pub fn binaries(&self) -> impl Iterator<Item = &BinaryView<'a>> + Clone {
        self.pieces.iter().flatten()
    }

    /// The binaries that go into the index of `arch` (those of `all`
    /// too), udebs or not, with their place in [`StateView::binaries`].
    pub fn binaries_for<'s>(
        &'s self,
        arch: &str,
        udeb: bool,
    ) -> impl Iterator<Item = (usize, &'s BinaryView<'a>)> + Clone + 's {
        let find = |name: &str| self.archs.iter().position(|a| a == name);
        let (arch, all) = (find(arch), find("all"));
        let wanted = move |k: &Kind| {
            k.udeb == udeb && (Some(k.arch as usize) == arch || Some(k.arch as usize) == all)
        };
        self.kinds
            .iter()
            .flatten()
            .zip(self.binaries())
            .enumerate()
            .filter(move |(_, (k, _))| wanted(k))
            .map(|(i, (_, b))| (i, b))
    }

    /// The architectures of its binaries other than `all`, sorted.
    pub fn architectures(&self) -> impl Iterator<Item = &str> {
        self.archs
            .iter()
            .map(String::as_str)
            .filter(|a| *a != "all")
    }

    pub fn sources(&self) -> &[SourceEntry] {
        &self.rest.sources
    }

    pub fn upstream(&self) -> Option<&UpstreamFiles> {
        self.rest.upstream.as_ref()
    }

    pub fn identity(&self) -> Option<&ReleaseIdentity> {
        self.rest.identity.as_ref()
    }

    pub fn extra_files(&self) -> &[DistFile] {
        &self.rest.extra_files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state_json::tests::{entry, state};
    use proptest::prelude::*;

    /// What a view says of each binary, as owned entries.
    fn entries(v: &StateView<'_>) -> Vec<BinaryEntry> {
        v.binaries()
            .map(|b| BinaryEntry {
                package: b.package.to_string(),
                version: b.version.to_string(),
                arch: b.arch.to_string(),
                stanza: text_of(&b.stanza),
                file: crate::model::PoolFile {
                    path: b.file.path.to_string(),
                    sha256: b.file.sha256.to_string(),
                    size: b.file.size,
                },
                origin: b.origin.to_string(),
            })
            .collect()
    }

    fn prepared(s: &Stanza<'_>) -> Vec<u8> {
        let p = s.prepare();
        let mut out = vec![0; p.len()];
        p.write_into(&mut out);
        out
    }

    fn text_of(s: &Stanza<'_>) -> String {
        String::from_utf8(prepared(s)).expect("unescaped JSON string is UTF-8")
    }

    #[test]
    fn a_large_state_is_viewed_in_pieces_as_parsed() {
        let tricky = "Package: x\nDescription: },{\"package\":\" \\ \t\u{1}é \u{2028}\n";
        let s = state(30_000, tricky);
        let json = serde_json::to_vec(&s).unwrap();
        assert!(json.len() > 2 * PARALLEL_FROM);
        let v = StateView::parse(&json).unwrap();
        assert!(v.pieces.len() > 1, "parsed in pieces");
        assert!(matches!(
            v.binaries().next().unwrap().stanza,
            Stanza::Json(_)
        ));
        assert_eq!(entries(&v), s.binaries);
        assert_eq!(v.binaries().count(), s.binaries.len());
    }

    #[test]
    fn what_the_parse_refuses_the_view_refuses() {
        let long = format!("Package: x\nDescription: {}\n", "d".repeat(700));
        let s = state(6_000, &long);
        let json = String::from_utf8(serde_json::to_vec(&s).unwrap()).unwrap();
        let stanza = serde_json::to_string(&long).unwrap();
        assert!(json.len() > PARALLEL_FROM);
        // A field of the wrong type, deep in a piece, and a missing one.
        for bad in [
            json.replacen("\"size\":4000}", "\"size\":\"4000\"}", 1),
            json.replacen("\"version\":\"1.0\",", "", 1),
            json.replacen(&format!("\"stanza\":{stanza}"), "\"stanza\":7", 1),
            json[..json.len() / 2].to_string(),
        ] {
            assert_ne!(bad, json);
            let one_pass = serde_json::from_slice::<ComponentState>(bad.as_bytes()).unwrap_err();
            let viewed = StateView::parse(bad.as_bytes()).err().unwrap();
            assert_eq!(viewed.to_string(), one_pass.to_string());
        }
    }

    #[test]
    fn a_view_of_a_parsed_state_reads_the_same() {
        let mut s = state(3, "Package: y\n");
        s.binaries[1] = entry(7, "Package: z\nDescription: \"q\"\n");
        let v = StateView::of(&s);
        assert_eq!(entries(&v), s.binaries);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// An index's binaries are those a filter over every field picks.
        #[test]
        fn binaries_for_picks_what_a_filter_picks(
            kinds in proptest::collection::vec((0usize..4, any::<bool>()), 0..60),
        ) {
            let names = ["all", "amd64", "arm64", "i386"];
            let mut s = state(kinds.len(), "Package: x\n");
            for (b, (arch, udeb)) in s.binaries.iter_mut().zip(&kinds) {
                b.arch = names[*arch].to_string();
                if *udeb {
                    b.file.path = b.file.path.replace(".deb", ".udeb");
                }
            }
            let v = StateView::of(&s);
            let json = serde_json::to_vec(&s).unwrap();
            let parsed = StateView::parse(&json).unwrap();
            for arch in ["amd64", "arm64", "i386", "s390x"] {
                for udeb in [false, true] {
                    let want: Vec<usize> = s
                        .binaries
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.arch == arch || b.arch == "all")
                        .filter(|(_, b)| b.file.path.ends_with(".udeb") == udeb)
                        .map(|(i, _)| i)
                        .collect();
                    for view in [&v, &parsed] {
                        let got: Vec<usize> = view.binaries_for(arch, udeb).map(|(i, _)| i).collect();
                        prop_assert_eq!(&got, &want);
                    }
                }
            }
            let mut archs: Vec<&str> = s.binaries.iter().map(|b| b.arch.as_str()).filter(|a| *a != "all").collect();
            archs.sort();
            archs.dedup();
            prop_assert_eq!(v.architectures().collect::<Vec<_>>(), archs);
        }

        /// The unescaping is serde_json's, for any text.
        #[test]
        fn stanzas_unescape_as_serde_json_does(text in "(?s).{0,60}", plain in "[a-z\\\\\"\n/]{0,30}") {
            for t in [text, plain] {
                let json = serde_json::to_string(&t).unwrap();
                let s: Stanza<'_> = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(prepared(&s), t.as_bytes().to_vec());
                prop_assert_eq!(text_of(&s), t.as_str());
            }
        }

        #[test]
        fn views_agree_with_the_parse(
            n in 1usize..200,
            text in "[a-z{}\\[\\]\",:\\\\\n ]{0,40}",
        ) {
            let s = state(n, &text);
            let json = serde_json::to_vec(&s).unwrap();
            let v = StateView::parse(&json).unwrap();
            prop_assert_eq!(entries(&v), s.binaries.clone());
            if let Some((pieces, _)) = state_json::parse_pieces::<BinaryView>(&json, 997) {
                let v = StateView::new(pieces, Cow::Owned(ComponentState::default()));
                prop_assert_eq!(entries(&v), s.binaries);
            } else {
                prop_assert!(false, "our own layout is cut");
            }
        }
    }
}
