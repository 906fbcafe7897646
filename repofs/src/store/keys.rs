//! The store's signing keys on disk, and rolling them over.
//!
//! - `keys/secret.asc`: every signing key's armored secret key block, in the order they were
//!   added (mode 0600). Each Release the store signs carries one signature per key.
//! - `keys/repo.gpg`, `keys/repo.asc`: their public keys (binary, armored): what clients
//!   trust. It always holds every signing key (it may hold more after a crash: harmless).
//! - `keys/retired.gpg`: public keys of retired keys, so `fsck` can still check the
//!   snapshots they signed.
//!
//! A rotation (`halo key rotate`) adds a key: the public keyring first, then `secret.asc`
//! (the commit point), so a client never sees a signature by a key the published keyring
//! lacks. A retirement (`halo key retire`) removes one: `retired.gpg` first, then
//! `secret.asc` (the commit point), then the public keyring. Both run under the writer lock.

use std::io;

use super::{fsutil, Error, Result, Store, WriteLock};
use crate::model::DistSnapshot;
use crate::sign::{cleartext_signers, Keyring, SigningKey, SigningKeys};

/// What a rotation or retirement left.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyChange {
    /// The key added or retired.
    pub fingerprint: String,
    pub algorithm: String,
    /// The keys that sign from now on, in order.
    pub signing: Vec<String>,
}

/// A key file of the store: regular, bounded (see [`crate::bounded`]).
fn read_key_file(path: &std::path::Path) -> io::Result<Vec<u8>> {
    crate::bounded::read_private(path, crate::bounded::KEY_LIMIT)
}

impl Store {
    fn secret_path(&self) -> std::path::PathBuf {
        self.keys_dir().join("secret.asc")
    }

    /// The store's signing keys (`keys/secret.asc`).
    pub fn load_signing_keys(&self) -> Result<SigningKeys> {
        let data = read_key_file(&self.secret_path())?;
        Ok(SigningKeys::from_bytes(&data)?)
    }

    /// Public keys of retired keys (`keys/retired.gpg`), if any were retired.
    pub fn load_retired_keys(&self) -> Result<Option<Keyring>> {
        match read_key_file(&self.keys_dir().join("retired.gpg")) {
            Ok(data) if data.is_empty() => Ok(None),
            Ok(data) => Ok(Some(Keyring::from_bytes(&data)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `keys/repo.gpg` and `keys/repo.asc` for `keys`.
    pub(crate) fn save_public_keys(&self, _lock: &WriteLock, keys: &SigningKeys) -> Result<()> {
        let (dir, tmp) = (self.keys_dir(), self.tmp_dir());
        fsutil::write_atomic(&tmp, &dir.join("repo.gpg"), &keys.public_keys_binary()?)?;
        let armored = keys.public_keys_armored()?;
        fsutil::write_atomic(&tmp, &dir.join("repo.asc"), armored.as_bytes())?;
        Ok(())
    }

    pub(crate) fn save_secret_keys(&self, _lock: &WriteLock, keys: &SigningKeys) -> Result<()> {
        let secret = keys.to_armored_secret()?;
        fsutil::write_atomic_private(&self.tmp_dir(), &self.secret_path(), secret.as_bytes())?;
        Ok(())
    }

    /// Adds `key`: from now on every Release is signed by it too.
    pub fn rotate_key(&self, key: SigningKey) -> Result<KeyChange> {
        let lock = self.lock()?;
        let keys = self.load_signing_keys()?.with(key.clone())?;
        self.save_public_keys(&lock, &keys)?;
        super::failpoint::hit("key:before-secret");
        self.save_secret_keys(&lock, &keys)?;
        tracing::info!(fingerprint = %key.fingerprint(), "signing key added");
        Ok(KeyChange {
            fingerprint: key.fingerprint(),
            algorithm: key.algorithm(),
            signing: keys.fingerprints(),
        })
    }

    /// Stops signing with the key `fingerprint` names. Refused while a channel points at a
    /// snapshot that only that key (of the remaining ones) signed: its clients would be left
    /// with signatures they cannot check once they drop the old key.
    pub fn retire_key(&self, fingerprint: &str) -> Result<KeyChange> {
        let lock = self.lock()?;
        let (keys, gone) = self.load_signing_keys()?.without(fingerprint)?;
        let remaining = keys.signer_fingerprints();
        for (channel, pointer) in self.list_channels()? {
            let Some(id) = pointer.snapshot else { continue };
            let snap = self.load_snapshot(&id)?;
            for (archive, a) in &snap.archives {
                for (dist, d) in &a.dists {
                    let Some(signers) = self.store_signers(d)? else {
                        continue;
                    };
                    if !signers.iter().any(|s| remaining.contains(s)) {
                        return Err(Error::KeyInUse {
                            fingerprint: gone.fingerprint(),
                            channel,
                            snapshot: id,
                            place: format!("{archive}/{dist}"),
                        });
                    }
                }
            }
        }
        let mut retired = match read_key_file(&self.keys_dir().join("retired.gpg")) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        retired.extend(gone.public_key_binary()?);
        let path = self.keys_dir().join("retired.gpg");
        fsutil::write_atomic(&self.tmp_dir(), &path, &retired)?;
        self.save_secret_keys(&lock, &keys)?;
        super::failpoint::hit("key:before-public");
        self.save_public_keys(&lock, &keys)?;
        tracing::info!(fingerprint = %gone.fingerprint(), "signing key retired");
        Ok(KeyChange {
            fingerprint: gone.fingerprint(),
            algorithm: gone.algorithm(),
            signing: keys.fingerprints(),
        })
    }

    /// Who signed a dist's InRelease, when the store signed it (`None` for an upstream's
    /// files served verbatim, or a dist without InRelease).
    pub(crate) fn store_signers(&self, d: &DistSnapshot) -> Result<Option<Vec<String>>> {
        let find = |name: &str| d.files.iter().find(|f| f.path == name);
        let (Some(rel), Some(inrel)) = (find("Release"), find("InRelease")) else {
            return Ok(None);
        };
        let release = self.pool().read(&rel.sha256)?;
        if !signed_by_store(&self.meta().origin, d, &release) {
            return Ok(None);
        }
        let inrelease = self.pool().read(&inrel.sha256)?;
        // A file that does not parse is signed by nobody we know: sign it anew.
        Ok(Some(cleartext_signers(&inrelease).unwrap_or_default()))
    }
}

/// Whether the store rendered and signed a dist's Release, rather than serving an upstream's
/// signed files verbatim: a mirrored dist that keeps its upstream's identity says so in the
/// manifest; any other dist of ours carries the store's Origin.
pub(crate) fn signed_by_store(origin: &str, d: &DistSnapshot, release: &[u8]) -> bool {
    d.identity.is_some() || release.starts_with(format!("Origin: {origin}\n").as_bytes())
}
