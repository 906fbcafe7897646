//! Relationship fields (Depends, Pre-Depends, Recommends, Suggests,
//! Enhances, Breaks, Conflicts, Replaces, Provides, Built-Using,
//! Build-Depends*, Build-Conflicts*) and `Multi-Arch`, checked as dpkg
//! checks them: the binary fields with the grammar of dpkg's own parser
//! (`f_dependency` in lib/dpkg/fields.c, what `dpkg-deb --build` and
//! `dpkg -i` apply), the build fields with dpkg-dev's (`Dpkg::Deps`, what
//! `dpkg-source` and `dpkg-checkbuilddeps` apply), which adds
//! architecture lists and build profiles.
//!
//! A field is a comma-separated list of groups, each `|`-separated
//! alternatives of `name[:arch] [(op version)]` (and, in build fields,
//! `[arch ...]` and `<profile ...>...`). Package names follow dpkg's
//! `pkg_name_is_illegal` (an alphanumeric, then alphanumerics and `-+._`;
//! `Dpkg::Deps` does not take `_`), architecture names
//! `dpkg_arch_name_is_illegal`, versions [`Version::parse`] (dpkg's
//! `parseversion`; `Dpkg::Deps` takes any version without spaces). What
//! dpkg only warns about passes (`(1.0)` without an operator, the obsolete
//! `<` and `>`, an inexact version in Provides); what it refuses is
//! refused. One deliberate difference: an empty element (`a, , b`) is
//! refused in build fields too, where `Dpkg::Deps` skips it, because apt
//! cannot parse it.
//!
//! Why: a package dpkg will not install is no package. Published, it makes
//! apt warn on every update of every client and fails when installed; the
//! store refuses it at the door instead (at import, and in a mirror's
//! indices).

use super::version::Version;

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

/// The fields dpkg refuses alternatives (`|`) in.
const NO_ALTERNATIVES: [&str; 4] = ["Breaks", "Conflicts", "Provides", "Replaces"];

/// dpkg's `Multi-Arch` values (read case-insensitively, as dpkg does).
const MULTI_ARCH: [&str; 4] = ["no", "same", "foreign", "allowed"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {reason} in {text:?}")]
pub struct RelationError {
    pub field: String,
    pub text: String,
    pub reason: String,
}

/// Whitespace to dpkg (`c_isspace`): continuation lines included.
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// dpkg's `pkg_name_is_illegal`.
fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("a relation without a package name".to_string());
    };
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "package name {name:?} must start with an alphanumeric character"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_')))
    {
        Some(c) => Err(format!(
            "package name {name:?}: character {c:?} not allowed (only letters, digits and -+._)"
        )),
        None => Ok(()),
    }
}

/// dpkg's `dpkg_arch_name_is_illegal` (qualifiers `any` and `native` pass
/// as names do).
fn check_arch(arch: &str) -> Result<(), String> {
    let Some(first) = arch.chars().next() else {
        return Err("a missing architecture name after ':'".to_string());
    };
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "architecture {arch:?} must start with an alphanumeric character"
        ));
    }
    match arch
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(c) => Err(format!(
            "architecture {arch:?}: character {c:?} not allowed (only letters, digits and -)"
        )),
        None => Ok(()),
    }
}

/// What kind of field: which parts of the grammar it allows.
struct Kind {
    /// Build-Depends*, Build-Conflicts*: `[arch]`, `<profile>`, and (as
    /// `Dpkg::Deps` reads them) trailing commas; an operator is required.
    build: bool,
    alternatives: bool,
}

impl Kind {
    fn of(field: &str) -> Self {
        Self {
            build: field
                .as_bytes()
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"build-")),
            alternatives: !NO_ALTERNATIVES
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field)),
        }
    }
}

/// Checks one relationship field's value.
pub fn check_relation(field: &str, value: &str) -> Result<(), RelationError> {
    let kind = Kind::of(field);
    if !kind.build && plainly_valid(value, kind.alternatives) {
        return Ok(());
    }
    check_relation_slowly(field, value, &kind)
}

/// ASCII white space as [`is_space`] (and dpkg) has it.
fn is_space_byte(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// The first index at or after `i` that is not white space.
fn skip_spaces(v: &[u8], mut i: usize) -> usize {
    while v.get(i).copied().is_some_and(is_space_byte) {
        i += 1;
    }
    i
}

/// The end of the run of bytes from `i` that `ok` takes.
fn run(v: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> usize {
    while v.get(i).copied().is_some_and(&ok) {
        i += 1;
    }
    i
}

/// True only for a binary field's value that [`check_relation_slowly`]
/// certainly accepts: the common shape `name[:arch] [(op version)]`,
/// `,`- and (when allowed) `|`-separated, in ASCII, with one of the five
/// operators dpkg writes. Anything else (an error, a warning dpkg gives,
/// any other byte) answers false and takes the full check, which then
/// decides and words the error. Why: every stanza of a 50 MB upstream
/// index is checked, and the general check walks `char`s with several
/// splits and trims per element (a fifth of the parse's time); this walks
/// the bytes once. `fast_path_agrees_with_the_full_check` holds it to the
/// full check.
fn plainly_valid(text: &str, alternatives: bool) -> bool {
    let v = text.as_bytes();
    let mut i = skip_spaces(v, 0);
    if i == v.len() {
        return false; // empty: the full check says why it passes
    }
    loop {
        // name: an alphanumeric, then alphanumerics and -+._
        if !v[i].is_ascii_alphanumeric() {
            return false;
        }
        i = run(v, i + 1, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_')
        });
        // :arch
        if v.get(i) == Some(&b':') {
            i += 1;
            if !v.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                return false;
            }
            i = run(v, i + 1, |b| b.is_ascii_alphanumeric() || b == b'-');
        }
        i = skip_spaces(v, i);
        // (op version)
        if v.get(i) == Some(&b'(') {
            i = skip_spaces(v, i + 1);
            let op = match (v.get(i), v.get(i + 1)) {
                (Some(b'<'), Some(b'<' | b'=')) | (Some(b'>'), Some(b'>' | b'=')) => 2,
                (Some(b'='), Some(b)) if *b != b'<' && *b != b'>' && *b != b'=' => 1,
                _ => return false,
            };
            let start = skip_spaces(v, i + op);
            let end = run(v, start, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':')
            });
            if end == start {
                return false;
            }
            // Only ASCII was taken: both ends are character boundaries.
            if Version::check(&text[start..end]).is_err() {
                return false;
            }
            i = skip_spaces(v, end);
            if v.get(i) != Some(&b')') {
                return false;
            }
            i = skip_spaces(v, i + 1);
        }
        match v.get(i) {
            None => return true,
            Some(b',') => {}
            Some(b'|') if alternatives => {}
            Some(_) => return false,
        }
        i = skip_spaces(v, i + 1);
        if i == v.len() {
            return false; // a trailing separator: an error, worded there
        }
    }
}

/// [`check_relation`] in full: every shape dpkg takes or refuses.
fn check_relation_slowly(field: &str, value: &str, kind: &Kind) -> Result<(), RelationError> {
    let err = |text: &str, reason: String| RelationError {
        field: field.to_string(),
        text: text.trim().to_string(),
        reason,
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(()); // dpkg ignores an empty field
    }
    // dpkg takes no trailing comma ("a," is a missing package name);
    // Dpkg::Deps, which reads the build fields, drops them.
    let body = if kind.build {
        value.trim_end_matches(|c: char| c == ',' || is_space(c))
    } else {
        value
    };
    for group in body.split(',') {
        if group.trim().is_empty() {
            let reason = if kind.build {
                "an empty element between commas"
            } else {
                "a missing package name (an empty element or a trailing comma)"
            };
            return Err(err(value, reason.to_string()));
        }
        if !kind.alternatives && group.contains('|') {
            return Err(err(
                group,
                format!("alternatives ('|') are not allowed in {field}"),
            ));
        }
        for alt in group.split('|') {
            if alt.trim().is_empty() {
                return Err(err(group, "an empty alternative".to_string()));
            }
            check_alternative(alt, kind).map_err(|reason| err(alt, reason))?;
        }
    }
    Ok(())
}

/// One `name[:arch] [(op version)] [[archs]] [<profiles>]...`.
fn check_alternative(alt: &str, kind: &Kind) -> Result<(), String> {
    let s = alt.trim();
    // A name ends where dpkg's scan ends it; `[` and `<` end it too, so
    // `a[amd64]` is reported as a misplaced list, not a bad character.
    let ends_name = |c: char| is_space(c) || ":([<".contains(c);
    let name_end = s.find(ends_name).unwrap_or(s.len());
    let name = &s[..name_end];
    check_name(name)?;
    if kind.build && name.contains('_') {
        return Err(format!(
            "package name {name:?}: character '_' not allowed in a build relation"
        ));
    }
    let mut rest = &s[name_end..];
    if let Some(q) = rest.strip_prefix(':') {
        let end = q
            .find(|c: char| is_space(c) || "([<".contains(c))
            .unwrap_or(q.len());
        check_arch(&q[..end]).map_err(|e| format!("reference to {name:?}: {e}"))?;
        rest = &q[end..];
    }
    rest = rest.trim_start_matches(is_space);
    if let Some(r) = rest.strip_prefix('(') {
        rest = check_version_part(name, r, kind)?;
    }
    rest = rest.trim_start_matches(is_space);
    if !kind.build && (rest.starts_with('[') || rest.starts_with('<')) {
        return Err(format!(
            "reference to {name:?}: an architecture list or build profile outside Build-Depends"
        ));
    }
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or("an unclosed '['")?;
        // Dpkg::Deps reads the list's words later, not at parse time.
        if r[..close].trim().is_empty() {
            return Err("an empty architecture list".to_string());
        }
        rest = r[close + 1..].trim_start_matches(is_space);
    }
    while let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>').ok_or("an unclosed '<'")?;
        if r[..close].trim().is_empty() {
            return Err("an empty build profile list".to_string());
        }
        rest = r[close + 1..].trim_start_matches(is_space);
    }
    if !rest.is_empty() {
        return Err(format!("syntax error after reference to package {name:?}"));
    }
    Ok(())
}

/// `op version)` after the `(`: the text after the `)`.
fn check_version_part<'a>(name: &str, r: &'a str, kind: &Kind) -> Result<&'a str, String> {
    let r = r.trim_start_matches(is_space);
    let mut chars = r.chars();
    let (c1, c2) = (chars.next(), chars.next());
    let op_len = match (c1, c2) {
        (Some(a @ ('<' | '>')), Some(b)) if b == '=' || b == a => 2,
        (Some('<' | '>'), Some(b @ ('<' | '>'))) => {
            return Err(format!(
                "reference to {name:?}: bad version relationship {}{b}",
                c1.unwrap_or(' ')
            ))
        }
        // The obsolete `<` and `>`: dpkg warns and reads `<=`/`>=`.
        (Some('<' | '>'), _) => 1,
        (Some('='), _) => 1,
        // dpkg reads a missing operator as `=`, with a warning;
        // Dpkg::Deps cannot parse it.
        _ if kind.build => {
            return Err(format!(
                "reference to {name:?}: a version without an operator"
            ))
        }
        _ => 0,
    };
    let after_op = r[op_len..].trim_start_matches(is_space);
    let version_end = after_op
        .find(|c: char| c == ')' || c == '(' || is_space(c))
        .unwrap_or(after_op.len());
    let version = &after_op[..version_end];
    let tail = after_op[version_end..].trim_start_matches(is_space);
    match tail.chars().next() {
        None => {
            return Err(format!(
                "reference to {name:?}: version unterminated (an unclosed '(')"
            ))
        }
        Some(')') => {}
        Some('(') => return Err(format!("reference to {name:?}: version contains '('")),
        Some(_) => return Err(format!("reference to {name:?}: version contains ' '")),
    }
    if version.is_empty() {
        return Err(format!("reference to {name:?}: an empty version"));
    }
    if !kind.build {
        Version::check(version).map_err(|e| format!("reference to {name:?}: {e}"))?;
    }
    Ok(&tail[1..])
}

/// `Multi-Arch` as dpkg reads it: one of no, same, foreign, allowed (any
/// case), and never `same` on an `Architecture: all` package.
pub fn check_multi_arch(value: &str, arch: Option<&str>) -> Result<(), RelationError> {
    let v = value.trim();
    let err = |reason: String| RelationError {
        field: "Multi-Arch".to_string(),
        text: v.to_string(),
        reason,
    };
    if v.is_empty() {
        return Ok(());
    }
    if !MULTI_ARCH.iter().any(|m| m.eq_ignore_ascii_case(v)) {
        return Err(err(format!("not one of {}", MULTI_ARCH.join(", "))));
    }
    if v.eq_ignore_ascii_case("same") && arch.map(str::trim) == Some("all") {
        return Err(err(
            "'same' on an Architecture: all package (dpkg refuses it)".to_string(),
        ));
    }
    Ok(())
}

/// Whether `name` is one of [`RELATION_FIELDS`] (in any case): decided by
/// its length first, as a paragraph's every field is asked.
#[inline]
fn is_relation_field(name: &str) -> bool {
    let candidates: &[&str] = match name.len() {
        6 => &["Breaks"],
        7 => &["Depends"],
        8 => &["Suggests", "Enhances", "Replaces", "Provides"],
        9 => &["Conflicts"],
        10 => &["Recommends"],
        11 => &["Pre-Depends", "Built-Using"],
        13 => &["Build-Depends"],
        15 => &["Build-Conflicts"],
        18 => &["Static-Built-Using", "Build-Depends-Arch"],
        19 => &["Build-Depends-Indep"],
        21 => &["Build-Conflicts-Indep"],
        _ => return false,
    };
    candidates.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// Checks every relationship field of a paragraph, and its `Multi-Arch`.
pub fn check_relations<'a>(
    fields: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), RelationError> {
    let mut multi_arch = None;
    let mut arch = None;
    for (name, value) in fields {
        if is_relation_field(name) {
            check_relation(name, value)?;
        } else if name.eq_ignore_ascii_case("Multi-Arch") {
            multi_arch = Some(value);
        } else if name.eq_ignore_ascii_case("Architecture") {
            arch = Some(value);
        }
    }
    match multi_arch {
        Some(m) => check_multi_arch(m, arch),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `dpkg-deb --build` takes (some with a warning). Each was
    /// checked against dpkg 1.21 (tests/tests/relations.rs does it again).
    #[test]
    fn what_dpkg_accepts_passes() {
        for v in [
            "libc6 (>= 2.34)",
            "a | b (<< 2:1.0~rc1-1), c:any, d:amd64",
            "python3:any (>= 3.11~)",
            "foo (=1.0), bar (>>1)",
            "x,\n y",
            "",
            "perl (< 5), old (> 1)",
            "foo (1.0)",
            "a ( >= 1 )",
            "a(>=1)",
            "a:any(>=1)",
            "a|b",
            "Foo, a_b, 9a, a:Amd64, a:native",
            "a (>= 1:2:3), a (>= 1.0-1-2), a (>= 0)",
        ] {
            check_relation("Depends", v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        }
        check_relation("Provides", "a (= 1), b:any, c (>= 1)").unwrap();
        check_relation("Enhances", "a | b").unwrap();
        let build = "d:amd64 [amd64 !i386] <!nocheck> <stage1 cross>, e (>= 1) [linux-any],";
        check_relation("Build-Depends", build).unwrap();
        // What dpkg-source takes (checked with dpkg-source -b, dpkg 1.21).
        for v in ["a,", "a (>= abc)", "A", "a (=>1.0)"] {
            check_relation("Build-Depends", v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        }
        assert!(check_relation("Depends", build).is_err());
        for m in ["same", "foreign", "allowed", "no", "FOREIGN", ""] {
            check_multi_arch(m, Some("amd64")).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        }
    }

    #[test]
    fn relation_fields_are_known_by_length_then_name() {
        for f in RELATION_FIELDS {
            assert!(is_relation_field(f), "{f}");
            assert!(is_relation_field(&f.to_ascii_uppercase()), "{f}");
            assert!(is_relation_field(&f.to_ascii_lowercase()), "{f}");
        }
        for f in [
            "Package",
            "Multi-Arch",
            "Depend",
            "Dependss",
            "Build-Depends-Indeq",
            "Sources",
            "",
        ] {
            assert!(!is_relation_field(f), "{f}");
        }
    }

    /// Pieces of relation values, right and wrong, for the fast path.
    fn relation_piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "a",
            "libc6",
            "Foo",
            "9a",
            "a_b",
            "x+y.z-w",
            "-a",
            "%",
            ":",
            ":any",
            ":amd64",
            ":b_c",
            ":",
            " ",
            "\t",
            "\n ",
            "\u{b}",
            "\u{a0}",
            "(",
            ")",
            "(>= 1.0)",
            "(>=1)",
            "(<< 2:1.0~rc1-1)",
            "(= 1)",
            "(=1)",
            "(== 1)",
            "(< 5)",
            "(> 1)",
            "(1.0)",
            "(>< 1)",
            "(<> 1)",
            "(>= )",
            "(>= abc)",
            "(>= 1 .0)",
            "(>= 1-)",
            "(>= 1:)",
            "( >= 1 )",
            "(<= 0)",
            "(>> 1",
            ",",
            ", ",
            "|",
            " | ",
            "[amd64]",
            "<nocheck>",
            "1.0",
            "=",
            "\u{e9}",
        ])
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_the_full_check(
            parts in proptest::collection::vec(relation_piece(), 0..12),
        ) {
            let v = parts.concat();
            agree(&v)?;
        }

        #[test]
        fn fast_path_agrees_on_relation_shaped_values(
            v in "([a-zA-Z0-9%-][a-z0-9+._-]{0,4}(:[a-z0-9_-]{0,4})? {0,2}(\\( ?(<<|<=|>=|>>|=|==|<|>|><)? ?[0-9a-z.+~:-]{0,6} ?\\))? ?[,|]? ?){1,4}",
        ) {
            agree(&v)?;
        }
    }

    fn agree(v: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        for field in ["Depends", "Provides", "Breaks", "Build-Depends"] {
            let kind = Kind::of(field);
            let slow = check_relation_slowly(field, v, &kind);
            proptest::prop_assert_eq!(check_relation(field, v), slow.clone());
            if !kind.build && plainly_valid(v, kind.alternatives) {
                proptest::prop_assert!(slow.is_ok(), "{:?} {:?}", field, v);
            }
        }
        Ok(())
    }

    #[test]
    fn fast_path_takes_the_common_shapes() {
        for v in [
            "libc6 (>= 2.34)",
            "a | b (<< 2:1.0~rc1-1), c:any, d:amd64",
            "x,\n y",
            "a ( >= 1 )",
            "a:any(>=1)",
            "a (= 1.0-1)",
        ] {
            assert!(plainly_valid(v, true), "{v:?}");
        }
        for v in ["", "a (< 5)", "a (1.0)", "a,", "a, , b", "a | b\u{b}"] {
            assert!(!plainly_valid(v, true), "{v:?}");
        }
        assert!(!plainly_valid("a | b", false));
    }

    #[test]
    fn what_dpkg_refuses_is_refused_with_field_and_text() {
        for (v, reason) in [
            ("foo (=> 1.0)", "version contains ' '"),
            ("foo (=>1.0)", "must start with a digit"),
            ("foo :| bar", "syntax error"),
            ("foo (>= 1.0", "unterminated"),
            ("foo (>= )", "empty version"),
            ("a, , b", "missing package name"),
            ("trailing,", "missing package name"),
            ("a | | b", "empty alternative"),
            ("(>= 1)", "without a package name"),
            ("a [amd64]", "outside Build-Depends"),
            ("a <nocheck>", "outside Build-Depends"),
            ("a b", "syntax error"),
            ("-a", "must start with an alphanumeric"),
            ("a:", "missing architecture"),
            ("a:b_c", "not allowed"),
            ("a (>< 1)", "bad version relationship"),
            ("a (>= 1 .0)", "version contains ' '"),
            ("a (>= abc)", "must start with a digit"),
            ("a (= 1_0)", "character"),
            ("a (>= 1)(<< 2)", "syntax error"),
            ("a%b", "not allowed"),
        ] {
            let e = check_relation("Depends", v).unwrap_err();
            assert!(e.reason.contains(reason), "{v:?}: {e}");
            assert!(e.to_string().starts_with("field Depends: "), "{e}");
        }
        let e = check_relation("Provides", "%%%").unwrap_err();
        assert!(e.reason.contains("must start with an alphanumeric"), "{e}");
        for f in ["Breaks", "Conflicts", "Provides", "Replaces"] {
            let e = check_relation(f, "a | b").unwrap_err();
            assert!(e.reason.contains("alternatives"), "{f}: {e}");
        }
        for (v, reason) in [
            ("a [amd64", "unclosed '['"),
            ("a <nocheck", "unclosed '<'"),
            ("a []", "empty architecture"),
            ("a (1.0)", "without an operator"),
            ("a, , b", "empty element"),
            ("a_b", "'_' not allowed"),
            ("foo (=> 1.0)", "version contains ' '"),
            ("-a", "must start with an alphanumeric"),
            ("a:", "missing architecture"),
        ] {
            let e = check_relation("Build-Depends", v).unwrap_err();
            assert!(e.reason.contains(reason), "{v:?}: {e}");
        }
        let e = check_multi_arch("sometimes", Some("amd64")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field Multi-Arch: not one of no, same, foreign, allowed in \"sometimes\""
        );
        assert!(check_multi_arch("foreign x", None).is_err());
        assert!(check_multi_arch("same", Some("all")).is_err());
        let fields = [("Architecture", "all"), ("Multi-Arch", "Same")];
        assert!(check_relations(fields.into_iter()).is_err());
    }
}
