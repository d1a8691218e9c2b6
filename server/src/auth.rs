//! Who is calling: password hashing (argon2), opaque bearer tokens, and the `Principal`
//! extractor that resolves a bearer token to a tenant, a role and (for logins) a user.
//!
//! Tokens are random 32-byte strings with a readable prefix (`sbs_` login session, `sbk_` API
//! key, `sbi_` inbox ingestion token, `sbw_` widget session). Only their SHA-256 is stored, so a
//! database leak does not leak usable tokens.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_core::domain::{Role, User};
use switchboard_core::ids::{TenantId, UserId};

use crate::error::ApiError;
use crate::state::AppState;
use crate::time::now_ms;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Minimum rules for a password an admin sets.
pub fn check_password_rules(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 10 {
        return Err(ApiError::Unprocessable("password must be at least 10 characters".into()));
    }
    Ok(())
}

/// A fresh random token with a readable prefix.
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub role: Role,
    /// The logged-in user; `None` for API keys.
    pub user: Option<User>,
    /// The API key, when the caller is one (the audit log names it).
    pub api_token_id: Option<switchboard_core::ids::ApiTokenId>,
}

impl Principal {
    pub fn user_id(&self) -> Option<UserId> {
        self.user.as_ref().map(|u| u.id)
    }

    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }

    pub fn require_supervisor(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Supervisor])
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Resolves a login-session or API-key token to its principal.
pub async fn resolve_token(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let hash = token_hash(token);
    if token.starts_with("sbs_") {
        let found = state.store.find_session_unscoped(&hash, now_ms()).await?;
        let (_, user) = found.ok_or(ApiError::Unauthorized)?;
        return Ok(Principal { tenant_id: user.tenant_id, role: user.role, user: Some(user), api_token_id: None });
    }
    if token.starts_with("sbk_") {
        let key = state.store.find_api_token_unscoped(&hash).await?.ok_or(ApiError::Unauthorized)?;
        return Ok(Principal { tenant_id: key.tenant_id, role: key.role, user: None, api_token_id: Some(key.id) });
    }
    Err(ApiError::Unauthorized)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        resolve_token(state, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_secret() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not-a-hash"));
    }

    #[test]
    fn tokens_are_unique_and_hashed() {
        let a = new_token("sbs_");
        let b = new_token("sbs_");
        assert_ne!(a, b);
        assert!(a.starts_with("sbs_"));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
