//! OpenPGP signing of our own repository metadata and verification of upstream metadata.
//!
//! This module owns everything OpenPGP in repofs: the repository signing key
//! ([`SigningKey`]: generate, import from GnuPG, export for apt's `signed-by=`), the
//! signatures apt checks (`InRelease` cleartext signatures and `Release.gpg` detached ones),
//! and the verification of upstream `InRelease`/`Release.gpg` against a [`Keyring`].
//!
//! It uses rPGP (the `pgp` crate), a pure-Rust implementation, so that neither signing nor
//! verification needs a gpg binary, an agent or a GnuPG home at run time. rPGP is low level:
//! it checks the cryptography of one signature against one key, so the key selection and
//! validity rules (issuer matching, self-signatures, subkey bindings and back-signatures,
//! expiry, revocation, signing capability) are implemented here, modelled on gpgv.
//!
//! Generated keys are v4 `Ed25519Legacy` (EdDSA, algorithm 22) keys by default: rPGP's
//! `Ed25519` type produces an RFC 9580 v6 key that gpgv 2.2 (Debian bookworm) cannot use,
//! while the legacy v4 form is understood by gpgv 2.1 and later. GnuPG 1.4's gpgv (the one
//! trusty's and xenial's apt call) knows no EdDSA at all; for those clients a store signs
//! with a v4 RSA 4096 key instead ([`KeyAlgorithm::Rsa4096`]).
//!
//! A store may sign with several keys at once ([`SigningKeys`]), as Debian does while it rolls
//! its archive keys: `InRelease` then carries one signature per key and `Release.gpg` holds them
//! all. apt accepts a file with at least one good signature by a key it trusts and none bad;
//! signatures by keys it lacks (or by algorithms its gpgv does not know) are ignored
//! (methods/gpgv.cc, since apt 1.0).

use std::time::SystemTime;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedPublicSubKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PublicKey, Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, KeyVersion, Password, SigningKey as _, Tag, Timestamp};

mod signers;
pub use signers::{cleartext_signers, SigningKeys};

type PgpError = pgp::errors::Error;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not the expected OpenPGP data (`what` says which).
    #[error("cannot parse {what}")]
    Parse {
        what: &'static str,
        #[source]
        source: PgpError,
    },
    /// The input holds no OpenPGP key.
    #[error("no OpenPGP key found in the input")]
    NoKey,
    /// The secret key is encrypted; repofs only uses unprotected keys.
    #[error("the secret key is protected by a passphrase; export it without one")]
    PassphraseProtected,
    /// Neither the primary key nor a subkey may sign.
    #[error("the secret key has no signing-capable key")]
    NoSigningKey,
    /// An rPGP operation (`op`) failed.
    #[error("OpenPGP {op} failed")]
    Pgp {
        op: &'static str,
        #[source]
        source: PgpError,
    },
    /// The signed document or signature is not well-formed.
    #[error("malformed signed data")]
    Malformed {
        #[source]
        source: PgpError,
    },
    /// The document carries no signature.
    #[error("no signature found")]
    NoSignature,
    /// No signature was made by a key in the keyring.
    #[error("signature by unknown key {issuer}")]
    UnknownKey { issuer: String },
    /// The signature does not match the data (tampered document or wrong key).
    #[error("bad signature by key {fingerprint}")]
    BadSignature {
        fingerprint: String,
        #[source]
        source: PgpError,
    },
    /// The signature is good, but itself unusable (expired, wrong type, predates its key).
    #[error("signature by key {fingerprint} is not valid: {reason}")]
    SignatureNotValid {
        fingerprint: String,
        reason: &'static str,
    },
    /// The signing key (or its primary key) has expired.
    #[error("key {fingerprint} has expired")]
    KeyExpired { fingerprint: String },
    /// The signing key (or its primary key) has been revoked.
    #[error("key {fingerprint} has been revoked")]
    KeyRevoked { fingerprint: String },
    /// The key is already one of the store's signing keys.
    #[error("key {fingerprint} signs already")]
    DuplicateKey { fingerprint: String },
    /// No signing key has that fingerprint.
    #[error("{fingerprint} is not a signing key of this store (signing keys: {})", signing.join(", "))]
    NotASigningKey {
        fingerprint: String,
        signing: Vec<String>,
    },
    /// Retiring the only key would leave nothing to sign with.
    #[error("{fingerprint} is the only signing key: rotate to a new one first")]
    LastKey { fingerprint: String },
    /// The signing key is not valid for signing (no valid binding, no signing flag, ...).
    #[error("key {fingerprint} is not valid for signing: {reason}")]
    KeyNotValid {
        fingerprint: String,
        reason: &'static str,
    },
}

impl Error {
    /// True when the key or the signed data given is at fault (a key file
    /// that is not a usable key, retiring the last key, a bad upstream
    /// signature); false when signing itself failed, which is nobody's
    /// input (exit 2, never "the commit is bad").
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Pgp { .. } => false,
            Error::Parse { .. }
            | Error::NoKey
            | Error::PassphraseProtected
            | Error::NoSigningKey
            | Error::Malformed { .. }
            | Error::NoSignature
            | Error::UnknownKey { .. }
            | Error::BadSignature { .. }
            | Error::SignatureNotValid { .. }
            | Error::KeyExpired { .. }
            | Error::KeyRevoked { .. }
            | Error::DuplicateKey { .. }
            | Error::NotASigningKey { .. }
            | Error::LastKey { .. }
            | Error::KeyNotValid { .. } => true,
        }
    }
}

fn pgp(op: &'static str) -> impl FnOnce(PgpError) -> Error {
    move |source| Error::Pgp { op, source }
}

fn fpr(key: &impl KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

/// The kinds of key `halo init` and `halo key rotate` generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// v4 EdDSA over Ed25519 (algorithm 22): small and fast; needs gpgv 2.1 or later.
    Ed25519,
    /// v4 RSA, 4096 bits: for clients whose gpgv is GnuPG 1.4 (trusty, xenial).
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa4096 => "rsa4096",
        }
    }
}

/// The repository signing key (a transferable secret key without passphrase).
#[derive(Debug, Clone)]
pub struct SigningKey {
    key: SignedSecretKey,
    /// Which component signs: `None` for the primary key, else an index into `secret_subkeys`.
    signer: Option<usize>,
}

impl SigningKey {
    /// A new Ed25519Legacy (v4) primary key that can certify and sign, for `user_id`
    /// (e.g. `"rustedhalo repository <repo@localhost>"`), without passphrase.
    pub fn generate(user_id: &str) -> Result<Self, Error> {
        Self::generate_with(user_id, KeyAlgorithm::Ed25519)
    }

    /// A new v4 primary key of `algorithm` that can certify and sign, without passphrase.
    pub fn generate_with(user_id: &str, algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let key_type = match algorithm {
            KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
            KeyAlgorithm::Rsa4096 => KeyType::Rsa(4096),
        };
        let params = SecretKeyParamsBuilder::default()
            .key_type(key_type)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.to_owned())
            .preferred_hash_algorithms([HashAlgorithm::Sha512, HashAlgorithm::Sha256][..].into())
            .build()
            // invariant: key type, flags and user id are set, which is all `validate` checks.
            .expect("valid key parameters");
        let key = params
            .generate(rand::thread_rng())
            .map_err(pgp("key generation"))?;
        Ok(SigningKey { key, signer: None })
    }

    /// Reads an ASCII-armored or binary unencrypted transferable secret key, e.g. from
    /// `gpg --export-secret-keys --armor` or [`SigningKey::to_armored_secret`]. Like gpg,
    /// signs with the newest signing-capable subkey if there is one, else the primary key.
    pub fn from_bytes(data: &[u8]) -> Result<Self, Error> {
        let (key, _) =
            SignedSecretKey::from_reader_single(data).map_err(|source| Error::Parse {
                what: "OpenPGP secret key",
                source,
            })?;
        let primary_can_sign = newest(self_signatures(&key.details)).is_none_or(can_sign);
        let signer = key
            .secret_subkeys
            .iter()
            .enumerate()
            .filter(|(_, sub)| newest(binding_signatures(&sub.signatures)).is_some_and(can_sign))
            .max_by_key(|(_, sub)| sub.key.created_at())
            .map(|(i, _)| i);
        if signer.is_none() && !primary_can_sign {
            return Err(Error::NoSigningKey);
        }
        let this = SigningKey { key, signer };
        let encrypted = match this.signer {
            None => this.key.primary_key.secret_params().is_encrypted(),
            Some(i) => this.key.secret_subkeys[i]
                .key
                .secret_params()
                .is_encrypted(),
        };
        if encrypted {
            return Err(Error::PassphraseProtected);
        }
        Ok(this)
    }

    /// The secret key, ASCII-armored (`-----BEGIN PGP PRIVATE KEY BLOCK-----`).
    pub fn to_armored_secret(&self) -> Result<String, Error> {
        self.key
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp("secret key export"))
    }

    /// The binary transferable public key (like `gpg --export`): what apt's `signed-by=` file holds.
    pub fn public_key_binary(&self) -> Result<Vec<u8>, Error> {
        self.key
            .to_public_key()
            .to_bytes()
            .map_err(pgp("public key export"))
    }

    /// The ASCII-armored public key (like `gpg --export --armor`).
    pub fn public_key_armored(&self) -> Result<String, Error> {
        self.key
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp("public key export"))
    }

    /// The primary key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        fpr(&self.key.primary_key)
    }

    /// The fingerprint of the key that signs: a signing subkey's, or the primary key's.
    pub fn signer_fingerprint(&self) -> String {
        match self.signer {
            None => self.fingerprint(),
            Some(i) => fpr(&self.key.secret_subkeys[i].key),
        }
    }

    /// The signing key's algorithm as `gpg --list-keys` names it (`ed25519`, `rsa4096`).
    pub fn algorithm(&self) -> String {
        use pgp::crypto::public_key::PublicKeyAlgorithm as A;
        use pgp::types::PublicParams;
        let signer = self.signer();
        match (signer.algorithm(), signer.public_params()) {
            // The first MPI of RSA public parameters is n, led by its length in bits.
            (A::RSA, params @ PublicParams::RSA(_)) => match params.to_bytes() {
                Ok(b) if b.len() >= 2 => format!("rsa{}", u16::from_be_bytes([b[0], b[1]])),
                _ => "rsa".to_string(),
            },
            (A::EdDSALegacy | A::Ed25519, _) => "ed25519".to_string(),
            (other, _) => format!("{other:?}").to_lowercase(),
        }
    }

    /// When the primary key was made (RFC 3339).
    pub fn created(&self) -> String {
        let t: SystemTime = self.key.primary_key.created_at().into();
        jiff::Timestamp::try_from(t).map_or_else(|_| String::new(), |t| t.to_string())
    }

    /// The signature of `text` (already normalised as the caller's format
    /// requires) for a signature of type `typ`.
    fn sign_one(&self, typ: SignatureType, data: &[u8]) -> Result<Signature, PgpError> {
        let config = self.config(typ)?;
        config.sign(&self.signer(), &Password::empty(), data)
    }

    // rPGP's signing functions take `&impl SigningKey`, which `Box<&dyn SigningKey>` is.
    #[allow(clippy::redundant_allocation)]
    fn signer(&self) -> Box<&dyn pgp::types::SigningKey> {
        match self.signer {
            None => Box::new(&self.key.primary_key as &dyn pgp::types::SigningKey),
            Some(i) => Box::new(&self.key.secret_subkeys[i].key as &dyn pgp::types::SigningKey),
        }
    }

    /// A v4 (or, for a v6 key, v6) signature config with the subpackets gpg writes.
    fn config(&self, typ: SignatureType) -> Result<SignatureConfig, PgpError> {
        let signer = self.signer();
        let hash = match signer.hash_alg() {
            HashAlgorithm::Sha256 => HashAlgorithm::Sha512,
            other => other,
        };
        let mut config = match signer.version() {
            KeyVersion::V6 => {
                SignatureConfig::v6(rand::thread_rng(), typ, signer.algorithm(), hash)?
            }
            _ => SignatureConfig::v4(typ, signer.algorithm(), hash),
        };
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(signer.fingerprint()))?,
        ];
        if signer.version() <= KeyVersion::V4 {
            let id = SubpacketData::IssuerKeyId(signer.legacy_key_id());
            config.unhashed_subpackets = vec![Subpacket::regular(id)?];
        }
        Ok(config)
    }

    /// `InRelease`: a cleartext signature over `text` (the `Release` file). Laid out like
    /// `gpg --clearsign`: trailing blanks of lines are dropped and the final line break is
    /// not part of the signed text (so verification gives back `text` ending in one `\n`).
    pub fn clearsign(&self, text: &str) -> Result<String, Error> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t', '\r']))
            .collect();
        let text = lines.join("\n");
        let sign = || -> Result<String, PgpError> {
            let config = self.config(SignatureType::Text)?;
            let msg =
                CleartextSignedMessage::new(&text, config, &self.signer(), &Password::empty())?;
            msg.to_armored_string(ArmorOptions::default())
        };
        sign().map_err(pgp("cleartext signing"))
    }

    /// `Release.gpg`: an ASCII-armored detached binary-mode signature over exactly `data`.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, Error> {
        let sign = || -> Result<String, PgpError> {
            let config = self.config(SignatureType::Binary)?;
            let sig = config.sign(&self.signer(), &Password::empty(), data)?;
            DetachedSignature::new(sig).to_armored_string(ArmorOptions::default())
        };
        sign().map_err(pgp("detached signing"))
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed text with dash-escaping undone, trailing blanks dropped and each line,
    /// the last included, ending in a line break (as `gpg --decrypt` prints it); empty for
    /// detached signatures.
    pub text: Vec<u8>,
    /// Fingerprint of the primary key (the certificate) whose key made the good signature.
    pub fingerprint: String,
    /// Fingerprint of the key that made the signature: a subkey's, or `fingerprint` again.
    pub signing_key: String,
}

/// Public keys trusted to sign upstream repositories (e.g. the Debian archive keyring).
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads binary keyrings (concatenated keys, like `/usr/share/keyrings/*.gpg`) or one or
    /// more ASCII-armored public key blocks. Keys rPGP cannot parse are skipped, as gpgv does.
    pub fn from_bytes(data: &[u8]) -> Result<Self, Error> {
        const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let mut starts: Vec<usize> = (0..data.len())
            .filter(|&i| data[i..].starts_with(BEGIN))
            .collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0); // binary data, or text before the first armor block
        }
        let (mut keys, mut first_error) = (Vec::new(), None);
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(data.len());
            match SignedPublicKey::from_reader_many(&data[start..end]) {
                Ok((parsed, _)) => parsed.for_each(|key| match key {
                    Ok(key) => keys.push(key),
                    Err(e) => _ = first_error.get_or_insert(e),
                }),
                Err(e) => _ = first_error.get_or_insert(e),
            }
        }
        match (keys.is_empty(), first_error) {
            (true, Some(source)) => Err(Error::Parse {
                what: "OpenPGP public keys",
                source,
            }),
            (true, None) => Err(Error::NoKey),
            (false, _) => Ok(Keyring { keys }),
        }
    }

    /// Primary key fingerprints of the keys in the ring.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr(&k.primary_key)).collect()
    }

    /// Verifies a cleartext-signed document (`InRelease`). Succeeds if at least one signature is
    /// good and made by a key or subkey of the ring that is valid for signing at `now`.
    pub fn verify_cleartext(&self, data: &[u8], now: SystemTime) -> Result<Verified, Error> {
        let (msg, _) = CleartextSignedMessage::from_armor(data)
            .map_err(|source| Error::Malformed { source })?;
        let signed = msg.signed_text();
        let (fingerprint, signing_key) = self.verify_any(
            msg.signatures(),
            signed.as_bytes(),
            &[SignatureType::Text],
            now,
        )?;
        Ok(Verified {
            text: cleartext_body(msg.text()).into_bytes(),
            fingerprint,
            signing_key,
        })
    }

    /// Verifies a detached signature (armored or binary, e.g. `Release.gpg`) over `data`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        now: SystemTime,
    ) -> Result<Verified, Error> {
        if signature.trim_ascii().is_empty() {
            return Err(Error::NoSignature);
        }
        let (sigs, _) = DetachedSignature::from_reader_many(signature)
            .map_err(|source| Error::Malformed { source })?;
        let sigs = sigs
            .map(|s| s.map(|s| s.signature))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Malformed { source })?;
        let types = [SignatureType::Binary, SignatureType::Text];
        let (fingerprint, signing_key) = self.verify_any(&sigs, data, &types, now)?;
        Ok(Verified {
            text: Vec::new(),
            fingerprint,
            signing_key,
        })
    }

    /// The first signature that checks out wins; otherwise the most telling error: one about a
    /// key we know beats `UnknownKey`.
    fn verify_any(
        &self,
        sigs: &[Signature],
        data: &[u8],
        types: &[SignatureType],
        now: SystemTime,
    ) -> Result<(String, String), Error> {
        let mut unknown = None;
        let mut known = None;
        for sig in sigs {
            let mut matched = false;
            for cert in &self.keys {
                let (result, signer) = if issued_by(sig, &cert.primary_key) {
                    let result = check(cert, &cert.primary_key, None, sig, data, types, now);
                    (result, fpr(&cert.primary_key))
                } else if let Some(sub) =
                    cert.public_subkeys.iter().find(|s| issued_by(sig, &s.key))
                {
                    (
                        check(cert, &sub.key, Some(sub), sig, data, types, now),
                        fpr(&sub.key),
                    )
                } else {
                    continue;
                };
                matched = true;
                match result {
                    Ok(()) => return Ok((fpr(&cert.primary_key), signer)),
                    Err(e) => known = known.or(Some(e)),
                }
            }
            if !matched && unknown.is_none() {
                unknown = Some(Error::UnknownKey {
                    issuer: issuer_name(sig),
                });
            }
        }
        Err(known.or(unknown).unwrap_or(Error::NoSignature))
    }
}

fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    sig.issuer_fingerprint()
        .iter()
        .any(|f| **f == key.fingerprint())
        || sig
            .issuer_key_id()
            .iter()
            .any(|id| **id == key.legacy_key_id())
}

fn issuer_name(sig: &Signature) -> String {
    match (
        sig.issuer_fingerprint().first(),
        sig.issuer_key_id().first(),
    ) {
        (Some(f), _) => format!("{f:X}"),
        (None, Some(id)) => hex::encode_upper(id),
        (None, None) => "(no issuer in signature)".to_owned(),
    }
}

/// Checks one signature made by `key` (the primary key of `cert`, or its subkey `sub`).
fn check<K>(
    cert: &SignedPublicKey,
    key: &K,
    sub: Option<&SignedPublicSubKey>,
    sig: &Signature,
    data: &[u8],
    types: &[SignatureType],
    now: SystemTime,
) -> Result<(), Error>
where
    K: pgp::types::VerifyingKey + Serialize,
{
    let fingerprint = fpr(key);
    sig.verify(key, data)
        .map_err(|source| Error::BadSignature {
            fingerprint: fingerprint.clone(),
            source,
        })?;
    let sig_invalid = |reason| Error::SignatureNotValid {
        fingerprint: fingerprint.clone(),
        reason,
    };
    // like apt, which refuses repository signatures over weak digests
    let weak = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Ripemd160,
    ];
    if sig.hash_alg().is_none_or(|h| weak.contains(&h)) {
        return Err(sig_invalid("weak digest algorithm"));
    }
    if !sig.typ().is_some_and(|t| types.contains(&t)) {
        return Err(sig_invalid("unexpected signature type"));
    }
    let Some(created) = sig.created() else {
        return Err(sig_invalid("no creation time"));
    };
    if key.created_at() > created {
        return Err(sig_invalid("the key is newer than the signature"));
    }
    if expires(created, sig.signature_expiration_time()).is_some_and(|t| t <= now) {
        return Err(sig_invalid("the signature has expired"));
    }
    let primary = &cert.primary_key;
    let self_sig = primary_self_signature(cert, now)?;
    match sub {
        None if !can_sign(self_sig) => Err(Error::KeyNotValid {
            fingerprint,
            reason: "the key is not signing-capable",
        }),
        None => Ok(()),
        Some(sub) => check_subkey(primary, sub, now),
    }
}

/// The newest valid self-signature of a usable primary key.
fn primary_self_signature(cert: &SignedPublicKey, now: SystemTime) -> Result<&Signature, Error> {
    let primary = &cert.primary_key;
    let fingerprint = fpr(primary);
    let revoked =
        cert.details.revocation_signatures.iter().any(|s| {
            s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(primary).is_ok()
        });
    if revoked {
        return Err(Error::KeyRevoked { fingerprint });
    }
    if SystemTime::from(primary.created_at()) > now {
        let reason = "the key was created in the future";
        return Err(Error::KeyNotValid {
            fingerprint,
            reason,
        });
    }
    let direct = cert.details.direct_signatures.iter().filter(|s| {
        s.typ() == Some(SignatureType::Key) && alive(s, now) && s.verify_key(primary).is_ok()
    });
    let certs = cert.details.users.iter().flat_map(|u| {
        u.signatures.iter().filter(move |s| {
            s.typ() != Some(SignatureType::CertRevocation)
                && alive(s, now)
                && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
        })
    });
    let Some(self_sig) = newest(direct.chain(certs)) else {
        let reason = "no valid self-signature";
        return Err(Error::KeyNotValid {
            fingerprint,
            reason,
        });
    };
    if expires(primary.created_at(), self_sig.key_expiration_time()).is_some_and(|t| t <= now) {
        return Err(Error::KeyExpired { fingerprint });
    }
    Ok(self_sig)
}

fn check_subkey(
    primary: &PublicKey,
    sub: &SignedPublicSubKey,
    now: SystemTime,
) -> Result<(), Error> {
    let fingerprint = fpr(&sub.key);
    let revoked = sub.signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(primary, &sub.key).is_ok()
    });
    if revoked {
        return Err(Error::KeyRevoked { fingerprint });
    }
    let valid = binding_signatures(&sub.signatures).filter(|s| {
        alive(s, now)
            && s.verify_subkey_binding(primary, &sub.key).is_ok()
            && (!can_sign(s)
                || s.embedded_signature()
                    .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok()))
    });
    let not_valid = |reason| Error::KeyNotValid {
        fingerprint: fingerprint.clone(),
        reason,
    };
    let Some(binding) = newest(valid) else {
        return Err(not_valid("no valid subkey binding signature"));
    };
    if !can_sign(binding) {
        return Err(not_valid("the subkey is not signing-capable"));
    }
    if SystemTime::from(sub.key.created_at()) > now {
        return Err(not_valid("the subkey was created in the future"));
    }
    if expires(sub.key.created_at(), binding.key_expiration_time()).is_some_and(|t| t <= now) {
        return Err(Error::KeyExpired { fingerprint });
    }
    Ok(())
}

fn self_signatures(details: &pgp::composed::SignedKeyDetails) -> impl Iterator<Item = &Signature> {
    let direct = details
        .direct_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::Key));
    let users = details.users.iter().flat_map(|u| &u.signatures);
    direct.chain(users.filter(|s| s.typ() != Some(SignatureType::CertRevocation)))
}

fn binding_signatures(sigs: &[Signature]) -> impl Iterator<Item = &Signature> {
    sigs.iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created())
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// Old keys without a key-flags subpacket may sign, as gpg assumes.
fn can_sign(sig: &Signature) -> bool {
    !has_key_flags(sig) || sig.key_flags().sign()
}

/// `Some(instant)` when something created at `start` with lifetime `life` expires (0 = never).
fn expires(start: Timestamp, life: Option<pgp::types::Duration>) -> Option<SystemTime> {
    let life = std::time::Duration::from(life.filter(|d| d.as_secs() > 0)?);
    Some(SystemTime::from(start) + life)
}

fn alive(sig: &Signature, now: SystemTime) -> bool {
    sig.created().is_some_and(|c| {
        SystemTime::from(c) <= now
            && expires(c, sig.signature_expiration_time()).is_none_or(|t| t > now)
    })
}

/// The cleartext body as `gpg --decrypt` gives it: dash-escaping undone, trailing blanks
/// dropped, every line ending in a line break.
fn cleartext_body(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + 1);
    for line in encoded.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => line.strip_suffix('\n').map_or((line, "\n"), |c| (c, "\n")),
        };
        let content = content.strip_prefix("- ").unwrap_or(content);
        out.push_str(content.trim_end_matches([' ', '\t']));
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::process::{Command, Output};
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    pub(super) const RELEASE: &str = "Origin: rustedhalo\nSuite: stable\nDescription: blanks  \n- dash\nSHA256:\n 01ab 12 main/binary-amd64/Packages\n";
    const NO_PASSPHRASE: [&str; 4] = ["--pinentry-mode", "loopback", "--passphrase", ""];

    /// A throw-away GnuPG home whose agent is stopped on drop.
    pub(super) struct Gpg(tempfile::TempDir);

    impl Drop for Gpg {
        fn drop(&mut self) {
            let mut cmd = Command::new("gpgconf");
            let _ = cmd
                .arg("--homedir")
                .arg(self.0.path())
                .args(["--kill", "gpg-agent"])
                .status();
        }
    }

    impl Gpg {
        pub(super) fn new() -> Self {
            Gpg(tempfile::tempdir().unwrap())
        }

        pub(super) fn file(&self, name: &str, data: &[u8]) -> String {
            let path = self.0.path().join(name);
            std::fs::write(&path, data).unwrap();
            path.to_str().unwrap().to_owned()
        }

        pub(super) fn run(&self, prog: &str, args: &[&str]) -> Output {
            let mut cmd = Command::new(prog);
            cmd.arg("--homedir")
                .arg(self.0.path())
                .args(["--status-fd", "2"]);
            cmd.args(if prog == "gpg" { &["--batch"][..] } else { &[] });
            cmd.args(args).output().unwrap()
        }

        /// Runs gpg with the words of `opts` then `args`; it must succeed. Returns its stdout.
        pub(super) fn ok(&self, opts: &str, args: &[&str]) -> Vec<u8> {
            let all: Vec<&str> = opts
                .split_whitespace()
                .chain(args.iter().copied())
                .collect();
            let out = self.run("gpg", &all);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "gpg {all:?}: {stderr}");
            out.stdout
        }

        /// `gpg --quick-gen-key` without passphrase; returns the fingerprints (primary first).
        fn generate(
            &self,
            opts: &str,
            uid: &str,
            algo: &str,
            usage: &str,
            expire: &str,
        ) -> Vec<String> {
            let args = [
                &NO_PASSPHRASE[..],
                &["--quick-gen-key", uid, algo, usage, expire],
            ];
            self.ok(opts, &args.concat());
            let listing = String::from_utf8(self.ok("--with-colons --list-keys", &[uid])).unwrap();
            let fprs = listing.lines().filter_map(|l| l.strip_prefix("fpr:"));
            fprs.map(|l| l.trim_matches(':').to_owned()).collect()
        }

        /// Runs gpgv with `keyring`; returns its status lines if it accepted the signature.
        pub(super) fn gpgv(&self, keyring: &[u8], files: &[(&str, &[u8])]) -> Option<String> {
            let mut args = vec!["--keyring".to_owned(), self.file("repo.gpg", keyring)];
            args.extend(files.iter().map(|(name, data)| self.file(name, data)));
            let out = self.run("gpgv", &args.iter().map(String::as_str).collect::<Vec<_>>());
            let status = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status.success().then_some(status)
        }
    }

    pub(super) fn good(res: Result<Verified, Error>) -> Verified {
        res.unwrap_or_else(|e| panic!("verification failed: {e:?}"))
    }

    #[test]
    fn generated_key_clearsigns_for_gpgv() {
        let (gpg, key) = (
            Gpg::new(),
            SigningKey::generate("rustedhalo repository <repo@localhost>").unwrap(),
        );
        let public = key.public_key_binary().unwrap();
        let inrelease = key.clearsign(RELEASE).unwrap();
        assert!(inrelease.contains("\n- - dash\n"), "{inrelease}");
        let status = gpg
            .gpgv(&public, &[("InRelease", inrelease.as_bytes())])
            .expect("gpgv accepts");
        assert!(
            status.contains(&format!("VALIDSIG {}", key.fingerprint())),
            "{status}"
        );
        let tampered = inrelease.replace("Suite: stable", "Suite: stab1e");
        assert!(gpg
            .gpgv(&public, &[("InRelease", tampered.as_bytes())])
            .is_none());

        let (ring, now) = (Keyring::from_bytes(&public).unwrap(), SystemTime::now());
        let verified = good(ring.verify_cleartext(inrelease.as_bytes(), now));
        assert_eq!(
            verified.text,
            RELEASE.replace("blanks  ", "blanks").into_bytes()
        );
        assert_eq!(
            [verified.fingerprint, verified.signing_key],
            [key.fingerprint(), key.fingerprint()]
        );
        let err = ring.verify_cleartext(tampered.as_bytes(), now).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
        let err = ring.verify_cleartext(RELEASE.as_bytes(), now).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        // the armored export is the binary one, armored
        let armored = key.public_key_armored().unwrap();
        assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert_eq!(
            gpg.ok("-o - --dearmor", &[&gpg.file("k.asc", armored.as_bytes())]),
            public
        );
        assert_eq!(
            Keyring::from_bytes(armored.as_bytes())
                .unwrap()
                .fingerprints(),
            [key.fingerprint()]
        );
    }

    #[test]
    fn generated_key_signs_detached_for_gpgv() {
        let (gpg, key) = (
            Gpg::new(),
            SigningKey::generate("repo <repo@localhost>").unwrap(),
        );
        let public = key.public_key_binary().unwrap();
        let sig = key.sign_detached(RELEASE.as_bytes()).unwrap();
        assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----"));
        let files = [
            ("Release.gpg", sig.as_bytes()),
            ("Release", RELEASE.as_bytes()),
        ];
        assert!(gpg.gpgv(&public, &files).is_some());
        let tampered = RELEASE.replace("12 main", "13 main");
        assert!(gpg
            .gpgv(&public, &[files[0], ("Release", tampered.as_bytes())])
            .is_none());

        let (ring, now) = (Keyring::from_bytes(&public).unwrap(), SystemTime::now());
        let verified = good(ring.verify_detached(RELEASE.as_bytes(), sig.as_bytes(), now));
        assert_eq!(
            (verified.text.len(), verified.fingerprint),
            (0, key.fingerprint())
        );
        let binary = gpg.ok("-o - --dearmor", &[&gpg.file("sig.asc", sig.as_bytes())]);
        good(ring.verify_detached(RELEASE.as_bytes(), &binary, now));
        let err = ring
            .verify_detached(tampered.as_bytes(), sig.as_bytes(), now)
            .unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
        // a binary-mode signature covers line endings exactly
        let crlf = RELEASE.replace('\n', "\r\n");
        assert!(ring
            .verify_detached(crlf.as_bytes(), sig.as_bytes(), now)
            .is_err());
    }

    #[test]
    fn gnupg_secret_keys_sign_for_gpgv() {
        for algo in ["ed25519", "rsa3072"] {
            let gpg = Gpg::new();
            let fprs = gpg.generate("", "Test <t@example>", algo, "sign", "0");
            let key = SigningKey::from_bytes(&gpg.ok("--export-secret-keys --armor", &[])).unwrap();
            assert_eq!(key.fingerprint(), fprs[0]);
            let public = gpg.ok("--export", &[]);
            let inrelease = key.clearsign(RELEASE).unwrap();
            assert!(
                gpg.gpgv(&public, &[("InRelease", inrelease.as_bytes())])
                    .is_some(),
                "{algo}"
            );
            let sig = key.sign_detached(RELEASE.as_bytes()).unwrap();
            let files = [
                ("Release.gpg", sig.as_bytes()),
                ("Release", RELEASE.as_bytes()),
            ];
            assert!(gpg.gpgv(&public, &files).is_some(), "{algo}");
            let binary = SigningKey::from_bytes(&gpg.ok("--export-secret-keys", &[])).unwrap();
            assert_eq!(binary.fingerprint(), fprs[0]);
        }
    }

    #[test]
    fn gnupg_signing_subkey_is_used_and_verified() {
        let gpg = Gpg::new();
        let primary = gpg
            .generate("", "Sub <sub@example>", "ed25519", "cert", "0")
            .remove(0);
        gpg.ok(
            "",
            &[
                &NO_PASSPHRASE[..],
                &["--quick-add-key", &primary, "ed25519", "sign"],
            ]
            .concat(),
        );
        let key = SigningKey::from_bytes(&gpg.ok("--export-secret-keys", &[])).unwrap();
        let listing = String::from_utf8(gpg.ok("--with-colons --list-keys", &[])).unwrap();
        let subkey = listing
            .lines()
            .filter(|l| l.starts_with("fpr:"))
            .nth(1)
            .unwrap();
        let subkey = subkey.trim_start_matches("fpr:").trim_matches(':');
        let public = gpg.ok("--export", &[]);
        let inrelease = key.clearsign(RELEASE).unwrap();
        let status = gpg
            .gpgv(&public, &[("InRelease", inrelease.as_bytes())])
            .expect("gpgv accepts");
        assert!(status.contains(&format!("VALIDSIG {subkey}")), "{status}");

        let ring = Keyring::from_bytes(&public).unwrap();
        let from_gpg = gpg.ok(
            "-o - --clearsign",
            &[&gpg.file("Release", RELEASE.as_bytes())],
        );
        for doc in [inrelease.as_bytes(), &from_gpg] {
            let verified = good(ring.verify_cleartext(doc, SystemTime::now()));
            assert_eq!(
                [verified.fingerprint.as_str(), &verified.signing_key],
                [&primary, subkey]
            );
        }
    }

    #[test]
    fn passphrase_protected_key_is_refused() {
        let gpg = Gpg::new();
        let pw = "--pinentry-mode loopback --passphrase secret";
        gpg.ok(
            pw,
            &[
                "--quick-gen-key",
                "Locked <l@example>",
                "ed25519",
                "sign",
                "0",
            ],
        );
        let secret = gpg.ok(&format!("{pw} --export-secret-keys --armor"), &[]);
        let err = SigningKey::from_bytes(&secret).unwrap_err();
        assert!(matches!(err, Error::PassphraseProtected), "{err:?}");
        let err = SigningKey::from_bytes(&gpg.ok("--export", &[])).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    }

    #[test]
    fn armored_secret_round_trip_and_fingerprint_match_gpg() {
        let (gpg, key) = (
            Gpg::new(),
            SigningKey::generate("repo <repo@localhost>").unwrap(),
        );
        let armored = key.to_armored_secret().unwrap();
        assert!(armored.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        let again = SigningKey::from_bytes(armored.as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        let repo_gpg = gpg.file("repo.gpg", &key.public_key_binary().unwrap());
        let shown = gpg.ok(
            "--with-colons --import-options show-only --import",
            &[&repo_gpg],
        );
        let shown = String::from_utf8(shown).unwrap();
        let fpr_line = shown.lines().find(|l| l.starts_with("fpr:")).unwrap();
        assert_eq!(fpr_line, format!("fpr:::::::::{}:", key.fingerprint()));
        assert!(
            shown.contains(":22:"),
            "an EdDSA (legacy, algorithm 22) key: {shown}"
        );
        // gpg takes the secret key as well
        gpg.ok("--import", &[&gpg.file("secret.asc", armored.as_bytes())]);
        let secret = String::from_utf8(gpg.ok("--with-colons --list-secret-keys", &[])).unwrap();
        assert!(secret.contains(&key.fingerprint()), "{secret}");
    }

    #[test]
    fn several_signers_unknown_keys_and_subset_keyrings() {
        let gpg = Gpg::new();
        let a = gpg
            .generate("", "A <a@example>", "ed25519", "sign", "0")
            .remove(0);
        let b = gpg
            .generate("", "B <b@example>", "rsa3072", "sign", "0")
            .remove(0);
        let release = gpg.file("Release", RELEASE.as_bytes());
        let both = format!("-u {a}! -u {b}! -o -");
        let inrelease = gpg.ok(&format!("{both} --clearsign"), &[&release]);
        let detached = gpg.ok(&format!("{both} --detach-sign"), &[&release]);
        let now = SystemTime::now();
        for signer in [&a, &b] {
            let ring = Keyring::from_bytes(&gpg.ok("--export", &[signer])).unwrap();
            assert_eq!(
                &good(ring.verify_cleartext(&inrelease, now)).fingerprint,
                signer
            );
            let verified = good(ring.verify_detached(RELEASE.as_bytes(), &detached, now));
            assert_eq!(&verified.fingerprint, signer);
        }
        let mut two_blocks = gpg.ok("--export --armor", &[&a]);
        two_blocks.extend(gpg.ok("--export --armor", &[&b]));
        let ring = Keyring::from_bytes(&two_blocks).unwrap();
        assert_eq!(ring.fingerprints(), [a.clone(), b.clone()]);
        good(ring.verify_cleartext(&inrelease, now));

        let stranger = SigningKey::generate("stranger <s@example>").unwrap();
        let ring = Keyring::from_bytes(&stranger.public_key_binary().unwrap()).unwrap();
        let err = ring.verify_cleartext(&inrelease, now).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownKey { issuer } if [&a, &b].contains(&issuer)),
            "{err:?}"
        );
        let sig = stranger.sign_detached(b"x").unwrap();
        assert!(matches!(
            ring.verify_detached(b"x", b"", now),
            Err(Error::NoSignature)
        ));
        let err = ring
            .verify_detached(b"x", &sig.as_bytes()[..80], now)
            .unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        // apt refuses SHA-1 repository signatures, and so do we
        let weak = gpg.ok(
            &format!("-u {b} --digest-algo SHA1 -o - --clearsign"),
            &[&release],
        );
        let ring = Keyring::from_bytes(&gpg.ok("--export", &[&b])).unwrap();
        let err = ring.verify_cleartext(&weak, now).unwrap_err();
        assert!(matches!(&err, Error::SignatureNotValid { .. }), "{err:?}");
    }

    #[test]
    fn expired_and_revoked_keys_are_refused() {
        let gpg = Gpg::new();
        let old = gpg.generate(
            "--faked-system-time 20200101T000000!",
            "Old <o@example>",
            "ed25519",
            "sign",
            "1d",
        );
        let release = gpg.file("Release", RELEASE.as_bytes());
        let at_6am = format!(
            "--faked-system-time 20200101T060000! -u {} -o - --clearsign",
            old[0]
        );
        let inrelease = gpg.ok(&at_6am, &[&release]);
        let public = gpg.ok("--export", &[&old[0]]);
        let status = gpg
            .gpgv(&public, &[("InRelease", &inrelease)])
            .unwrap_or_default();
        assert!(
            status.contains("EXPKEYSIG"),
            "gpgv agrees the key expired: {status}"
        );
        let ring = Keyring::from_bytes(&public).unwrap();
        let err = ring
            .verify_cleartext(&inrelease, SystemTime::now())
            .unwrap_err();
        assert!(
            matches!(&err, Error::KeyExpired { fingerprint } if *fingerprint == old[0]),
            "{err:?}"
        );
        let noon = UNIX_EPOCH + Duration::from_secs(1_577_880_000); // 2020-01-01T12:00Z
        assert_eq!(
            good(ring.verify_cleartext(&inrelease, noon)).fingerprint,
            old[0]
        );
        let before_key = UNIX_EPOCH + Duration::from_secs(1_577_800_000);
        assert!(ring.verify_cleartext(&inrelease, before_key).is_err());

        let live = gpg
            .generate("", "Live <live@example>", "ed25519", "sign", "0")
            .remove(0);
        let inrelease = gpg.ok(&format!("-u {live} -o - --clearsign"), &[&release]);
        let rev = gpg.0.path().join(format!("openpgp-revocs.d/{live}.rev"));
        let rev = std::fs::read_to_string(rev)
            .unwrap()
            .replace(":-----", "-----");
        gpg.ok("--import", &[&gpg.file("revoke.asc", rev.as_bytes())]);
        let ring = Keyring::from_bytes(&gpg.ok("--export", &[&live])).unwrap();
        let err = ring
            .verify_cleartext(&inrelease, SystemTime::now())
            .unwrap_err();
        assert!(
            matches!(&err, Error::KeyRevoked { fingerprint } if *fingerprint == live),
            "{err:?}"
        );
    }

    /// Runs GnuPG 1.4's gpgv (Debian's `gpgv1`: the gpgv of trusty and xenial) on `files`
    /// with `keyring`; its exit status and status lines.
    pub(super) fn gpgv1(gpg: &Gpg, keyring: &[u8], files: &[(&str, &[u8])]) -> (bool, String) {
        let mut args = vec!["--keyring".to_owned(), gpg.file("repo1.gpg", keyring)];
        args.extend(files.iter().map(|(name, data)| gpg.file(name, data)));
        let out = gpg.run(
            "gpgv1",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let status = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), status)
    }

    #[test]
    fn rsa4096_keys_sign_for_gnupg_1_4_which_cannot_check_ed25519() {
        let gpg = Gpg::new();
        let rsa = SigningKey::generate_with("rsa <rsa@localhost>", KeyAlgorithm::Rsa4096).unwrap();
        assert_eq!(rsa.algorithm(), "rsa4096");
        let public = rsa.public_key_binary().unwrap();
        let inrelease = rsa.clearsign(RELEASE).unwrap();
        let sig = rsa.sign_detached(RELEASE.as_bytes()).unwrap();
        let detached = [
            ("Release.gpg", sig.as_bytes()),
            ("Release", RELEASE.as_bytes()),
        ];
        for files in [&[("InRelease", inrelease.as_bytes())][..], &detached[..]] {
            let status = gpg.gpgv(&public, files).expect("gpgv 2 accepts");
            assert!(
                status.contains(&format!("VALIDSIG {}", rsa.fingerprint())),
                "{status}"
            );
            let (ok, status) = gpgv1(&gpg, &public, files);
            assert!(ok, "gpgv 1.4 accepts: {status}");
            assert!(status.contains("GOODSIG"), "{status}");
        }
        let shown = gpg.ok(
            "--with-colons --import-options show-only --import",
            &[&gpg.file("rsa.gpg", &public)],
        );
        let shown = String::from_utf8(shown).unwrap();
        assert!(
            shown.contains(":4096:1:"),
            "an RSA (algorithm 1) 4096-bit key: {shown}"
        );

        let ed = SigningKey::generate("ed <ed@localhost>").unwrap();
        assert_eq!(ed.algorithm(), "ed25519");
        let inrelease = ed.clearsign(RELEASE).unwrap();
        let files = [("InRelease", inrelease.as_bytes())];
        let (ok, status) = gpgv1(&gpg, &ed.public_key_binary().unwrap(), &files);
        assert!(!ok, "gpgv 1.4 cannot check EdDSA: {status}");
    }
}
