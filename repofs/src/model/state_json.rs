//! Reading a component state's JSON on every core.
//!
//! A snapshot parses the state of each component it renders: 43 MB of
//! JSON at 50,000 packages, a fifth of a churn snapshot's time on one
//! core. The blob is written by us (`serde_json`, compact, fields in
//! declaration order), so its `binaries` array can be cut at entry
//! boundaries found by a byte pattern and the pieces parsed at once.
//!
//! The cut is sound for any JSON, not only ours: a `"` inside a JSON
//! string is always escaped, so in `},{"package":"` the quote after `{`
//! is a real string delimiter; it is followed by `p`, so it opens a key,
//! which puts the `{`, `,` and `}` before it outside any string. Entries
//! of `binaries` are flat objects (one nested `file` object, no arrays),
//! so the first `}],"sources":` that is outside a string ends the array.
//! Anything that does not look exactly like our layout, and any error in
//! a piece, falls back to one `serde_json::from_slice` of the whole blob:
//! the result and the error are always the one-pass parse's. An import,
//! which must not hold the blob whole, cuts it the same way a window at a
//! time ([`parse_window`], `store::spooled`).

use rayon::prelude::*;

use super::state::{BinaryEntry, ComponentState};

/// Below this, one pass is as fast as cutting and joining.
pub(crate) const PARALLEL_FROM: usize = 4 << 20;
/// Aim for pieces of about this size (several per core: cores finish together).
pub(crate) const PIECE: usize = 4 << 20;

pub(crate) const HEAD: &[u8] = b"{\"binaries\":[";
pub(crate) const ENTRY: &[u8] = b"},{\"package\":\"";
const END: &[u8] = b"}],\"sources\":";

/// Parses a component state blob, in parallel pieces when it is large.
pub fn parse(data: &[u8]) -> serde_json::Result<ComponentState> {
    if data.len() >= PARALLEL_FROM {
        if let Some((pieces, mut state)) = parse_pieces::<BinaryEntry>(data, PIECE) {
            state.binaries = pieces.into_iter().flatten().collect();
            return Ok(state);
        }
    }
    serde_json::from_slice(data)
}

/// The entries of `binaries`, parsed as `T` in pieces on every core, and
/// the state's other fields (its `binaries` left empty); `None` when the
/// blob is not in our layout or anything in it does not parse.
pub(crate) fn parse_pieces<'a, T>(
    data: &'a [u8],
    piece: usize,
) -> Option<(Vec<Vec<T>>, ComponentState)>
where
    T: serde::Deserialize<'a> + Send,
{
    let body = data.strip_prefix(HEAD)?;
    let end = memchr::memmem::find(body, END)? + 1; // keep the entry's `}`
    let (array, rest) = (&body[..end], &body[end + 1..]); // rest: `,"sources":...}`

    let pieces: Vec<Vec<T>> = parse_cut(array, piece, false).ok()?;
    // A second `binaries` key (raw quotes are never inside a string): let
    // the one-pass parse refuse it.
    if memchr::memmem::find(rest, b"\"binaries\":").is_some() {
        return None;
    }
    // The fields after `binaries`, as an object of their own.
    let mut tail = Vec::with_capacity(rest.len());
    tail.push(b'{');
    tail.extend_from_slice(rest.strip_prefix(b",")?);
    let state: ComponentState = serde_json::from_slice(&tail).ok()?;
    Some((pieces, state))
}

/// `entries` (`{..},{..},..,{..}`) parsed in about `parts` pieces on every
/// core, in order, or the first piece's error: for a reader that takes a
/// state a window at a time.
pub(crate) fn parse_window<'a, T>(
    entries: &'a [u8],
    parts: usize,
) -> std::result::Result<Vec<Vec<T>>, String>
where
    T: serde::Deserialize<'a> + Send,
{
    // No one-pass parse follows a window that failed: it takes the white
    // space one pass allows.
    parse_cut(entries, entries.len() / parts.max(1) + 1, true)
}

/// `entries` cut at entry boundaries into pieces of about `piece` bytes,
/// each parsed on its own core, in order; or the first piece's error.
/// `spaces`: white space around the commas is taken (else an error).
fn parse_cut<'a, T>(
    entries: &'a [u8],
    piece: usize,
    spaces: bool,
) -> std::result::Result<Vec<Vec<T>>, String>
where
    T: serde::Deserialize<'a> + Send,
{
    // Cut points: the `{` of an entry, found from evenly spaced offsets.
    let mut starts = vec![0];
    let mut at = piece;
    while at < entries.len() {
        let Some(found) = memchr::memmem::find(&entries[at..], ENTRY) else {
            break; // the last piece runs to the end
        };
        let start = at + found + 2; // past `},`
        starts.push(start);
        at = start + piece;
    }
    starts.push(entries.len() + 1); // as if a `,` followed the last entry
    starts
        .par_windows(2)
        .map(|w| parse_entries(&entries[w[0]..w[1] - 1], spaces))
        .collect()
}

/// `{..},{..},..,{..}`: entries separated by commas (with white space
/// around them if `spaces`), or the reason not.
fn parse_entries<'a, T: serde::Deserialize<'a>>(
    mut piece: &'a [u8],
    spaces: bool,
) -> std::result::Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(piece.len() / 800 + 1);
    loop {
        if piece.first() != Some(&b'{') {
            return Err("a binary package entry is not an object".into());
        }
        // A stream stops right after an object and says where.
        let mut values = serde_json::Deserializer::from_slice(piece).into_iter::<T>();
        match values.next() {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("a binary package entry is missing".into()),
        }
        // JSON allows white space around the commas; we write none.
        let trim = |b: &'a [u8]| if spaces { b.trim_ascii_start() } else { b };
        match trim(&piece[values.byte_offset()..]).split_first() {
            None => return Ok(out),
            Some((b',', next)) => piece = trim(next),
            Some(_) => return Err("binary package entries not separated by commas".into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::state::PoolFile;
    use proptest::prelude::*;

    pub(crate) fn entry(i: usize, stanza: &str) -> BinaryEntry {
        BinaryEntry {
            package: format!("p{i:06}"),
            version: "1.0".into(),
            arch: "amd64".into(),
            stanza: stanza.into(),
            file: PoolFile {
                path: format!("pool/main/p/p{i}.deb"),
                sha256: format!("{i:064x}"),
                size: i as u64,
            },
            origin: format!("/in/p{i}.deb"),
        }
    }

    fn joined(parsed: Option<(Vec<Vec<BinaryEntry>>, ComponentState)>) -> Option<ComponentState> {
        let (pieces, mut state) = parsed?;
        state.binaries = pieces.into_iter().flatten().collect();
        Some(state)
    }

    pub(crate) fn state(n: usize, stanza: &str) -> ComponentState {
        ComponentState {
            binaries: (0..n).map(|i| entry(i, stanza)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_large_state_parses_in_pieces_to_the_same_value() {
        // Stanzas holding the very patterns the cut looks for.
        let tricky = "Package: x\nDescription: },{\"package\":\" and }],\"sources\":[\n";
        let s = state(40_000, tricky);
        let json = serde_json::to_vec(&s).unwrap();
        assert!(json.len() > 2 * PARALLEL_FROM);
        assert_eq!(joined(parse_pieces(&json, PIECE)).as_ref(), Some(&s));
        assert_eq!(parse(&json).unwrap(), s);
    }

    #[test]
    fn anything_not_in_our_layout_gets_the_one_pass_answer() {
        let s = state(12_000, "Package: x\n");
        let compact = serde_json::to_vec(&s).unwrap();
        let pretty = serde_json::to_vec_pretty(&s).unwrap();
        assert!(parse_pieces::<BinaryEntry>(&pretty, 1000).is_none());
        assert_eq!(parse(&pretty).unwrap(), s);
        // A torn blob: the same error as one pass.
        let torn = &compact[..compact.len() / 2];
        let one_pass = serde_json::from_slice::<ComponentState>(torn).unwrap_err();
        assert_eq!(parse(torn).unwrap_err().to_string(), one_pass.to_string());
        // A second `binaries` is refused, as one pass refuses it.
        let mut dup = compact.clone();
        dup.truncate(dup.len() - 1);
        dup.extend_from_slice(b",\"binaries\":[]}");
        assert!(parse_pieces::<BinaryEntry>(&dup, 1000).is_none());
        assert!(parse(&dup).is_err());
        // Junk between entries.
        let junk = String::from_utf8(compact.clone()).unwrap().replacen(
            "},{\"package\":\"p005000",
            "} ,{\"package\":\"p005000",
            1,
        );
        assert!(parse_pieces::<BinaryEntry>(junk.as_bytes(), 1000).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn pieces_agree_with_one_pass(
            n in 1usize..300,
            text in "[a-z{}\\[\\]\",:\\\\ ]{0,40}",
            piece in 1usize..5000,
        ) {
            let s = state(n, &text);
            let json = serde_json::to_vec(&s).unwrap();
            prop_assert_eq!(joined(parse_pieces(&json, piece)), Some(s.clone()));
            prop_assert_eq!(parse(&json).unwrap(), s);
        }
    }
}
