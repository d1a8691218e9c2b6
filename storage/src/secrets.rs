//! Inbox secrets at rest: AES-256-GCM (RustCrypto `aes-gcm`) under a key from configuration.
//!
//! This module owns the sealed format and the keyring; it must not decide where keys come from
//! (the server reads `security.secrets_key` or its key file) and must never log a key or a
//! plaintext.
//!
//! # Format
//!
//! The `inboxes.secrets` column holds `sbenc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`:
//!
//! - `key id`: 8 hex characters of SHA-256 over a label and the key, so a row names the key that
//!   sealed it without revealing anything about it, and a node missing that key can say which.
//! - the nonce is 12 random bytes per seal (never reused with one key: 2^-32 collision bound
//!   after 2^32 seals, far beyond how often secrets change);
//! - the associated data binds the ciphertext to its tenant, so a row copied into another
//!   tenant's inbox does not open.
//!
//! A column that does not start with `sbenc:` is plaintext JSON written by a version before
//! encryption (or by a store without a keyring, as the storage tests use); it is read as is and
//! sealed by [`crate::SqlStore::reseal_inbox_secrets`], which the server runs at start-up.
//!
//! # Rotation
//!
//! The keyring has one primary key (seals) and any number of previous keys (open only). To
//! rotate: configure the new key as primary and the old one as previous, then run
//! `switchboard rotate-secrets` (or restart: start-up reseals plaintext rows; `rotate-secrets`
//! also reseals rows under previous keys), then drop the old key.
//!
//! # Failing closed
//!
//! A row sealed under a key the keyring lacks, or one that fails authentication (wrong key with
//! a colliding id, tampered bytes, moved to another tenant), is an error naming the key id —
//! never an empty secret, never a fallback.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};
use switchboard_core::ids::TenantId;

const PREFIX: &str = "sbenc:v1:";
const NONCE_LEN: usize = 12;

/// Why a key or a sealed value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("a secrets key must be 32 bytes in standard base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error(
        "inbox secrets were sealed with key {0}, which is not configured (security.secrets_key / \
         security.previous_secrets_keys); nodes sharing a database must share the key"
    )]
    UnknownKey(String),
    #[error("inbox secrets under key {0} failed authentication (wrong key, tampered or moved row)")]
    Unauthentic(String),
    #[error("sealed inbox secrets are malformed")]
    Malformed,
}

/// One AES-256 key and its id.
#[derive(Clone)]
struct SecretsKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SecretsKey {
    fn new(key: &[u8; 32]) -> Self {
        SecretsKey { id: key_id(key), cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }
}

/// The id a sealed value names its key by.
pub fn key_id(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"switchboard secrets key id v1\0");
    h.update(key);
    hex_prefix(&h.finalize()[..4])
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a key given in configuration: 32 bytes, standard base64 (padding optional).
pub fn parse_key(text: &str) -> Result<[u8; 32], SecretsError> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|_| SecretsError::BadKey)?;
    bytes.try_into().map_err(|_| SecretsError::BadKey)
}

/// A fresh random key, base64-encoded as [`parse_key`] reads it.
pub fn generate_key() -> String {
    let key = Aes256Gcm::generate_key(&mut OsRng);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// What [`crate::SqlStore::reseal_inbox_secrets`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SecretsReport {
    /// Inboxes whose secrets were opened (all of them, on success).
    pub inboxes: u64,
    /// Of those, how many were sealed again (plaintext, or a previous key when rotating).
    pub resealed: u64,
}

/// The keys a store seals and opens inbox secrets with. `Debug` shows key ids only.
#[derive(Clone, Default)]
pub struct SecretsKeyring {
    primary: Option<SecretsKey>,
    previous: Vec<SecretsKey>,
}

impl std::fmt::Debug for SecretsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKeyring")
            .field("primary", &self.primary.as_ref().map(|k| &k.id))
            .field("previous", &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// Whether a stored value was sealed, and under which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealState {
    Plaintext,
    Sealed { key_id: String },
}

impl SecretsKeyring {
    /// Seals with `primary`; opens with `primary` or any of `previous`.
    pub fn new(primary: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        SecretsKeyring {
            primary: Some(SecretsKey::new(primary)),
            previous: previous.iter().map(SecretsKey::new).collect(),
        }
    }

    /// No key: values are stored as plaintext JSON (the storage suite's default; the server
    /// always configures a key).
    pub fn plaintext() -> Self {
        SecretsKeyring::default()
    }

    /// The id of the key new values are sealed with.
    pub fn primary_id(&self) -> Option<&str> {
        self.primary.as_ref().map(|k| k.id.as_str())
    }

    fn aad(tenant: TenantId) -> Vec<u8> {
        format!("switchboard inbox secrets v1 tenant {}", tenant.0).into_bytes()
    }

    /// The stored form of `plaintext` for an inbox of `tenant`.
    pub fn seal(&self, tenant: TenantId, plaintext: &str) -> Result<String, SecretsError> {
        let Some(key) = &self.primary else { return Ok(plaintext.to_owned()) };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = Self::aad(tenant);
        let sealed = key
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: &aad })
            .map_err(|_| SecretsError::Malformed)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}:{}", key.id, base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)))
    }

    /// The plaintext of a stored value, and how it was stored.
    pub fn open(&self, tenant: TenantId, stored: &str) -> Result<(String, SealState), SecretsError> {
        let Some(rest) = stored.strip_prefix("sbenc:") else { return Ok((stored.to_owned(), SealState::Plaintext)) };
        let rest = rest.strip_prefix("v1:").ok_or(SecretsError::Malformed)?;
        let (id, body) = rest.split_once(':').ok_or(SecretsError::Malformed)?;
        let key = self
            .primary
            .iter()
            .chain(self.previous.iter())
            .find(|k| k.id == id)
            .ok_or_else(|| SecretsError::UnknownKey(id.to_owned()))?;
        let bytes =
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(body).map_err(|_| SecretsError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SecretsError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(tenant);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| SecretsError::Unauthentic(id.to_owned()))?;
        let plain = String::from_utf8(plain).map_err(|_| SecretsError::Malformed)?;
        Ok((plain, SealState::Sealed { key_id: id.to_owned() }))
    }

    /// Whether a value in state `state` should be sealed again: plaintext while a key is
    /// configured, and (when `rotate`) anything not under the primary key.
    pub fn needs_reseal(&self, state: &SealState, rotate: bool) -> bool {
        match (state, &self.primary) {
            (_, None) => false,
            (SealState::Plaintext, Some(_)) => true,
            (SealState::Sealed { key_id }, Some(primary)) => rotate && *key_id != primary.id,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md)
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];

    #[test]
    fn seals_and_opens_under_the_primary_key_only_for_its_tenant() {
        let ring = SecretsKeyring::new(&A, &[]);
        let sealed = ring.seal(TenantId(1), r#"{"token":"hunter2"}"#).unwrap();
        assert!(sealed.starts_with("sbenc:v1:"), "{sealed}");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, ring.seal(TenantId(1), r#"{"token":"hunter2"}"#).unwrap(), "fresh nonce per seal");
        let (plain, state) = ring.open(TenantId(1), &sealed).unwrap();
        assert_eq!(plain, r#"{"token":"hunter2"}"#);
        assert_eq!(state, SealState::Sealed { key_id: key_id(&A) });
        assert_eq!(
            ring.open(TenantId(2), &sealed),
            Err(SecretsError::Unauthentic(key_id(&A))),
            "moved to another tenant"
        );
    }

    #[test]
    fn a_missing_key_fails_closed_and_previous_keys_open() {
        let old = SecretsKeyring::new(&A, &[]);
        let sealed = old.seal(TenantId(1), "{}").unwrap();
        let other = SecretsKeyring::new(&B, &[]);
        let err = other.open(TenantId(1), &sealed).unwrap_err();
        assert_eq!(err, SecretsError::UnknownKey(key_id(&A)));
        assert!(err.to_string().contains("security.secrets_key"), "{err}");
        let rotated = SecretsKeyring::new(&B, &[A]);
        let (_, state) = rotated.open(TenantId(1), &sealed).unwrap();
        assert!(rotated.needs_reseal(&state, true));
        assert!(!rotated.needs_reseal(&state, false));
        assert!(rotated.needs_reseal(&SealState::Plaintext, false));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(old.open(TenantId(1), &tampered).is_err());
    }

    #[test]
    fn plaintext_rows_read_as_is_and_keys_parse_strictly() {
        let ring = SecretsKeyring::new(&A, &[]);
        assert_eq!(ring.open(TenantId(1), "{\"a\":1}").unwrap(), ("{\"a\":1}".to_owned(), SealState::Plaintext));
        assert!(parse_key(&generate_key()).is_ok());
        assert_eq!(parse_key("c2hvcnQ="), Err(SecretsError::BadKey));
        assert_eq!(parse_key("not base64!"), Err(SecretsError::BadKey));
        let shown = format!("{ring:?}");
        assert!(shown.contains(&key_id(&A)) && !shown.contains("7, 7"), "{shown}");
    }
}
