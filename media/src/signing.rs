//! Signed, expiring download URLs: `/media/{tenant}/{sha256}?exp={unix secs}&name={file
//! name}&sig={hex}`, where `sig` is HMAC-SHA256 over the tenant, the digest, the expiry and the
//! name. Whoever holds the URL may read that one object until `exp` and nothing else: changing
//! the tenant, the digest, the name or the expiry breaks the signature.
//!
//! The same URLs serve both backends: S3 objects are proxied through our server rather than
//! handed out as S3 presigned URLs, so the bucket stays private, the browser sees one origin, and
//! our `Content-Type`, `Content-Disposition` and `nosniff` headers apply to every download.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Where downloads are served, below the server's origin.
pub const MEDIA_PATH: &str = "/media";

/// The parts of one of our media URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUrl {
    pub tenant: i64,
    pub sha256: String,
    pub name: Option<String>,
    pub expires_at: u64,
    pub sig: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the link's signature does not verify")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// Signs and verifies media URLs with one key (every node of a deployment must share it).
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner([REDACTED])")
    }
}

impl UrlSigner {
    /// Derives the URL-signing key from a secret, so the secret itself is never used for
    /// anything else under this name.
    pub fn new(secret: &[u8]) -> UrlSigner {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
        mac.update(b"switchboard media url v1");
        UrlSigner { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, tenant: i64, sha256: &str, name: Option<&str>, expires_at: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_hmac());
        // Newline-separated: none of the fields can contain a newline that survives parsing
        // (the tenant and expiry are numbers, the digest is hex, the name is checked below).
        mac.update(format!("{tenant}\n{sha256}\n{expires_at}\n{}", name.unwrap_or("")).as_bytes());
        mac
    }

    /// A URL (relative, or below `base` such as `https://chat.example.com`) for one object.
    pub fn sign(&self, base: &str, tenant: i64, sha256: &str, name: Option<&str>, expires_at: u64) -> String {
        let name = name.map(clean_name);
        let sig = hex::encode(self.mac(tenant, sha256, name.as_deref(), expires_at).finalize().into_bytes());
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("exp", &expires_at.to_string());
        if let Some(name) = &name {
            query.append_pair("name", name);
        }
        query.append_pair("sig", &sig);
        format!("{}{MEDIA_PATH}/{tenant}/{sha256}?{}", base.trim_end_matches('/'), query.finish())
    }

    /// Checks a parsed URL's signature (in constant time), then its expiry against `now`.
    pub fn verify(&self, url: &MediaUrl, now: u64) -> Result<(), UrlError> {
        let Ok(sig) = hex::decode(&url.sig) else { return Err(UrlError::BadSignature) };
        let expected = self.mac(url.tenant, &url.sha256, url.name.as_deref(), url.expires_at).finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(&sig)) {
            return Err(UrlError::BadSignature);
        }
        if now >= url.expires_at {
            return Err(UrlError::Expired);
        }
        Ok(())
    }
}

// HMAC-SHA256 takes a key of any length; `new_from_slice` cannot fail for it.
fn unreachable_hmac() -> HmacSha256 {
    unreachable!("HMAC accepts keys of any length")
}

/// A file name safe to sign and to put in `Content-Disposition`: no path, no control
/// characters, no quotes, at most 200 characters.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control() && *c != '"').take(200).collect();
    if cleaned.trim().is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// Whether `sha256` is a lowercase hex SHA-256 digest (what object keys are made of).
pub fn is_digest(sha256: &str) -> bool {
    sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses one of our media URLs (relative or absolute; the host is not ours to judge here).
/// `None` when the URL is not a media URL at all.
pub fn parse_media_url(raw: &str) -> Option<MediaUrl> {
    let base = url::Url::parse("http://media.invalid/").ok()?;
    let parsed = base.join(raw).ok()?;
    let mut segments = parsed.path_segments()?;
    if segments.next()? != MEDIA_PATH.trim_start_matches('/') {
        return None;
    }
    let tenant = segments.next()?.parse().ok()?;
    let sha256 = segments.next()?.to_string();
    if segments.next().is_some() || !is_digest(&sha256) {
        return None;
    }
    parse_query(tenant, sha256, parsed.query().unwrap_or(""))
}

/// Builds a [`MediaUrl`] from the path's parts and the raw query string.
pub fn parse_query(tenant: i64, sha256: String, query: &str) -> Option<MediaUrl> {
    let (mut exp, mut name, mut sig) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "exp" => exp = v.parse().ok(),
            "name" => name = Some(v.into_owned()),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(MediaUrl { tenant, sha256, name, expires_at: exp?, sig: sig? })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = UrlSigner::new(b"secret");
        let url = signer.sign("https://chat.example.com/", 7, SHA, Some("a b/ü.pdf"), 1_000);
        assert!(url.starts_with("https://chat.example.com/media/7/"), "{url}");
        let parsed = parse_media_url(&url).expect("ours");
        assert_eq!(parsed.name.as_deref(), Some("ü.pdf"), "path stripped, unicode kept");
        assert_eq!(signer.verify(&parsed, 999), Ok(()));
        assert_eq!(signer.verify(&parsed, 1_000), Err(UrlError::Expired));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let signer = UrlSigner::new(b"secret");
        let good = parse_media_url(&signer.sign("", 7, SHA, None, 1_000)).expect("ours");
        let tampered = [
            MediaUrl { tenant: 8, ..good.clone() },
            MediaUrl { expires_at: 2_000, ..good.clone() },
            MediaUrl { name: Some("x.txt".into()), ..good.clone() },
            MediaUrl { sha256: SHA.replace('9', "8"), ..good.clone() },
        ];
        for t in tampered {
            assert_eq!(signer.verify(&t, 0), Err(UrlError::BadSignature), "{t:?}");
        }
        assert_eq!(UrlSigner::new(b"other").verify(&good, 0), Err(UrlError::BadSignature));
        assert!(parse_media_url("/media/7/not-a-digest?exp=1&sig=00").is_none());
        assert!(parse_media_url("https://example.com/photo.jpg").is_none());
    }
}
