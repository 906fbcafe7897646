//! Typed views of the control paragraphs we accept: a binary package's
//! `control`, a source package's `.dsc`, and an upload's `.changes`.
//!
//! Each view validates exactly the fields the store relies on (names and
//! versions that become paths, checksums that guard content) and keeps the
//! original paragraph for rendering indices.

use super::name::{self, NameError};
use super::version::{Version, VersionError};
use crate::deb822::Paragraph;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("field {field}: line {line:?} is not `<checksum> <size> <name>`")]
    ChecksumLine { field: &'static str, line: String },
    #[error("field {field}: {name} is listed with different sizes or twice")]
    ChecksumConflict { field: &'static str, name: String },
    #[error(transparent)]
    Relation(#[from] super::relation::RelationError),
}

/// Every relationship field of `p` as apt must be able to read it.
fn check_relations(p: &Paragraph) -> Result<(), ControlError> {
    super::relation::check_relations(
        p.fields()
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str())),
    )?;
    Ok(())
}

fn required<'a>(p: &'a Paragraph, field: &'static str) -> Result<&'a str, ControlError> {
    p.get(field)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(ControlError::MissingField(field))
}

/// A binary package's control paragraph.
#[derive(Debug, Clone)]
pub struct BinaryControl {
    pub paragraph: Paragraph,
    pub package: String,
    pub version: Version,
    pub arch: String,
    /// The source package name (Source field without its version, else the
    /// package name): decides the pool directory.
    pub source: String,
}

impl BinaryControl {
    pub fn from_paragraph(paragraph: Paragraph) -> Result<Self, ControlError> {
        let package = required(&paragraph, "Package")?.to_string();
        name::check_package(&package)?;
        let version = Version::parse(required(&paragraph, "Version")?)?;
        let arch = required(&paragraph, "Architecture")?.to_string();
        name::check_arch(&arch)?;
        let source = match paragraph.get("Source") {
            Some(s) => s.split_whitespace().next().unwrap_or(&package).to_string(),
            None => package.clone(),
        };
        name::check_package(&source)?;
        check_relations(&paragraph)?;
        Ok(Self {
            paragraph,
            package,
            version,
            arch,
            source,
        })
    }

    /// Debian's file name for this package: `<name>_<version w/o epoch>_<arch>.deb`.
    pub fn file_name(&self, extension: &str) -> String {
        format!(
            "{}_{}_{}.{extension}",
            self.package,
            self.version.without_epoch(),
            self.arch
        )
    }
}

/// One file listed in a `.dsc` or `.changes`, with every checksum given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedFile {
    pub name: String,
    pub size: u64,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// Merges `Files`, `Checksums-Sha1` and `Checksums-Sha256` into one list.
/// Every name is checked to be a plain file name: a `.dsc` or `.changes`
/// from an upload must not point outside its own directory.
pub fn parse_file_lists(p: &Paragraph) -> Result<Vec<ListedFile>, ControlError> {
    let mut files: Vec<ListedFile> = Vec::new();
    for (field, slot) in [
        ("Files", 0usize),
        ("Checksums-Sha1", 1),
        ("Checksums-Sha256", 2),
    ] {
        let Some(value) = p.get(field) else { continue };
        for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            // Files in .changes: md5 size section priority name.
            let (sum, size, fname) = match parts.as_slice() {
                [sum, size, name] => (*sum, *size, *name),
                [sum, size, _, _, name] if field == "Files" => (*sum, *size, *name),
                _ => {
                    return Err(ControlError::ChecksumLine {
                        field,
                        line: line.to_string(),
                    })
                }
            };
            let bad_line = || ControlError::ChecksumLine {
                field,
                line: line.to_string(),
            };
            let size: u64 = size.parse().map_err(|_| bad_line())?;
            if !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad_line());
            }
            name::check_file_name(fname)?;
            let sum = Some(sum.to_ascii_lowercase());
            let idx = match files.iter().position(|f| f.name == fname) {
                Some(i) => i,
                None => {
                    files.push(ListedFile {
                        name: fname.to_string(),
                        size,
                        ..Default::default()
                    });
                    files.len() - 1
                }
            };
            let f = &mut files[idx];
            let target = match slot {
                0 => &mut f.md5,
                1 => &mut f.sha1,
                _ => &mut f.sha256,
            };
            if f.size != size || target.is_some() {
                return Err(ControlError::ChecksumConflict {
                    field,
                    name: fname.to_string(),
                });
            }
            *target = sum;
        }
    }
    Ok(files)
}

/// A source package's `.dsc`.
#[derive(Debug, Clone)]
pub struct SourceControl {
    pub paragraph: Paragraph,
    pub source: String,
    pub version: Version,
    pub files: Vec<ListedFile>,
}

impl SourceControl {
    pub fn from_paragraph(paragraph: Paragraph) -> Result<Self, ControlError> {
        let source = required(&paragraph, "Source")?.to_string();
        name::check_package(&source)?;
        let version = Version::parse(required(&paragraph, "Version")?)?;
        let files = parse_file_lists(&paragraph)?;
        if files.is_empty() {
            return Err(ControlError::MissingField("Files"));
        }
        check_relations(&paragraph)?;
        Ok(Self {
            paragraph,
            source,
            version,
            files,
        })
    }
}

/// An upload's `.changes`: only its file list matters to the store.
#[derive(Debug, Clone)]
pub struct ChangesControl {
    pub paragraph: Paragraph,
    pub files: Vec<ListedFile>,
}

impl ChangesControl {
    pub fn from_paragraph(paragraph: Paragraph) -> Result<Self, ControlError> {
        required(&paragraph, "Source")?;
        let files = parse_file_lists(&paragraph)?;
        if files.is_empty() {
            return Err(ControlError::MissingField("Files"));
        }
        Ok(Self { paragraph, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb822::parse_single;

    #[test]
    fn binary_source_field_with_version() {
        let p = parse_single(
            "Package: libfoo1\nSource: foo (1.0-1)\nVersion: 1:1.0-1+b1\nArchitecture: amd64\n",
        )
        .unwrap();
        let c = BinaryControl::from_paragraph(p).unwrap();
        assert_eq!(c.source, "foo");
        assert_eq!(c.file_name("deb"), "libfoo1_1.0-1+b1_amd64.deb");
    }

    #[test]
    fn binary_missing_fields_and_bad_names() {
        let p = parse_single("Package: x1\nVersion: 1\n").unwrap();
        assert_eq!(
            BinaryControl::from_paragraph(p).unwrap_err(),
            ControlError::MissingField("Architecture")
        );
        let p = parse_single("Package: ../../etc\nVersion: 1\nArchitecture: all\n").unwrap();
        assert!(matches!(
            BinaryControl::from_paragraph(p),
            Err(ControlError::Name(_))
        ));
    }

    #[test]
    fn file_lists_merge_and_reject_escapes() {
        let p = parse_single(
            "Source: a\nFiles:\n d41d8cd98f00b204e9800998ecf8427e 0 a_1.dsc\nChecksums-Sha256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 a_1.dsc\n",
        )
        .unwrap();
        let files = parse_file_lists(&p).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].md5.is_some() && files[0].sha256.is_some());
        let p = parse_single("Files:\n d41d8cd98f00b204e9800998ecf8427e 0 ../../x\n").unwrap();
        assert!(matches!(parse_file_lists(&p), Err(ControlError::Name(_))));
        let p = parse_single("Files:\n abc 0 a b c d e f\n").unwrap();
        assert!(matches!(
            parse_file_lists(&p),
            Err(ControlError::ChecksumLine { .. })
        ));
    }

    #[test]
    fn changes_files_have_section_priority() {
        let p = parse_single(
            "Source: a\nFiles:\n d41d8cd98f00b204e9800998ecf8427e 0 misc optional a_1_all.deb\n",
        )
        .unwrap();
        let c = ChangesControl::from_paragraph(p).unwrap();
        assert_eq!(c.files[0].name, "a_1_all.deb");
    }
}
