//! API tokens: named, with a role, stored as the SHA-256 of the token in
//! `STORE/serve/tokens.json` (mode 0600). A token is 256 random bits; its
//! hash is enough to check it and useless to whoever reads the file. The
//! token itself exists once, in what `halo token add` hands the operator.
//!
//! PURE except [`TokenFile::load`] and [`TokenFile::save`].

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every token starts with this, so the redaction in `crate::redact` and a
/// secret scanner can recognise one.
pub const TOKEN_PREFIX: &str = "halo_";

/// What a token may do. Ordered: each role may do what the ones before it
/// may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publish builds, make snapshots, move channels other than the
    /// stable ones, take the testing lease and report verdicts.
    Writer,
    /// A writer that may also move a stable (gated) channel and force.
    Stable,
    /// Everything, and managing tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Stable => "stable",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "writer" => Some(Role::Writer),
            "stable" => Some(Role::Stable),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a token of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// RFC 3339.
    pub created: String,
}

/// `tokens.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    pub tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named {0} exists already (remove it first)")]
    Exists(String),
    #[error("no token named {0}")]
    Unknown(String),
    #[error("token name {0:?}: use letters, digits, '-', '_' and '.' (1 to 64)")]
    BadName(String),
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The token file of a store.
pub fn path(store_root: &Path) -> PathBuf {
    store_root.join("serve").join("tokens.json")
}

/// A new token: the prefix and 64 hex digits of the OS's randomness.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.to_string()))
    }
}

impl TokenFile {
    /// The file, or no tokens when there is none yet.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let data = match fs_err::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&data).map_err(|e| TokenError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Written whole (temporary file, fsync, rename), readable by the
    /// store's owner only.
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        use fs_err::os::unix::fs::OpenOptionsExt;
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(".tokens.json.tmp");
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs_err::rename(&tmp, path)?;
        Ok(())
    }

    /// Adds a token named `name`; returns the token (the only time it
    /// exists outside the caller's hands).
    pub fn add(&mut self, name: &str, role: Role, now: &str) -> Result<String, TokenError> {
        check_name(name)?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::Exists(name.to_string()));
        }
        let token = generate();
        self.tokens.push(TokenEntry {
            name: name.to_string(),
            role,
            sha256: hash(&token),
            created: now.to_string(),
        });
        Ok(token)
    }

    pub fn remove(&mut self, name: &str) -> Result<TokenEntry, TokenError> {
        let i = self
            .tokens
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| TokenError::Unknown(name.to_string()))?;
        Ok(self.tokens.remove(i))
    }

    /// The entry whose hash is the given token's.
    pub fn check(&self, token: &str) -> Option<&TokenEntry> {
        let h = hash(token);
        self.tokens.iter().find(|t| t.sha256 == h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_by_hash_only() {
        let mut f = TokenFile::default();
        let t = f.add("ci", Role::Writer, "now").expect("add");
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(f.check(&t).map(|e| e.name.as_str()), Some("ci"));
        assert!(f.check("halo_wrong").is_none());
        let stored = serde_json::to_string(&f).expect("json");
        assert!(!stored.contains(&t), "the token itself is never stored");
        assert!(matches!(
            f.add("ci", Role::Admin, "now"),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            f.add("a b", Role::Admin, "now"),
            Err(TokenError::BadName(_))
        ));
        f.remove("ci").expect("remove");
        assert!(f.check(&t).is_none());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Stable));
        assert!(Role::Stable.allows(Role::Writer));
        assert!(!Role::Writer.allows(Role::Stable));
        assert!(!Role::Stable.allows(Role::Admin));
    }
}
