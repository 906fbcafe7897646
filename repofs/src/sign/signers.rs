//! Signing with several keys at once: the store's signing keys
//! (`keys/secret.asc`), one in steady state, two or more while keys roll
//! over, and who signed a cleartext-signed file. Every signature apt checks
//! is made by each key; apt accepts a file with a good signature by a key it
//! trusts and none bad, whatever else it carries.

use pgp::composed::{ArmorOptions, CleartextSignedMessage, DetachedSignature, SignedPublicKey};
use pgp::packet::SignatureType;

use super::{issuer_name, pgp, Error, PgpError, SigningKey};

/// The keys a store signs with (`keys/secret.asc`), in the order they were added: one in
/// steady state, two (or more) while keys roll over. Every signature apt checks is made by
/// each of them.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

const SECRET_BEGIN: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";

impl SigningKeys {
    pub fn new(first: SigningKey) -> Self {
        SigningKeys { keys: vec![first] }
    }

    /// Reads one or more ASCII-armored secret key blocks (as [`Self::to_armored_secret`]
    /// writes them), or a single key in any form [`SigningKey::from_bytes`] reads.
    pub fn from_bytes(data: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(data)
            .ok()
            .filter(|t| t.contains(SECRET_BEGIN));
        let Some(text) = text else {
            return Ok(Self::new(SigningKey::from_bytes(data)?));
        };
        let keys = text
            .match_indices(SECRET_BEGIN)
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| SigningKey::from_bytes(&text.as_bytes()[w[0]..w[1]]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SigningKeys { keys })
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Every key's armored secret key block, one after the other.
    pub fn to_armored_secret(&self) -> Result<String, Error> {
        let blocks = self.keys.iter().map(SigningKey::to_armored_secret);
        blocks.collect::<Result<Vec<_>, _>>().map(|b| b.concat())
    }

    /// The public keys as one binary keyring (what apt's `signed-by=` file holds).
    pub fn public_keys_binary(&self) -> Result<Vec<u8>, Error> {
        let keys = self.keys.iter().map(SigningKey::public_key_binary);
        keys.collect::<Result<Vec<_>, _>>().map(|k| k.concat())
    }

    /// The public keys in one armored block (like `gpg --export --armor` of several keys).
    pub fn public_keys_armored(&self) -> Result<String, Error> {
        let public: Vec<SignedPublicKey> =
            self.keys.iter().map(|k| k.key.to_public_key()).collect();
        let mut out = Vec::new();
        pgp::armor::write(
            &public,
            pgp::armor::BlockType::PublicKey,
            &mut out,
            None,
            true,
        )
        .map_err(pgp("public key export"))?;
        String::from_utf8(out).map_err(|_| Error::NoKey)
    }

    /// Primary key fingerprints, in signing order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(SigningKey::fingerprint).collect()
    }

    /// The fingerprints signatures name as their issuers, sorted.
    pub fn signer_fingerprints(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(SigningKey::signer_fingerprint)
            .collect();
        out.sort();
        out
    }

    /// These keys and `key` (which must be new to them).
    pub fn with(&self, key: SigningKey) -> Result<Self, Error> {
        if self.fingerprints().contains(&key.fingerprint()) {
            return Err(Error::DuplicateKey {
                fingerprint: key.fingerprint(),
            });
        }
        let mut keys = self.keys.clone();
        keys.push(key);
        Ok(SigningKeys { keys })
    }

    /// These keys but the one `fingerprint` names (its full primary fingerprint or its last
    /// 16 hex digits, the long key id), which is returned too; the last key cannot go.
    pub fn without(&self, fingerprint: &str) -> Result<(Self, SigningKey), Error> {
        let want = fingerprint.to_ascii_uppercase().replace(' ', "");
        let pos = self.keys.iter().position(|k| {
            let f = k.fingerprint();
            want.len() >= 16 && f.ends_with(&want)
        });
        let Some(pos) = pos else {
            return Err(Error::NotASigningKey {
                fingerprint: fingerprint.to_string(),
                signing: self.fingerprints(),
            });
        };
        if self.keys.len() == 1 {
            return Err(Error::LastKey {
                fingerprint: self.keys[0].fingerprint(),
            });
        }
        let mut keys = self.keys.clone();
        let gone = keys.remove(pos);
        Ok((SigningKeys { keys }, gone))
    }

    /// `InRelease`: [`SigningKey::clearsign`], with one signature per key.
    pub fn clearsign(&self, text: &str) -> Result<String, Error> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t', '\r']))
            .collect();
        let text = lines.join("\n");
        let sign = || -> Result<String, PgpError> {
            let msg = CleartextSignedMessage::new_many(&text, |normalized| {
                self.keys
                    .iter()
                    .map(|k| k.sign_one(SignatureType::Text, normalized.as_bytes()))
                    .collect()
            })?;
            msg.to_armored_string(ArmorOptions::default())
        };
        sign().map_err(pgp("cleartext signing"))
    }

    /// `Release.gpg`: one armored block holding a detached binary-mode signature per key.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, Error> {
        let sign = || -> Result<String, PgpError> {
            let sigs = self
                .keys
                .iter()
                .map(|k| {
                    k.sign_one(SignatureType::Binary, data)
                        .map(DetachedSignature::new)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::new();
            pgp::armor::write(
                &sigs,
                pgp::armor::BlockType::Signature,
                &mut out,
                None,
                true,
            )?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        sign().map_err(pgp("detached signing"))
    }
}

/// The issuers of the signatures of a cleartext-signed document (`InRelease`): their issuer
/// fingerprints (upper-case hex), or the key ids of signatures that carry none. Nothing is
/// verified: this says who claims to have signed, to tell whether a file needs signing anew.
pub fn cleartext_signers(data: &[u8]) -> Result<Vec<String>, Error> {
    let (msg, _) =
        CleartextSignedMessage::from_armor(data).map_err(|source| Error::Malformed { source })?;
    let mut out: Vec<String> = msg.signatures().iter().map(issuer_name).collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::SystemTime;

    use super::super::tests::{good, Gpg, RELEASE};
    use super::super::{KeyAlgorithm, Keyring};
    use super::*;

    #[test]
    fn two_keys_sign_every_release_and_a_keyring_with_either_verifies() {
        let gpg = Gpg::new();
        let old = SigningKey::generate("old <old@localhost>").unwrap();
        let new = SigningKey::generate_with("new <new@localhost>", KeyAlgorithm::Rsa4096).unwrap();
        let keys = SigningKeys::new(old.clone()).with(new.clone()).unwrap();
        assert!(keys.with(new.clone()).is_err(), "a key is added once");
        let inrelease = keys.clearsign(RELEASE).unwrap();
        let sig = keys.sign_detached(RELEASE.as_bytes()).unwrap();
        let mut signers = vec![old.fingerprint(), new.fingerprint()];
        signers.sort();
        assert_eq!(cleartext_signers(inrelease.as_bytes()).unwrap(), signers);
        assert_eq!(keys.signer_fingerprints(), signers);
        let now = SystemTime::now();
        for (one, other) in [(&old, &new), (&new, &old)] {
            let public = one.public_key_binary().unwrap();
            let ring = Keyring::from_bytes(&public).unwrap();
            let v = good(ring.verify_cleartext(inrelease.as_bytes(), now));
            assert_eq!(v.fingerprint, one.fingerprint());
            good(ring.verify_detached(RELEASE.as_bytes(), sig.as_bytes(), now));
            // gpgv exits 2 for the signature it has no key for, and reports the good one:
            // apt accepts exactly that (a good signature, none bad).
            let detached = [
                ("Release.gpg", sig.as_bytes()),
                ("Release", RELEASE.as_bytes()),
            ];
            for files in [&[("InRelease", inrelease.as_bytes())][..], &detached[..]] {
                let mut args = vec!["--keyring".to_owned(), gpg.file("one.gpg", &public)];
                args.extend(files.iter().map(|(name, data)| gpg.file(name, data)));
                let out = gpg.run("gpgv", &args.iter().map(String::as_str).collect::<Vec<_>>());
                let status = String::from_utf8_lossy(&out.stderr);
                assert!(
                    status.contains(&format!("VALIDSIG {}", one.fingerprint())),
                    "{status}"
                );
                assert!(!status.contains("BADSIG"), "{status}");
                let other_id = &other.fingerprint()[24..];
                assert!(
                    status.contains(&format!("NO_PUBKEY {other_id}")),
                    "{status}"
                );
            }
        }
        // Both public keys in one armored block, the same keys as the binary keyring.
        let armored = keys.public_keys_armored().unwrap();
        assert_eq!(armored.matches("BEGIN PGP PUBLIC KEY BLOCK").count(), 1);
        assert_eq!(
            gpg.ok(
                "-o - --dearmor",
                &[&gpg.file("both.asc", armored.as_bytes())]
            ),
            keys.public_keys_binary().unwrap()
        );
        assert_eq!(
            Keyring::from_bytes(armored.as_bytes())
                .unwrap()
                .fingerprints(),
            keys.fingerprints()
        );
        // The secret file round-trips, in order; the last key cannot be retired.
        let again = SigningKeys::from_bytes(keys.to_armored_secret().unwrap().as_bytes()).unwrap();
        assert_eq!(again.fingerprints(), keys.fingerprints());
        let (left, gone) = again.without(&old.fingerprint()[24..]).unwrap();
        assert_eq!(
            (left.fingerprints(), gone.fingerprint()),
            (vec![new.fingerprint()], old.fingerprint())
        );
        assert!(matches!(
            left.without(&new.fingerprint()),
            Err(Error::LastKey { .. })
        ));
        assert!(matches!(
            again.without("ABCD"),
            Err(Error::NotASigningKey { .. })
        ));
    }
}
