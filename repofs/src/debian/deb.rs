//! The `.deb` container (deb(5)): an `ar` archive holding `debian-binary`,
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.*]`.
//!
//! Reads the control paragraph from any reader and checks that the
//! container is whole (every `ar` member as long as its header says), so a
//! truncated download is refused before it reaches the pool. It does not
//! unpack the payload: that is dpkg's job on the client.

use std::io::{self, Read};

use crate::deb822::{self, Paragraph};

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("not a Debian binary package (no ar archive header)")]
    NotAr,
    #[error("ar archive is damaged")]
    Ar(#[source] io::Error),
    #[error("ar member {member} is truncated ({got} of {expected} bytes)")]
    Truncated {
        member: String,
        got: u64,
        expected: u64,
    },
    #[error("first member must be debian-binary with format 2.x, found {0:?}")]
    BadFormat(String),
    #[error("package has no control.tar member")]
    NoControlMember,
    #[error("package has no data.tar member")]
    NoDataMember,
    #[error("control member {member} uses an unknown compression")]
    UnknownCompression { member: String },
    #[error("control archive {member} is damaged")]
    ControlTar {
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("data archive {member} is damaged")]
    DataTar {
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("control archive has no ./control file")]
    NoControlFile,
    #[error("control file")]
    Control(#[from] deb822::ParseError),
    #[error("{what} is larger than {limit} bytes: not a control archive a package needs")]
    TooLarge { what: String, limit: u64 },
}

/// The largest compressed `control.tar.*` member read into memory.
pub const MAX_CONTROL_MEMBER: u64 = 16 << 20;
/// The largest `control.tar` once decompressed (maintainer scripts and
/// all): a 1 MB package whose control unpacked to 1 GB took 4 GB of RSS.
pub const MAX_CONTROL_TAR: u64 = 64 << 20;
/// The largest `./control` file.
pub const MAX_CONTROL_FILE: u64 = 4 << 20;

/// Reads at most `left` bytes, then fails: a decompression bomb is an
/// error, not a truncated read that might look complete.
struct Bounded<R> {
    inner: R,
    left: u64,
    what: &'static str,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "{} is larger than {} bytes",
                self.what, MAX_CONTROL_TAR
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the control paragraph of a `.deb`, checking the container.
pub fn read_control<R: Read>(mut reader: R) -> Result<Paragraph, DebError> {
    let mut magic = [0u8; 8];
    if reader.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Err(DebError::NotAr);
    }
    let mut archive = ar::Archive::new(io::Cursor::new(magic).chain(reader));
    let mut control = None;
    let mut seen_format = false;
    let mut seen_data = false;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(DebError::Ar)?;
        let member = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let expected = entry.header().size();
        let mut buf = Vec::new();
        if !seen_format {
            entry.read_to_end(&mut buf).map_err(DebError::Ar)?;
            check_len(&member, buf.len() as u64, expected)?;
            let text = String::from_utf8_lossy(&buf);
            if member != "debian-binary" || !text.starts_with("2.") {
                return Err(DebError::BadFormat(text.trim().to_string()));
            }
            seen_format = true;
        } else if member.starts_with("control.tar") {
            if expected > MAX_CONTROL_MEMBER {
                return Err(DebError::TooLarge {
                    what: member,
                    limit: MAX_CONTROL_MEMBER,
                });
            }
            entry.read_to_end(&mut buf).map_err(DebError::Ar)?;
            check_len(&member, buf.len() as u64, expected)?;
            control = Some(parse_control_tar(&member, &buf)?);
        } else {
            let got = io::copy(&mut entry, &mut io::sink()).map_err(DebError::Ar)?;
            check_len(&member, got, expected)?;
            seen_data |= member.starts_with("data.tar");
        }
    }
    if !seen_format {
        return Err(DebError::NotAr);
    }
    let control = control.ok_or(DebError::NoControlMember)?;
    if !seen_data {
        return Err(DebError::NoDataMember);
    }
    Ok(control)
}

/// The paths a `.deb` installs (files and links; no directories), as the
/// `Contents` indices list them: without the leading `./`, in the order of
/// the data archive. Streams the data member: nothing but the names is held.
/// A name with a newline cannot be a line of `Contents`, so it is left out
/// (apt-ftparchive's output would be broken by it as well).
pub fn list_data<R: Read>(mut reader: R) -> Result<Vec<String>, DebError> {
    let mut magic = [0u8; 8];
    if reader.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Err(DebError::NotAr);
    }
    let mut archive = ar::Archive::new(io::Cursor::new(magic).chain(reader));
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(DebError::Ar)?;
        let member = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        if !member.starts_with("data.tar") {
            continue;
        }
        let data_err = |source| DebError::DataTar {
            member: member.clone(),
            source,
        };
        let reader: Box<dyn Read> = match member.as_str() {
            "data.tar" => Box::new(entry),
            "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new(entry)),
            "data.tar.zst" => Box::new(zstd::stream::read::Decoder::new(entry).map_err(data_err)?),
            _ => {
                return Err(DebError::UnknownCompression { member });
            }
        };
        let mut tar = tar::Archive::new(reader);
        let mut paths = Vec::new();
        for e in tar.entries().map_err(data_err)? {
            let e = e.map_err(data_err)?;
            if e.header().entry_type().is_dir() {
                continue;
            }
            let raw = e.path_bytes();
            let name = String::from_utf8_lossy(&raw);
            let name = name.trim_start_matches("./").trim_start_matches('/');
            if name.is_empty() || name.contains('\n') {
                continue;
            }
            paths.push(name.to_string());
        }
        return Ok(paths);
    }
    Err(DebError::NoDataMember)
}

fn check_len(member: &str, got: u64, expected: u64) -> Result<(), DebError> {
    if got == expected {
        Ok(())
    } else {
        Err(DebError::Truncated {
            member: member.to_string(),
            got,
            expected,
        })
    }
}

fn parse_control_tar(member: &str, data: &[u8]) -> Result<Paragraph, DebError> {
    let reader: Box<dyn Read + '_> = match member {
        "control.tar" => Box::new(data),
        "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(data)),
        "control.tar.xz" => Box::new(liblzma::read::XzDecoder::new(data)),
        "control.tar.zst" => {
            Box::new(zstd::stream::read::Decoder::new(data).map_err(|source| {
                DebError::ControlTar {
                    member: member.to_string(),
                    source,
                }
            })?)
        }
        _ => {
            return Err(DebError::UnknownCompression {
                member: member.to_string(),
            })
        }
    };
    let tar_err = |source| DebError::ControlTar {
        member: member.to_string(),
        source,
    };
    let reader = Bounded {
        inner: reader,
        left: MAX_CONTROL_TAR,
        what: "the decompressed control archive",
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let path = entry.path().map_err(tar_err)?.into_owned();
        let name = path.to_string_lossy();
        if name == "./control" || name == "control" {
            if entry.size() > MAX_CONTROL_FILE {
                return Err(DebError::TooLarge {
                    what: "./control".into(),
                    limit: MAX_CONTROL_FILE,
                });
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(tar_err)?;
            return Ok(deb822::parse_single_bytes(&text)?);
        }
    }
    Err(DebError::NoControlFile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }

    fn control_tar(control: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(control.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "./control", control.as_bytes())
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn deb(control_member: Option<&[u8]>, name: &str) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        ar_member(&mut out, "debian-binary", b"2.0\n");
        if let Some(c) = control_member {
            ar_member(&mut out, name, c);
        }
        ar_member(&mut out, "data.tar", &control_tar(""));
        out
    }

    #[test]
    fn lists_the_data_paths_without_directories() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        dir.set_mode(0o755);
        dir.set_cksum();
        builder
            .append_data(&mut dir, "./usr/bin/", &b""[..])
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(2);
        file.set_mode(0o755);
        file.set_cksum();
        builder
            .append_data(&mut file, "./usr/bin/hi", &b"hi"[..])
            .unwrap();
        let data = builder.into_inner().unwrap();
        let mut out = b"!<arch>\n".to_vec();
        ar_member(&mut out, "debian-binary", b"2.0\n");
        ar_member(&mut out, "control.tar", &control_tar("Package: hi\n"));
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        ar_member(&mut out, "data.tar.gz", &gz);
        assert_eq!(list_data(&out[..]).unwrap(), ["usr/bin/hi"]);
        assert!(matches!(list_data(&b"junk"[..]), Err(DebError::NotAr)));
    }

    #[test]
    fn reads_uncompressed_and_zstd_control() {
        let tar = control_tar("Package: hi\nVersion: 1\nArchitecture: all\n");
        let p = read_control(&deb(Some(&tar), "control.tar")[..]).unwrap();
        assert_eq!(p.get("Package"), Some("hi"));
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let p = read_control(&deb(Some(&zst), "control.tar.zst")[..]).unwrap();
        assert_eq!(p.get("Version"), Some("1"));
    }

    #[test]
    fn refuses_damaged_packages() {
        assert!(matches!(
            read_control(&b"garbage"[..]),
            Err(DebError::NotAr)
        ));
        assert!(matches!(
            read_control(&deb(None, "")[..]),
            Err(DebError::NoControlMember)
        ));
        let tar = control_tar("Package: hi\n");
        let full = deb(Some(&tar), "control.tar");
        let cut = &full[..full.len() - 100];
        assert!(matches!(
            read_control(cut),
            Err(DebError::Truncated { .. }) | Err(DebError::Ar(_))
        ));
        assert!(matches!(
            read_control(&deb(Some(b"xx"), "control.tar.lz")[..]),
            Err(DebError::UnknownCompression { .. })
        ));
    }

    #[test]
    fn a_control_bomb_is_refused_without_unpacking_it() {
        // 100 MB of zeros in a control.tar.zst of a few kilobytes: the
        // control archive is refused at its bound, never held in memory.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(100 << 20);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                "./postinst",
                std::io::repeat(0).take(100 << 20),
            )
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        assert!(zst.len() < 1 << 20);
        let e = read_control(&deb(Some(&zst), "control.tar.zst")[..]).unwrap_err();
        let text = crate::error_chain(&e);
        assert!(text.contains("larger than"), "{text}");
        // A ./control file over its own bound.
        let big = format!("Package: hi\nDescription: x\n{}", " y\n".repeat(3 << 20));
        let e = read_control(&deb(Some(&control_tar(&big)), "control.tar")[..]).unwrap_err();
        assert!(matches!(e, DebError::TooLarge { .. }), "{e}");
    }
}
