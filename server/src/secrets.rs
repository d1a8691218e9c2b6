//! Where the inbox-secrets key comes from: `security.secrets_key` (and
//! `security.previous_secrets_keys` during a rotation), or — when no key is configured — a
//! random key kept in `data_dir/secrets.key`, created on first start with mode 0600.
//!
//! The sealing itself lives in `switchboard_storage::secrets`; this module must never log a key.
//! One node with the embedded default works out of the box; nodes sharing a database must all
//! be given the same `security.secrets_key` (a node with another key fails closed at start-up,
//! naming the key id it lacks).

use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_storage::secrets::{generate_key, parse_key, SecretsKeyring};

use crate::settings::Settings;

pub const KEY_FILE: &str = "secrets.key";

/// The keyring the store seals inbox secrets with.
pub fn keyring(settings: &Settings) -> anyhow::Result<SecretsKeyring> {
    let security = &settings.security;
    let primary = match security.secrets_key.as_ref().filter(|k| !k.expose_secret().trim().is_empty()) {
        Some(key) => parse_key(key.expose_secret()).context("security.secrets_key")?,
        None => local_key(&settings.data_dir)?,
    };
    let mut previous = Vec::new();
    if let Some(list) = &security.previous_secrets_keys {
        for (i, key) in list.expose_secret().split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
            previous.push(parse_key(key).with_context(|| format!("security.previous_secrets_keys (entry {})", i + 1))?);
        }
    }
    Ok(SecretsKeyring::new(&primary, &previous))
}

/// The key in `data_dir/secrets.key`, created (0600, never overwritten) if missing.
fn local_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(KEY_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return parse_key(&existing).with_context(|| format!("{} is not a base64 32-byte key", path.display()));
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let key = generate_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, key.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the inbox secrets key (back it up with the database)");
            parse_key(&key).context("generated key")
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => local_key(data_dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Overrides;

    fn settings(dir: &Path) -> Settings {
        Settings::load(&Overrides { data_dir: Some(dir.to_owned()), ..Default::default() }).expect("settings")
    }

    #[test]
    fn without_a_configured_key_one_is_created_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("sb-secrets-{}-{}", std::process::id(), rand::random::<u32>()));
        let s = settings(&dir);
        let first = keyring(&s).expect("keyring").primary_id().map(str::to_owned);
        let second = keyring(&s).expect("keyring").primary_id().map(str::to_owned);
        assert_eq!(first, second, "the key file is reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).expect("key file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn configured_keys_win_and_bad_ones_fail_fast() {
        let dir = std::env::temp_dir().join("sb-secrets-unused");
        let mut s = settings(&dir);
        let key = generate_key();
        s.security.secrets_key = Some(key.clone().into());
        s.security.previous_secrets_keys = Some(format!("{}, {}", generate_key(), generate_key()).into());
        let ring = keyring(&s).expect("keyring");
        assert_eq!(
            ring.primary_id(),
            Some(switchboard_storage::secrets::key_id(&parse_key(&key).expect("key")).as_str())
        );
        assert!(!dir.join(KEY_FILE).exists(), "no key file when a key is configured");
        s.security.secrets_key = Some("too-short".to_string().into());
        let err = format!("{:#}", keyring(&s).expect_err("a short key is refused"));
        assert!(err.contains("security.secrets_key") && !err.contains("too-short"), "{err}");
    }
}
