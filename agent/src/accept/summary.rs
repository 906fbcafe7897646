//! The one-line message a failed step's JUnit failure carries: the lines
//! of its output that say why, in the words of whoever refused. PURE:
//! output lines in, a string out.
//!
//! - dpkg's "error processing" names the package whose maintainer script
//!   failed; the lines since dpkg started on that package (`Setting up`,
//!   `Preparing to unpack`) are the script's own words, and come first.
//! - apt's "unmet dependencies" block and its `E:` lines ("Unable to locate
//!   package", "is not signed") say what apt could not do.
//! - Anything else: the last lines.

/// A message longer than this keeps its end (Jenkins shows it on one line).
const MESSAGE_MAX: usize = 2000;

/// Lines dpkg prints when it starts on a package: a maintainer script's
/// output follows them.
const DPKG_STARTS: [&str; 5] = [
    "Setting up ",
    "Preparing to unpack ",
    "Unpacking ",
    "Removing ",
    "Purging configuration files for ",
];

/// Why a step failed, from its output; `None` when it printed nothing.
pub fn summarize(lines: &[&str]) -> Option<String> {
    let mut picked: Vec<&str> = dpkg_errors(lines);
    if picked.is_empty() {
        picked = apt_errors(lines);
    }
    if picked.is_empty() {
        let meaningful: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect();
        picked = meaningful[meaningful.len().saturating_sub(5)..].to_vec();
    }
    let text = picked
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    if text.is_empty() {
        return None;
    }
    Some(keep_end(&text, MESSAGE_MAX))
}

/// Each `dpkg: error processing ...` with the lines before it back to
/// where dpkg started on the package, and its indented explanation.
fn dpkg_errors<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("dpkg: error processing ") {
            continue;
        }
        let start = lines[..i]
            .iter()
            .rposition(|l| DPKG_STARTS.iter().any(|s| l.starts_with(s)))
            .map_or(i, |j| j + 1);
        out.extend(&lines[start..=i]);
        out.extend(
            lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with(' ') && !l.trim().is_empty()),
        );
    }
    out
}

/// apt's unmet-dependencies block and its `E:` lines.
fn apt_errors<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    if let Some(i) = lines
        .iter()
        .position(|l| l.starts_with("The following packages have unmet dependencies"))
    {
        out.push(lines[i]);
        out.extend(lines[i + 1..].iter().take_while(|l| l.starts_with(' ')));
    }
    out.extend(lines.iter().filter(|l| l.starts_with("E: ")));
    out
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn keep_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("...{}", &text[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    /// Captured from `apt-get install halo-broken` in a bookworm system.
    const POSTINST: &str = "\
Preparing to unpack .../main/halo-hello_1.0_all.deb ...
Unpacking halo-hello (1.0) ...
Selecting previously unselected package halo-broken.
Preparing to unpack .../main/halo-broken_1.0_all.deb ...
Unpacking halo-broken (1.0) ...
Setting up halo-hello (1.0) ...
Setting up halo-broken (1.0) ...
halo-broken: cannot configure: the flux capacitor is missing
dpkg: error processing package halo-broken (--configure):
 installed halo-broken package post-installation script subprocess returned error exit status 3
Errors were encountered while processing:
 halo-broken
E: Sub-process /usr/bin/dpkg returned an error code (1)
";

    #[test]
    fn a_failing_maintainer_script_speaks_first() {
        assert_eq!(
            summarize(&lines(POSTINST)).unwrap(),
            "halo-broken: cannot configure: the flux capacitor is missing / \
             dpkg: error processing package halo-broken (--configure): / \
             installed halo-broken package post-installation script subprocess returned error exit status 3"
        );
    }

    #[test]
    fn apt_says_what_it_could_not_find_or_resolve() {
        let missing = "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package nosuch\n";
        assert_eq!(
            summarize(&lines(missing)).unwrap(),
            "E: Unable to locate package nosuch"
        );
        let unmet = "\
Some packages could not be installed. This may mean that you have
requested an impossible situation.
The following packages have unmet dependencies:
 app : Depends: lib (>= 3) but 2.0 is to be installed
E: Unable to correct problems, you have held broken packages.
";
        assert_eq!(
            summarize(&lines(unmet)).unwrap(),
            "The following packages have unmet dependencies: / \
             app : Depends: lib (>= 3) but 2.0 is to be installed / \
             E: Unable to correct problems, you have held broken packages."
        );
    }

    #[test]
    fn otherwise_the_last_lines_and_nothing_for_silence() {
        let text = "1\n2\n\n3\n4\n5\n6\n";
        assert_eq!(summarize(&lines(text)).unwrap(), "2 / 3 / 4 / 5 / 6");
        assert_eq!(summarize(&lines("\n \n")), None);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn long_messages_keep_their_end() {
        let long = format!("E: {}é\n", "x".repeat(5000));
        let s = summarize(&lines(&long)).unwrap();
        assert!(s.len() <= MESSAGE_MAX + 3 && s.ends_with("xé") && s.starts_with("..."));
    }
}
