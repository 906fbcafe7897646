//! PURE: a lenient, zero-copy deb822 reader for upstream indices: one
//! pass over the text, one small struct per stanza whose field values
//! borrow it. Unlike `crate::deb822` (byte-faithful, strict, for what we
//! render and sign), it takes what apt takes: lines that are not fields
//! are ignored, so a 50 MB `Packages` index from any upstream reads in one
//! pass.
//!
//! Speed matters here (a mirror of Debian's main parses 50 MB per update):
//! lines are found with `memchr`, a line's kind is decided from its first
//! byte where that byte is plain ASCII (the Unicode-aware trim only runs
//! for lines that start with white space or a non-ASCII byte, so the
//! result is the same), and [`Stanzas::next_into`] fills a caller's vector
//! so a large index is read without an allocation per stanza. An index is
//! also cut into pieces at empty lines ([`split_at_blank_lines`]) that
//! parse independently: each stanza ends at an empty line, so the pieces'
//! stanzas are exactly the whole text's.

/// A stanza as a list of (field name, value) with the value spanning its
/// continuation lines; values borrow the text.
pub struct Stanza<'a> {
    pub text: &'a str,
    pub line: usize,
    pub fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Stanza<'a> {
    /// A field's value (names compare without case, as apt's do).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Splits deb822 text into stanzas (fields not interpreted). Values are
/// trimmed; multi-line values keep their inner line breaks.
pub fn stanzas(text: &str) -> impl Iterator<Item = Stanza<'_>> {
    let mut reader = Stanzas::new(text);
    std::iter::from_fn(move || {
        let mut fields = Vec::with_capacity(16);
        let (text, line) = reader.next_into(&mut fields)?;
        Some(Stanza { text, line, fields })
    })
}

/// The reader behind [`stanzas`], for callers that reuse one field vector.
pub struct Stanzas<'a> {
    text: &'a str,
    pos: usize,
    line_no: usize,
}

/// What a line is to the reader.
enum Line {
    /// Empty or only white space: ends a stanza.
    Blank,
    /// Starts with a space or tab: continues the field before it.
    Continuation,
    /// Anything else: `Name: value`, or a line that is not a field (ignored).
    Field,
}

fn classify(line: &str) -> Line {
    match line.as_bytes().first() {
        None => Line::Blank,
        // Plain ASCII that is not white space (what `char::is_whitespace`
        // holds for in ASCII: tab, LF, VT, FF, CR, space): a field line,
        // decided without scanning the line.
        Some(&b) if b.is_ascii() && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') => {
            Line::Field
        }
        _ if line.trim().is_empty() => Line::Blank,
        Some(b' ' | b'\t') => Line::Continuation,
        _ => Line::Field,
    }
}

/// `v.trim()`, with the common case (ASCII at both ends) decided on bytes:
/// the white space `char::is_whitespace` holds for in ASCII is cut
/// bytewise, and only a value that then starts or ends with a non-ASCII
/// byte takes the Unicode-aware trim (which gives the same result on the
/// rest, as it would have on the whole).
fn trim_value(v: &str) -> &str {
    let ws = |b: u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    let b = v.as_bytes();
    let mut start = 0;
    while start < b.len() && ws(b[start]) {
        start += 1;
    }
    let mut end = b.len();
    while end > start && ws(b[end - 1]) {
        end -= 1;
    }
    // Cut only at ASCII bytes: both ends are character boundaries.
    let rest = &v[start..end];
    match (rest.as_bytes().first(), rest.as_bytes().last()) {
        (Some(f), Some(l)) if !f.is_ascii() || !l.is_ascii() => rest.trim(),
        _ => rest,
    }
}

impl<'a> Stanzas<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            line_no: 0,
        }
    }

    /// Lines read so far (all of them once [`Stanzas::next_into`] returned
    /// `None`).
    pub fn lines_read(&self) -> usize {
        self.line_no
    }

    /// The next stanza's fields into `fields` (cleared first); returns the
    /// stanza's text (ending with its last line's newline, without the
    /// blank separator) and the 1-based line of its first line.
    pub fn next_into(&mut self, fields: &mut Vec<(&'a str, &'a str)>) -> Option<(&'a str, usize)> {
        fields.clear();
        let text = self.text;
        let bytes = text.as_bytes();
        let mut start = None;
        let mut first_line = 0;
        // End (exclusive, with its newline) of the stanza's last line.
        let mut last_end = 0;
        // (name, value start, value end) of the field being read.
        let mut cur: Option<(&'a str, usize, usize)> = None;
        while self.pos < bytes.len() {
            let pos = self.pos;
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            let line = &text[pos..end];
            let next = (end + 1).min(bytes.len());
            self.line_no += 1;
            self.pos = next;
            match classify(line) {
                Line::Blank => {
                    if start.is_some() {
                        break;
                    }
                }
                Line::Continuation => {
                    if start.is_none() {
                        start = Some(pos);
                        first_line = self.line_no;
                    }
                    if let Some((_, _, e)) = cur.as_mut() {
                        *e = end;
                    }
                    last_end = next;
                }
                Line::Field => {
                    if start.is_none() {
                        start = Some(pos);
                        first_line = self.line_no;
                    }
                    if let Some((n, s, e)) = cur.take() {
                        fields.push((n, trim_value(&text[s..e])));
                    }
                    // A plain loop: the colon is a few bytes in (a field
                    // name), too near for `memchr`'s set-up to pay.
                    match line.bytes().position(|b| b == b':') {
                        Some(c) => cur = Some((&line[..c], pos + c + 1, end)),
                        None => cur = None, // not a field: ignored, as apt does
                    }
                    last_end = next;
                }
            }
        }
        let start = start?;
        if let Some((n, s, e)) = cur.take() {
            fields.push((n, trim_value(&text[s..e])));
        }
        Some((&text[start..last_end], first_line))
    }
}

/// `text` cut into about `pieces` consecutive pieces, each ending just
/// after an empty line (`\n\n`) or at the end of the text: no stanza spans
/// two pieces, and every piece after the first starts at the beginning of
/// a line. Text without empty lines stays whole.
pub fn split_at_blank_lines(text: &str, pieces: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let step = text.len() / pieces.max(1);
    let mut out = Vec::with_capacity(pieces);
    let mut start = 0;
    while start < text.len() {
        let want = start + step.max(1);
        let cut = match bytes
            .get(want..)
            .and_then(|b| memchr::memmem::find(b, b"\n\n"))
        {
            Some(i) if pieces > 1 => want + i + 2,
            _ => text.len(),
        };
        out.push(&text[start..cut]);
        start = cut;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stanza read, owned: (text, first line, fields).
    type Read = (String, usize, Vec<(String, String)>);

    fn all(text: &str) -> Vec<Read> {
        stanzas(text)
            .map(|s| {
                let fields = s
                    .fields
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                (s.text.to_string(), s.line, fields)
            })
            .collect()
    }

    #[test]
    fn white_space_lines_and_odd_lines_read_as_before() {
        // A line of only white space (ASCII or not) ends a stanza; a
        // continuation before any field starts one; a line without a colon
        // is ignored (and ends the field before it).
        let text =
            "A: 1\n \t\nB: 2\n\u{a0}\nC: 3\n cont\nnot a field\r\n\u{e9}t\u{e9}: x\n\n\n D\nE:5";
        let got = all(text);
        let names: Vec<Vec<&str>> = got
            .iter()
            .map(|(_, _, f)| f.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [vec!["A"], vec!["B"], vec!["C", "\u{e9}t\u{e9}"], vec!["E"]]
        );
        assert_eq!(got[2].2[0].1, "3\n cont");
        assert_eq!(got[3].0, " D\nE:5");
        let lines: Vec<usize> = got.iter().map(|g| g.1).collect();
        assert_eq!(lines, [1, 3, 5, 11]);
    }

    /// The reader as it was before it was made fast (one `trim` per line,
    /// a byte loop for newlines): the oracle for the one above.
    fn reference(text: &str) -> Vec<Read> {
        let bytes = text.as_bytes();
        let (mut pos, mut line_no) = (0, 0);
        let mut out = Vec::new();
        loop {
            let (mut start, mut first_line, mut last_end) = (None, 0, 0);
            let mut fields = Vec::new();
            let mut cur: Option<(&str, usize, usize)> = None;
            while pos < bytes.len() {
                let end = bytes[pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| pos + i);
                let line = &text[pos..end];
                let next = (end + 1).min(bytes.len());
                line_no += 1;
                if line.trim().is_empty() {
                    if start.is_some() {
                        pos = next;
                        break;
                    }
                } else if line.starts_with([' ', '\t']) {
                    if start.is_none() {
                        (start, first_line) = (Some(pos), line_no);
                    }
                    if let Some((_, _, e)) = cur.as_mut() {
                        *e = end;
                    }
                    last_end = next;
                } else {
                    if start.is_none() {
                        (start, first_line) = (Some(pos), line_no);
                    }
                    if let Some((n, s, e)) = cur.take() {
                        fields.push((n.to_string(), text[s..e].trim().to_string()));
                    }
                    cur = line.find(':').map(|c| (&line[..c], pos + c + 1, end));
                    last_end = next;
                }
                pos = next;
            }
            let Some(start) = start else { return out };
            if let Some((n, s, e)) = cur.take() {
                fields.push((n.to_string(), text[s..e].trim().to_string()));
            }
            out.push((text[start..last_end].to_string(), first_line, fields));
        }
    }

    proptest::proptest! {
        #[test]
        fn values_trim_as_str_trim_does(v in "[ \t\n\u{b}\u{c}\r\u{a0}\u{2003}\u{85}a\u{e9}]{0,8}") {
            proptest::prop_assert_eq!(trim_value(&v), v.trim());
        }

        #[test]
        fn reads_exactly_what_the_simple_reader_read(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "A: 1", "Bb:", ":", " x", "\t", "  ", "\u{a0}", "\u{2003}y", "\u{e9}: 2",
                    "\r", "C: 3\r", "no colon", "", "\u{b}", "\u{c}z: 1",
                ]),
                0..40,
            ),
            seps in proptest::collection::vec(proptest::bool::ANY, 0..40),
        ) {
            let mut text = String::new();
            for (i, p) in parts.iter().enumerate() {
                text.push_str(p);
                if seps.get(i).copied().unwrap_or(true) {
                    text.push('\n');
                }
            }
            proptest::prop_assert_eq!(all(&text), reference(&text));
            // Pieces read on their own give the same stanzas, lines shifted.
            for n in [2, 3, 7] {
                let mut shift = 0;
                let mut got = Vec::new();
                for piece in split_at_blank_lines(&text, n) {
                    let mut r = Stanzas::new(piece);
                    let mut fields = Vec::new();
                    while let Some((t, line)) = r.next_into(&mut fields) {
                        let f = fields.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
                        got.push((t.to_string(), line + shift, f));
                    }
                    shift += r.lines_read();
                }
                proptest::prop_assert_eq!(&got, &reference(&text));
            }
        }
    }

    #[test]
    fn pieces_cut_at_empty_lines_only_and_cover_the_text() {
        let text = "A: 1\nB: 2\n\nA: 3\n\n\nA: 4\n x\n\nA: 5";
        for n in 1..12 {
            let pieces = split_at_blank_lines(text, n);
            assert_eq!(pieces.concat(), text, "{n}");
            for p in &pieces[..pieces.len() - 1] {
                assert!(p.ends_with("\n\n"), "{n}: {p:?}");
            }
        }
        assert_eq!(split_at_blank_lines("A: 1\nB: 2\n", 4), ["A: 1\nB: 2\n"]);
        assert!(split_at_blank_lines("", 4).is_empty());
    }
}
