//! Subordinate id ranges (`/etc/subuid`, `/etc/subgid`): the unprivileged
//! ids a sandbox's users map to on the host. PURE parsing; `load` reads
//! the two files.

use std::path::Path;

/// One range: `count` ids from `start` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges a sandbox maps: inside ids `0..count` are host ids
/// `start..start+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub uids: Range,
    pub gids: Range,
}

/// The fewest ids a sandbox needs: Debian's system users and groups (up to
/// 999), `nobody` (65534) and the users a package may add.
pub const MIN_COUNT: u32 = 65536;

#[derive(Debug, thiserror::Error)]
pub enum SubidError {
    #[error("no subordinate {kind} range of at least {MIN_COUNT} for user {user} in {file}: add one with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (docs/operations.md, \"Sandboxes\")")]
    Missing {
        kind: &'static str,
        user: String,
        file: String,
    },
    #[error("reading {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// The first range of at least [`MIN_COUNT`] ids for `user` (by name or
/// numeric id) in the text of a subuid/subgid file. A range that would
/// include host id 0 is never returned: it would map a sandbox's user to
/// the host's root.
pub fn parse_range(text: &str, user: &str, uid: u32) -> Option<Range> {
    let uid = uid.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (who != user && who != uid) {
                return None;
            }
            let start: u32 = start.parse().ok()?;
            let count: u32 = count.parse().ok()?;
            Some(Range { start, count })
        })
        .find(|r| r.start > 0 && r.count >= MIN_COUNT && r.start.checked_add(r.count).is_some())
        .map(|r| Range {
            start: r.start,
            count: MIN_COUNT,
        })
}

/// The id map of the user running halo.
pub fn load() -> Result<IdMap, SubidError> {
    let (user, uid) = current_user();
    let one = |file: &str, kind: &'static str| -> Result<Range, SubidError> {
        let text = match fs_err::read_to_string(Path::new(file)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(SubidError::Read {
                    file: file.into(),
                    source,
                })
            }
        };
        parse_range(&text, &user, uid).ok_or_else(|| SubidError::Missing {
            kind,
            user: user.clone(),
            file: file.into(),
        })
    };
    Ok(IdMap {
        uids: one("/etc/subuid", "uid")?,
        gids: one("/etc/subgid", "gid")?,
    })
}

/// The effective user's name (from the password database) and id.
fn current_user() -> (String, u32) {
    let uid = nix::unistd::geteuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    (name, uid.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_users_range_by_name_or_id() {
        let text = "# comment\nalice:200000:65536\nroot:100000:65536\n0:300000:65536\n";
        assert_eq!(
            parse_range(text, "root", 0),
            Some(Range {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse_range("0:300000:70000\n", "root", 0),
            Some(Range {
                start: 300000,
                count: 65536
            })
        );
        assert_eq!(parse_range(text, "bob", 1000), None);
    }

    #[test]
    fn refuses_small_ranges_and_ranges_over_host_root() {
        assert_eq!(parse_range("root:100000:1000\n", "root", 0), None);
        assert_eq!(parse_range("root:0:65536\n", "root", 0), None);
        assert_eq!(parse_range("root:4294967000:65536\n", "root", 0), None);
        assert_eq!(parse_range("root:x:65536\nroot:1:2:3\n", "root", 0), None);
    }
}
