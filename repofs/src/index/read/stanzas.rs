//! PURE: a lenient, zero-copy deb822 reader for upstream indices: one
//! pass over the text, one small struct per stanza whose field values
//! borrow it. Unlike `crate::deb822` (byte-faithful, strict, for what we
//! render and sign), it takes what apt takes: lines that are not fields
//! are ignored, so a 50 MB `Packages` index from any upstream reads in one
//! pass.

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
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut line_no = 0;
    std::iter::from_fn(move || {
        let mut start = None;
        let mut first_line = 0;
        // End (exclusive, with its newline) of the stanza's last line.
        let mut last_end = 0;
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(16);
        // (name, value start, value end) of the field being read.
        let mut cur: Option<(&str, usize, usize)> = None;
        while pos < bytes.len() {
            let end = memchr_newline(bytes, pos);
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
                    start = Some(pos);
                    first_line = line_no;
                }
                if let Some((_, _, e)) = cur.as_mut() {
                    *e = end;
                }
                last_end = next;
            } else {
                if start.is_none() {
                    start = Some(pos);
                    first_line = line_no;
                }
                if let Some((n, s, e)) = cur.take() {
                    fields.push((n, text[s..e].trim()));
                }
                match line.find(':') {
                    Some(c) => cur = Some((&line[..c], pos + c + 1, end)),
                    None => cur = None, // not a field: ignored, as apt does
                }
                last_end = next;
            }
            pos = next;
        }
        let start = start?;
        if let Some((n, s, e)) = cur.take() {
            fields.push((n, text[s..e].trim()));
        }
        Some(Stanza {
            text: &text[start..last_end],
            line: first_line,
            fields,
        })
    })
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| from + i)
}
