//! Index diffs (PDiff): `Packages.diff/Index` and its patches, the format
//! apt fetches with `Acquire::PDiffs`, so a client that updated before
//! downloads the change, not the whole index.
//!
//! A patch is an `ed` script (what `diff --ed` prints, applied by apt's
//! `rred`) from one snapshot's index to the next one's. Index files are
//! lists of stanzas in a stable order, so the diff works on whole stanzas:
//! a stanza is an atom that is kept, dropped or inserted. That makes the
//! diff linear in the number of stanzas (hashing, then a longest increasing
//! subsequence over the ones both sides share) instead of quadratic in
//! lines, and the patch as small as a line diff for what changes between
//! snapshots (packages come, go or change version).
//!
//! The `Index` lists, oldest first, the index each patch starts from
//! (`SHA256-History`), the patch (`SHA256-Patches`) and its gzip form
//! (`SHA256-Download`); apt finds its own index's hash in the history and
//! applies every patch from there. An index that is not in the history (a
//! rollback, a jump to an unrelated snapshot) has no patch, and apt falls
//! back to the full download.

use std::collections::HashMap;

/// Size and SHA-256 of a file, as the `Index` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub sha256: String,
    pub size: u64,
}

/// One step of the history: the index it starts from and its patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The patch's name: `Packages.diff/<name>.gz` is served.
    pub name: String,
    /// The index the patch applies to.
    pub from: Sum,
    /// The uncompressed patch.
    pub patch: Sum,
    /// The `.gz` apt downloads.
    pub download: Sum,
}

/// The content of a `Packages.diff/Index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffIndex {
    /// The index every patch chain ends at.
    pub current: Sum,
    /// Oldest first.
    pub history: Vec<Step>,
}

impl DiffIndex {
    /// The index after one more step, keeping the newest `keep` steps.
    /// `prev` is the previous index's history, used only when it ends at
    /// `step.from` (otherwise its patches lead somewhere else).
    pub fn next(prev: Option<&DiffIndex>, step: Step, current: Sum, keep: usize) -> DiffIndex {
        let mut history: Vec<Step> = prev
            .filter(|p| p.current == step.from)
            .map(|p| p.history.clone())
            .unwrap_or_default();
        history.push(step);
        let drop = history.len().saturating_sub(keep);
        history.drain(..drop);
        DiffIndex { current, history }
    }

    /// The text of the `Index` file, in dak's layout.
    pub fn render(&self) -> String {
        let width = |f: fn(&Step) -> u64| {
            self.history
                .iter()
                .map(|s| f(s).to_string().len())
                .max()
                .unwrap_or(1)
        };
        let mut s = format!(
            "SHA256-Current: {} {}\n",
            self.current.sha256, self.current.size
        );
        let mut list = |title: &str, pick: fn(&Step) -> &Sum, suffix: &str, w: usize| {
            s.push_str(title);
            s.push_str(":\n");
            for step in &self.history {
                let sum = pick(step);
                s.push_str(&format!(
                    " {} {:>w$} {}{suffix}\n",
                    sum.sha256, sum.size, step.name
                ));
            }
        };
        list("SHA256-History", |s| &s.from, "", width(|s| s.from.size));
        list("SHA256-Patches", |s| &s.patch, "", width(|s| s.patch.size));
        list(
            "SHA256-Download",
            |s| &s.download,
            ".gz",
            width(|s| s.download.size),
        );
        s
    }

    /// Reads an `Index` this module rendered. `None` for anything else:
    /// the history then starts anew, which costs clients one full download.
    pub fn parse(text: &str) -> Option<DiffIndex> {
        let mut current = None;
        let mut fields: HashMap<&str, Vec<(String, u64, String)>> = HashMap::new();
        let mut open: Option<&str> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(' ') {
                let mut it = rest.split_whitespace();
                let (h, n, name) = (it.next()?, it.next()?.parse().ok()?, it.next()?);
                fields
                    .get_mut(open?)?
                    .push((h.to_string(), n, name.to_string()));
            } else if let Some(v) = line.strip_prefix("SHA256-Current:") {
                let mut it = v.split_whitespace();
                current = Some(Sum {
                    sha256: it.next()?.to_string(),
                    size: it.next()?.parse().ok()?,
                });
                open = None;
            } else {
                let (k, _) = line.split_once(':')?;
                fields.insert(k, Vec::new());
                open = Some(k);
            }
        }
        let hist = fields.remove("SHA256-History")?;
        let patches = fields.remove("SHA256-Patches")?;
        let downloads = fields.remove("SHA256-Download")?;
        if hist.len() != patches.len() || hist.len() != downloads.len() {
            return None;
        }
        let mut history = Vec::new();
        for ((h, p), d) in hist.into_iter().zip(patches).zip(downloads) {
            if h.2 != p.2 || d.2 != format!("{}.gz", h.2) {
                return None;
            }
            history.push(Step {
                name: h.2,
                from: Sum {
                    sha256: h.0,
                    size: h.1,
                },
                patch: Sum {
                    sha256: p.0,
                    size: p.1,
                },
                download: Sum {
                    sha256: d.0,
                    size: d.1,
                },
            });
        }
        Some(DiffIndex {
            current: current?,
            history,
        })
    }
}

/// Splits an index into stanzas, each with the blank line after it. `None`
/// when the text does not end with a newline (an ed script cannot say so).
fn stanzas(text: &[u8]) -> Option<Vec<&[u8]>> {
    if !text.is_empty() && !text.ends_with(b"\n") {
        return None;
    }
    let mut out = Vec::new();
    let mut start = 0;
    // Matches do not overlap: in a run of blank lines, each further
    // pair of newlines is a unit of its own.
    for end in memchr::memmem::find_iter(text, b"\n\n") {
        out.push(&text[start..end + 2]);
        start = end + 2;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    Some(out)
}

fn lines(unit: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', unit).count()
}

/// Indices into `seq` of a longest strictly increasing subsequence.
fn longest_increasing(seq: &[usize]) -> Vec<usize> {
    // tails[k]: index into seq of the smallest tail of a run of length k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < v);
        if k > 0 {
            prev[i] = tails[k - 1];
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut cur = tails.last().copied().unwrap_or(usize::MAX);
    while cur != usize::MAX {
        out.push(cur);
        cur = prev[cur];
    }
    out.reverse();
    out
}

/// The `ed` script that turns `old` into `new`, hunks from the end of the
/// file to its start as `diff --ed` prints them. `None` when the texts
/// cannot be diffed as stanza lists (no final newline, or a line that is a
/// lone `.`, which would end ed's input mode).
pub fn ed_script(old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    if !old.is_empty() && !old.ends_with(b"\n") || !new.is_empty() && !new.ends_with(b"\n") {
        return None;
    }
    if new.starts_with(b".\n") || memchr::memmem::find(new, b"\n.\n").is_some() {
        return None;
    }
    // The stanzas both sides begin and end with are kept as they are:
    // comparing bytes is far cheaper than hashing every stanza, and after
    // a clustered change most of the index is such a prefix or suffix.
    let (head, tail) = common_ends(old, new);
    let skipped = lines(&old[..head]);
    ed_middle(
        &old[head..old.len() - tail],
        &new[head..new.len() - tail],
        skipped,
    )
}

/// Lengths of a common prefix and a common suffix of `old` and `new` that
/// end and start at stanza boundaries (after a blank line) and do not
/// overlap on either side.
fn common_ends(old: &[u8], new: &[u8]) -> (usize, usize) {
    use super::common::{common_prefix, common_suffix};
    let same = common_prefix(old, new);
    let head = memchr::memmem::rfind(&old[..same], b"\n\n").map_or(0, |i| i + 2);
    let room = old.len().min(new.len()) - head;
    let same_tail = common_suffix(&old[old.len() - room..], &new[new.len() - room..]);
    // The suffix starts right after a blank line that both sides share
    // (inside the common bytes), so it starts a stanza on both sides.
    let common = &old[old.len() - same_tail..];
    let tail = memchr::memmem::find(common, b"\n\n").map_or(0, |i| same_tail - (i + 2));
    (head, tail)
}

/// `ed_script` of the differing middle, whose first line is line
/// `skipped + 1` of the whole file.
fn ed_middle(old: &[u8], new: &[u8], skipped: usize) -> Option<Vec<u8>> {
    let (a, b) = (stanzas(old)?, stanzas(new)?);
    // Stanzas that appear once on each side can anchor the diff.
    let mut count: HashMap<&[u8], (usize, usize, usize), foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(a.len(), Default::default());
    for (i, u) in a.iter().enumerate() {
        let e = count.entry(u).or_insert((0, 0, i));
        e.0 += 1;
    }
    for u in &b {
        if let Some(e) = count.get_mut(u) {
            e.1 += 1;
        }
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new(); // (old, new)
    for (j, u) in b.iter().enumerate() {
        if let Some(&(1, 1, i)) = count.get(u) {
            pairs.push((i, j));
        }
    }
    let olds: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    let anchors: Vec<(usize, usize)> = longest_increasing(&olds)
        .into_iter()
        .map(|k| pairs[k])
        .chain(std::iter::once((a.len(), b.len())))
        .collect();
    // Line number (1-based) where each old stanza starts.
    let mut start = Vec::with_capacity(a.len() + 1);
    let mut n = skipped + 1;
    for u in &a {
        start.push(n);
        n += lines(u);
    }
    start.push(n);
    let mut hunks: Vec<Vec<u8>> = Vec::new();
    let (mut i, mut j) = (0, 0);
    for (ai, bj) in anchors {
        if ai > i || bj > j {
            let mut h = Vec::new();
            let (first, last) = (start[i], start[ai] - 1);
            if ai == i {
                h.extend_from_slice(format!("{}a\n", first - 1).as_bytes());
            } else {
                let range = if first == last {
                    first.to_string()
                } else {
                    format!("{first},{last}")
                };
                let cmd = if bj == j { 'd' } else { 'c' };
                h.extend_from_slice(format!("{range}{cmd}\n").as_bytes());
            }
            if bj > j {
                for u in &b[j..bj] {
                    h.extend_from_slice(u);
                }
                h.extend_from_slice(b".\n");
            }
            hunks.push(h);
        }
        (i, j) = (ai + 1, bj + 1);
    }
    Some(hunks.into_iter().rev().flatten().collect())
}

/// Applies an `ed` script of the kind `ed_script` writes. For tests and
/// for checking a patch before it is published.
pub fn apply_ed(old: &[u8], script: &[u8]) -> Option<Vec<u8>> {
    let mut lines: Vec<&[u8]> = old.split_inclusive(|&c| c == b'\n').collect();
    let mut rest = script.split_inclusive(|&c| c == b'\n');
    while let Some(cmd) = rest.next() {
        let cmd = std::str::from_utf8(cmd).ok()?.trim_end();
        let op = cmd.chars().last()?;
        let range = &cmd[..cmd.len() - 1];
        let (first, last): (usize, usize) = match range.split_once(',') {
            Some((f, l)) => (f.parse().ok()?, l.parse().ok()?),
            None => {
                let n = range.parse().ok()?;
                (n, n)
            }
        };
        let mut text = Vec::new();
        if op == 'a' || op == 'c' {
            for l in rest.by_ref() {
                if l == b".\n" {
                    break;
                }
                text.push(l);
            }
        }
        match op {
            'a' if first <= lines.len() => {
                lines.splice(first..first, text);
            }
            'c' | 'd' if first >= 1 && first <= last && last <= lines.len() => {
                lines.splice(first - 1..last, text);
            }
            _ => return None,
        }
    }
    Some(lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> Vec<u8> {
        names
            .iter()
            .map(|n| format!("Package: {n}\nVersion: 1\nDescription: d\n .\n more\n\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn scripts_turn_old_into_new() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["a", "b", "c"], &["a", "b", "c"]),
            (&["a", "b", "c"], &["a", "c"]),
            (&["a", "b", "c"], &["a", "b2", "c"]),
            (&["a", "c"], &["a", "b", "c"]),
            (&[], &["a"]),
            (&["a"], &[]),
            (&["a", "b", "c", "d"], &["z", "b", "y", "x", "d", "e"]),
            (&["a", "b", "c", "d"], &["d", "c", "b", "a"]),
            (&["a", "a", "b"], &["b", "a", "a", "a"]),
        ];
        for (old, new) in cases {
            let (old, new) = (index(old), index(new));
            let script = ed_script(&old, &new).unwrap();
            assert_eq!(
                apply_ed(&old, &script).as_deref(),
                Some(&new[..]),
                "{}",
                String::from_utf8_lossy(&script)
            );
        }
    }

    #[test]
    fn a_one_stanza_change_is_a_one_stanza_patch() {
        let names: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
        let old = index(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let mut changed = names.clone();
        changed[500] = "p500b".into();
        let new = index(&changed.iter().map(String::as_str).collect::<Vec<_>>());
        let script = ed_script(&old, &new).unwrap();
        assert_eq!(
            String::from_utf8(script).unwrap(),
            "3001,3006c\nPackage: p500b\nVersion: 1\nDescription: d\n .\n more\n\n.\n"
        );
    }

    #[test]
    fn unsafe_texts_have_no_script() {
        assert_eq!(ed_script(b"a\n\n", b"Package: x\n.\n\n"), None);
        assert_eq!(ed_script(b"a\n\n", b"Package: x"), None);
        assert_eq!(ed_script(b"a\n\n", b".\n\n"), None);
        // Runs of blank lines are diffed like anything else.
        let (old, new) = (b"a\n\n\n\nb\n\n\nc\n", b"a\n\n\nb\n\n\n\n\nc\n");
        let script = ed_script(old, new).unwrap();
        assert_eq!(apply_ed(old, &script).as_deref(), Some(&new[..]));
    }

    proptest::proptest! {
        /// Any two lists of stanzas, repeats and blank-line runs included.
        #[test]
        fn any_script_turns_old_into_new(
            old in proptest::collection::vec(0u8..6, 0..40),
            new in proptest::collection::vec(0u8..6, 0..40),
        ) {
            let text = |v: &[u8]| -> Vec<u8> {
                v.iter()
                    .flat_map(|&k| match k {
                        5 => b"\n".to_vec(),
                        k => format!("Package: p{k}\nVersion: {k}\n\n").into_bytes(),
                    })
                    .collect()
            };
            let (old, new) = (text(&old), text(&new));
            let script = ed_script(&old, &new).unwrap();
            proptest::prop_assert_eq!(apply_ed(&old, &script), Some(new));
        }
    }

    fn sum(c: char, size: u64) -> Sum {
        Sum {
            sha256: c.to_string().repeat(64),
            size,
        }
    }

    fn step(name: &str, from: char) -> Step {
        Step {
            name: name.into(),
            from: sum(from, 100),
            patch: sum('p', 10),
            download: sum('d', 9),
        }
    }

    #[test]
    fn history_continues_only_from_its_own_end_and_is_bounded() {
        let first = DiffIndex::next(None, step("1", 'a'), sum('b', 100), 2);
        let second = DiffIndex::next(Some(&first), step("2", 'b'), sum('c', 100), 2);
        assert_eq!(second.history.len(), 2);
        let third = DiffIndex::next(Some(&second), step("3", 'c'), sum('e', 100), 2);
        let names: Vec<_> = third.history.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["2", "3"]);
        // A step from elsewhere starts a new history.
        let other = DiffIndex::next(Some(&third), step("4", 'x'), sum('f', 100), 2);
        assert_eq!(other.history.len(), 1);
        assert_eq!(DiffIndex::parse(&third.render()), Some(third));
        assert_eq!(DiffIndex::parse("Foo: bar\n"), None);
    }
}
