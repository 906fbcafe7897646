//! Relationship fields (Depends, Pre-Depends, Recommends, Suggests,
//! Enhances, Breaks, Conflicts, Replaces, Provides, Built-Using,
//! Build-Depends*, Build-Conflicts*) checked against the grammar of
//! deb-control(5) and Debian Policy 7.1 (a comma-separated list of groups,
//! each `|`-separated alternatives of
//! `name[:archqual] [(op version)] [[arch ...]] [<profile ...>]...`), as
//! leniently as apt reads it: what apt accepts passes (a missing operator,
//! an empty qualifier), what it cannot parse is refused.
//!
//! Why: apt parses every stanza of a `Packages` file, and one it cannot
//! parse makes `apt-get update` fail for every client of that dist. dpkg-deb
//! refuses such fields, but a hand-made `.deb` or an upstream index can
//! carry them; the store refuses them at the door instead.

/// The fields checked, as they appear in binary and source paragraphs.
pub const RELATION_FIELDS: [&str; 16] = [
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Enhances",
    "Breaks",
    "Conflicts",
    "Replaces",
    "Provides",
    "Built-Using",
    "Static-Built-Using",
    "Build-Depends",
    "Build-Depends-Indep",
    "Build-Depends-Arch",
    "Build-Conflicts",
    "Build-Conflicts-Indep",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {reason} in {text:?}")]
pub struct RelationError {
    pub field: String,
    pub text: String,
    pub reason: &'static str,
}

/// Ends a package name (apt's parser reads a name up to one of these).
fn ends_name(c: char) -> bool {
    c.is_whitespace() || ",|(<[:".contains(c)
}

/// Checks one relationship field's value.
pub fn check_relation(field: &str, value: &str) -> Result<(), RelationError> {
    let err = |text: &str, reason| RelationError {
        field: field.to_string(),
        text: text.trim().to_string(),
        reason,
    };
    // Architecture lists and build profiles belong to build relations
    // only: apt refuses them in a binary package's fields.
    let build = field.to_ascii_lowercase().starts_with("build-");
    // Continuation lines are whitespace to the grammar.
    let value = value.replace('\n', " ");
    if value.trim().is_empty() {
        return Ok(());
    }
    // A trailing comma is accepted (dpkg writes none, but tolerates it);
    // an empty element between two relations ("a, , b") is not.
    let body = value.trim_end().trim_end_matches(',');
    if body.split(',').any(|g| g.trim().is_empty()) {
        return Err(err(&value, "an empty element between commas"));
    }
    for group in body.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        for alt in group.split('|') {
            let shown = if alt.trim().is_empty() { group } else { alt };
            check_alternative(alt, build).map_err(|reason| err(shown, reason))?;
        }
    }
    Ok(())
}

fn check_alternative(alt: &str, build: bool) -> Result<(), &'static str> {
    let s = alt.trim();
    if s.is_empty() {
        return Err("an empty alternative");
    }
    let name_end = s.find(ends_name).unwrap_or(s.len());
    if name_end == 0 {
        return Err("a relation without a package name");
    }
    let mut rest = &s[name_end..];
    if let Some(q) = rest.strip_prefix(':') {
        // apt takes an empty qualifier (`a:`) as none.
        let end = q
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(q.len());
        rest = &q[end..];
    }
    rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix('(') {
        let close = r.find(')').ok_or("an unclosed '('")?;
        let inner = r[..close].trim();
        // apt reads a missing operator as `=`.
        let op_len = ["<<", "<=", ">=", ">>", "=", "<", ">"]
            .iter()
            .find(|op| inner.starts_with(**op))
            .map_or(0, |op| op.len());
        if inner[op_len..].trim().is_empty() {
            return Err("an empty version in a constraint");
        }
        rest = r[close + 1..].trim_start();
    }
    if !build && (rest.starts_with('[') || rest.starts_with('<')) {
        return Err("an architecture list or build profile outside Build-Depends");
    }
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or("an unclosed '['")?;
        if r[..close].trim().is_empty() {
            return Err("an empty architecture list");
        }
        rest = r[close + 1..].trim_start();
    }
    while let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>').ok_or("an unclosed '<'")?;
        if r[..close].trim().is_empty() {
            return Err("an empty build profile list");
        }
        rest = r[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err("unexpected text after a relation");
    }
    Ok(())
}

/// Checks every relationship field of a paragraph.
pub fn check_relations<'a>(
    fields: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), RelationError> {
    for (name, value) in fields {
        if RELATION_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            check_relation(name, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_dpkg_and_apt_accept_passes() {
        for v in [
            "libc6 (>= 2.34)",
            "a | b (<< 2:1.0~rc1-1), c:any, d:amd64",
            "python3:any (>= 3.11~)",
            "foo (=1.0), bar (>>1)",
            "x,\n y",
            "trailing-comma,",
            "",
            "perl (< 5), old (> 1)",
            // apt reads these too, so they pass (tests/tests/relations.rs
            // checks both lists against the real apt).
            "foo (1.0)",
            "-a",
            "foo (>= 1 .0)",
            "a:",
        ] {
            check_relation("Depends", v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        }
        let build = "d:amd64 [amd64 !i386] <!nocheck> <stage1 cross>, e";
        check_relation("Build-Depends", build).unwrap();
        assert!(check_relation("Depends", build).is_err());
    }

    #[test]
    fn what_apt_cannot_parse_is_refused_with_field_and_text() {
        for (v, reason) in [
            ("foo :| bar", "unexpected text"),
            ("foo (>= 1.0", "unclosed '('"),
            ("foo (>= )", "empty version"),
            ("a, , b", "empty element"),
            ("a | | b", "empty alternative"),
            ("(>= 1)", "without a package name"),
            ("a [amd64]", "outside Build-Depends"),
            ("a <nocheck>", "outside Build-Depends"),
            ("a b", "unexpected text"),
        ] {
            let e = check_relation("Depends", v).unwrap_err();
            assert!(e.reason.contains(reason), "{v:?}: {e}");
            assert!(e.to_string().starts_with("field Depends: "), "{e}");
        }
        for (v, reason) in [
            ("a [amd64", "unclosed '['"),
            ("a <nocheck", "unclosed '<'"),
            ("a []", "empty architecture"),
        ] {
            let e = check_relation("Build-Depends", v).unwrap_err();
            assert!(e.reason.contains(reason), "{v:?}: {e}");
        }
    }
}
