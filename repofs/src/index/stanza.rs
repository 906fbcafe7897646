//! `Packages` and `Sources` stanzas, field for field what `dpkg-scanpackages`
//! and `dpkg-scansources` print for the same files.
//!
//! Field order is dpkg's (`Dpkg::Control::FieldsCore`, CTRL_INDEX_PKG and
//! CTRL_INDEX_SRC): known fields in that order, unknown ones after them in
//! the order the control file had them. Stanzas are rendered once, at
//! import, and concatenated at snapshot time.

use crate::deb822::Paragraph;
use crate::debian::ListedFile;
use crate::hash::Digests;

/// dpkg's order for binary index paragraphs.
const PACKAGES_ORDER: &[&str] = &[
    "package",
    "package-type",
    "source",
    "version",
    "kernel-version",
    "built-for-profiles",
    "auto-built-package",
    "architecture",
    "subarchitecture",
    "installer-menu-item",
    "build-essential",
    "essential",
    "protected",
    "origin",
    "bugs",
    "maintainer",
    "installed-size",
    "pre-depends",
    "depends",
    "recommends",
    "suggests",
    "enhances",
    "conflicts",
    "breaks",
    "replaces",
    "provides",
    "built-using",
    "static-built-using",
    "filename",
    "size",
    "md5sum",
    "sha1",
    "sha256",
    "section",
    "priority",
    "multi-arch",
    "homepage",
    "description",
    "tag",
    "task",
];

/// dpkg's order for source index paragraphs.
const SOURCES_ORDER: &[&str] = &[
    "format",
    "package",
    "binary",
    "architecture",
    "version",
    "priority",
    "section",
    "origin",
    "maintainer",
    "uploaders",
    "homepage",
    "description",
    "standards-version",
    "vcs-browser",
    "vcs-arch",
    "vcs-bzr",
    "vcs-cvs",
    "vcs-darcs",
    "vcs-git",
    "vcs-hg",
    "vcs-mtn",
    "vcs-svn",
    "testsuite",
    "testsuite-triggers",
    "build-depends",
    "build-depends-arch",
    "build-depends-indep",
    "build-conflicts",
    "build-conflicts-arch",
    "build-conflicts-indep",
    "package-list",
    "directory",
    "checksums-md5",
    "checksums-sha1",
    "checksums-sha256",
    "files",
];

/// The `Packages` stanza of a binary package stored at `filename` (a pool
/// path relative to the archive root). Ends with a newline, no blank line.
pub fn render_binary_stanza(control: &Paragraph, filename: &str, digests: &Digests) -> String {
    let mut p = control.clone();
    for f in ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"] {
        p.remove(f);
    }
    p.set("Filename", filename);
    p.set("Size", digests.size.to_string());
    p.set("MD5sum", digests.md5.as_str());
    p.set("SHA1", digests.sha1.as_str());
    p.set("SHA256", digests.sha256.as_str());
    p.reorder(PACKAGES_ORDER);
    p.to_string()
}

/// The `Sources` stanza for a `.dsc` (its signature already stripped) whose
/// files live in `directory`; `dsc` is the `.dsc` file itself, which
/// dpkg-scansources lists first.
pub fn render_source_stanza(
    dsc: &Paragraph,
    directory: &str,
    dsc_file: &ListedFile,
    files: &[ListedFile],
) -> String {
    let mut p = dsc.clone();
    let source = p.remove("Source").unwrap_or_default();
    for f in [
        "Package",
        "Files",
        "Checksums-Md5",
        "Checksums-Sha1",
        "Checksums-Sha256",
        "Checksums-Sha512",
        "Directory",
    ] {
        p.remove(f);
    }
    p.set("Package", source);
    p.set("Directory", directory);
    let all: Vec<&ListedFile> = std::iter::once(dsc_file).chain(files).collect();
    let list = |pick: fn(&ListedFile) -> Option<&str>| {
        let mut s = String::new();
        for f in &all {
            if let Some(sum) = pick(f) {
                s.push_str(&format!("\n {} {} {}", sum, f.size, f.name));
            }
        }
        s
    };
    p.set("Files", list(|f| f.md5.as_deref()));
    let sha1 = list(|f| f.sha1.as_deref());
    if !sha1.is_empty() {
        p.set("Checksums-Sha1", sha1);
    }
    let sha256 = list(|f| f.sha256.as_deref());
    if !sha256.is_empty() {
        p.set("Checksums-Sha256", sha256);
    }
    p.reorder(SOURCES_ORDER);
    p.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb822::parse_single;
    use crate::hash::digest;

    #[test]
    fn binary_stanza_puts_file_fields_where_dpkg_does() {
        let control = parse_single(
            "Package: hi\nVersion: 1.0\nArchitecture: all\nMaintainer: M <m@x>\nX-Custom: y\nSection: misc\nDescription: d\n more\nDepends: libc6\n",
        )
        .unwrap();
        let s = render_binary_stanza(&control, "pool/main/h/hi/hi_1.0_all.deb", &digest(b"x"));
        let names: Vec<_> = s
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Package",
                "Version",
                "Architecture",
                "Maintainer",
                "Depends",
                "Filename",
                "Size",
                "MD5sum",
                "SHA1",
                "SHA256",
                "Section",
                "Description",
                "X-Custom"
            ]
        );
        assert!(s.contains("Size: 1\n"));
    }

    #[test]
    fn source_stanza_lists_dsc_first() {
        let dsc = parse_single(
            "Format: 3.0 (quilt)\nSource: hi\nVersion: 1.0-1\nFiles:\n aa 3 hi_1.0.orig.tar.gz\n",
        )
        .unwrap();
        let d = ListedFile {
            name: "hi_1.0-1.dsc".into(),
            size: 10,
            md5: Some("m".into()),
            sha1: None,
            sha256: Some("s".into()),
        };
        let f = ListedFile {
            name: "hi_1.0.orig.tar.gz".into(),
            size: 3,
            md5: Some("aa".into()),
            sha1: None,
            sha256: Some("bb".into()),
        };
        let s = render_source_stanza(&dsc, "pool/main/h/hi", &d, &[f]);
        assert!(s.starts_with("Format: 3.0 (quilt)\nPackage: hi\n"), "{s}");
        assert!(s.contains("Files:\n m 10 hi_1.0-1.dsc\n aa 3 hi_1.0.orig.tar.gz\n"));
        assert!(s.contains("Directory: pool/main/h/hi\n"));
        assert!(!s.contains("Checksums-Sha1"));
    }
}
