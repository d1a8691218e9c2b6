//! Media over HTTP: uploads by agents and API keys (`POST /api/v1/uploads`) and by widget
//! customers (`POST /api/v1/widget/uploads`), signed downloads (`GET /media/{tenant}/{sha256}`),
//! and the check that an attachment pointing at our media was signed for the sender's tenant.
//!
//! The bytes live in the [`switchboard_media::BlobStore`] (local disk or S3); no SQL is
//! involved. An attachment's `url` is the signed download URL: whoever holds it may read that one
//! object until it expires. When a message carrying one of our URLs is stored, the URL must
//! verify for the sender's tenant and is re-signed with a fresh expiry (`checked_attachments`).
//!
//! This module must not decide a file's type from its name or the client's `Content-Type`: the
//! media crate sniffs the bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, RawQuery, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use secrecy::ExposeSecret;
use serde::Serialize;
use switchboard_core::domain::{Attachment, ChannelKind, Role};
use switchboard_core::ids::{InboxId, TenantId};
use switchboard_gateway::signature::constant_time_eq;
use switchboard_media::signing::{clean_name, parse_query, UrlError};
use switchboard_media::{parse_media_url, BackendConfig, BlobStore, MediaError, MediaKind, S3Config, StoredBlob, UrlSigner};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiPath;
use crate::settings::{MediaSettings, Settings};
use crate::state::AppState;

/// The multipart field that carries the file.
const FILE_FIELD: &str = "file";

/// The media store of this node, its URL signer and limits.
pub struct Media {
    pub store: Arc<dyn BlobStore>,
    signer: UrlSigner,
    settings: MediaSettings,
    /// Prefix of download URLs: the public URL, or empty for same-origin relative URLs.
    base: String,
}

impl Media {
    /// Opens the configured backend and loads (or creates) the URL-signing secret.
    pub fn open(settings: &Settings) -> anyhow::Result<Media> {
        let m = &settings.media;
        let backend = match m.backend.as_str() {
            "s3" => {
                let secret = |v: &Option<secrecy::SecretString>| v.as_ref().map(|s| s.expose_secret().to_string()).unwrap_or_default();
                BackendConfig::S3(S3Config {
                    endpoint: m.s3.endpoint.clone(),
                    bucket: m.s3.bucket.clone(),
                    region: m.s3.region.clone(),
                    access_key_id: secret(&m.s3.access_key_id),
                    secret_access_key: secret(&m.s3.secret_access_key),
                    path_style: m.s3.path_style,
                })
            }
            "memory" => BackendConfig::Memory,
            _ => BackendConfig::Local { path: settings.media_path() },
        };
        let store = switchboard_media::open(&backend).context("opening the media store")?;
        let secret = match m.signing_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None => local_signing_secret(&settings.data_dir)?,
        };
        let base = settings.public_url.clone().unwrap_or_default().trim_end_matches('/').to_string();
        Ok(Media { store, signer: UrlSigner::new(&secret), settings: m.clone(), base })
    }

    /// The upload limit of a tenant.
    pub fn limit_for(&self, tenant: TenantId) -> u64 {
        self.settings.max_bytes_for(tenant.0)
    }

    /// A download URL for a tenant's object, valid for `media.url_ttl_secs` from now.
    pub fn sign(&self, tenant: TenantId, sha256: &str, name: Option<&str>) -> (String, u64) {
        let expires_at = unix_now() + self.settings.url_ttl_secs;
        (self.signer.sign(&self.base, tenant.0, sha256, name, expires_at), expires_at)
    }

    /// The whole content of a tenant's object and its sniffed type (outbound uploads to
    /// platforms). Bounded by the tenant's upload limit, which every stored object is under.
    pub async fn read_all(&self, tenant: TenantId, sha256: &str) -> Result<(Vec<u8>, String), MediaError> {
        let blob = self.store.get(tenant.0, sha256).await?;
        let limit = self.limit_for(tenant);
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size.min(limit)).unwrap_or(0));
        let mut body = blob.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(MediaError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, blob.mime))
    }

    fn uploaded(&self, stored: &StoredBlob, name: Option<String>) -> UploadedAttachment {
        let (url, expires_at) = self.sign(TenantId(stored.tenant), &stored.sha256, name.as_deref());
        UploadedAttachment {
            kind: stored.kind.as_str().to_string(),
            url,
            name,
            mime: stored.mime.clone(),
            size: i64::try_from(stored.size).unwrap_or(i64::MAX),
            sha256: stored.sha256.clone(),
            expires_at,
            deduplicated: stored.deduplicated,
        }
    }

    /// Attachments as they may be stored in a message of `tenant`: each URL of ours must carry
    /// a signature we made for this tenant (expired ones are accepted, so an older upload can be
    /// sent again) and is re-signed with a fresh expiry. Other URLs (a platform's media, a
    /// business system's link) pass unchanged.
    pub fn checked_attachments(&self, tenant: TenantId, attachments: Vec<Attachment>) -> ApiResult<Vec<Attachment>> {
        attachments
            .into_iter()
            .enumerate()
            .map(|(i, mut a)| {
                let Some(ours) = a.url.as_deref().and_then(parse_media_url) else { return Ok(a) };
                // `now = 0`: only the signature is checked here, not the expiry.
                if ours.tenant != tenant.0 || self.signer.verify(&ours, 0).is_err() {
                    return Err(ApiError::Unprocessable(format!("attachments[{i}].url is not a media link of this tenant")));
                }
                a.url = Some(self.sign(tenant, &ours.sha256, ours.name.as_deref()).0);
                Ok(a)
            })
            .collect()
    }
}

/// The URL-signing secret of a deployment without `media.signing_key`: 32 random bytes kept in
/// `data_dir/media-signing.key` (created on first start, readable by this user only), so links
/// survive restarts. Several nodes must set `media.signing_key` instead.
fn local_signing_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("media-signing.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if let Ok(secret) = hex::decode(existing.trim()) {
            if secret.len() >= 32 {
                return Ok(secret);
            }
        }
        anyhow::bail!("{} is not a hex secret of at least 32 bytes", path.display());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let secret: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, hex::encode(secret).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the media URL signing secret");
            Ok(secret.to_vec())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => local_signing_secret(data_dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// An uploaded file, ready to be sent as a message attachment (`kind`, `url`, `name`, `mime`,
/// `size` are the attachment's fields; the others are informative).
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedAttachment {
    /// `image`, `audio`, `video` or `file`, decided from the content.
    pub kind: String,
    /// Signed download URL, valid until `expires_at`.
    pub url: String,
    /// The file name as uploaded (without any path).
    pub name: Option<String>,
    /// Sniffed from the content, never taken from the name or the request.
    pub mime: String,
    pub size: i64,
    /// Hex SHA-256 of the content: the object's key within the tenant.
    pub sha256: String,
    /// When `url` stops working (Unix seconds).
    pub expires_at: u64,
    /// True when the tenant already had these bytes (stored once).
    pub deduplicated: bool,
}

/// The form of an upload: one multipart field named `file`.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart body; the handler streams the field itself
pub struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The upload routes, nested under `/api/v1`.
pub fn api_router() -> Router<AppState> {
    // The widget is embedded in customers' sites, so its upload is callable from any origin:
    // it carries no cookie and is authenticated by the (public) widget key and the customer's
    // session token, like the widget's socket. Nothing else under `/api/v1` is.
    let widget_cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods(AllowMethods::list([Method::POST]))
        .allow_headers(AllowHeaders::list([
            CONTENT_TYPE,
            HeaderName::from_static("x-widget-inbox"),
            HeaderName::from_static("x-widget-key"),
            HeaderName::from_static("x-widget-session"),
        ]));
    // The general body limit would stop uploads at `max_body_bytes`; the media store enforces
    // the (larger) per-tenant file limit itself while the body streams in.
    Router::new()
        .route("/uploads", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/media/links", post(refresh_link))
        .route(
            "/widget/uploads",
            // Wraps the whole method router, so the CORS preflight (OPTIONS) is answered too.
            post(widget_upload)
                // An OPTIONS route, so the CORS layer answers the browser's preflight: `api::router`'s
                // `method_not_allowed_fallback` replaces this router's fallback (the layer with it),
                // which left the preflight a 405 and browsers unable to upload from another origin.
                .options(|| async { StatusCode::NO_CONTENT })
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
                .layer::<_, std::convert::Infallible>(widget_cors),
        )
}

/// A link to re-sign.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// One of our media links (`/media/{tenant}/{sha256}?exp=…&sig=…`, relative or absolute),
    /// expired or not.
    pub url: String,
}

/// A fresh link to the same file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FreshLink {
    pub url: String,
    /// When `url` stops working (Unix seconds).
    pub expires_at: u64,
}

/// Re-sign a media link (agents, supervisors, admins and API keys).
///
/// Media links expire (`media.url_ttl_secs`); a client holding an expired one (a message read
/// days later) trades it here for a fresh link to the same file. The link must be one we signed
/// (its signature is checked, its expiry is not) for the caller's tenant: a link of another
/// tenant is `404`, anything else `422 invalid_body`.
#[utoipa::path(
    post, path = "/media/links", tag = "media",
    request_body = LinkRequest,
    responses(
        (status = 200, description = "A fresh link", body = FreshLink),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The file is another tenant's or no longer stored", body = ErrorBody),
        (status = 422, description = "`invalid_body`: not one of our media links", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn refresh_link(
    State(state): State<AppState>,
    principal: Principal,
    crate::extract::ApiJson(body): crate::extract::ApiJson<LinkRequest>,
) -> ApiResult<Json<FreshLink>> {
    principal.require(&[Role::Admin, Role::Supervisor, Role::Agent])?;
    let link = parse_media_url(&body.url).ok_or_else(|| ApiError::Unprocessable("url is not a media link".into()))?;
    if state.media.signer.verify(&link, 0).is_err() {
        return Err(ApiError::Unprocessable("url is not a media link we signed".into()));
    }
    if link.tenant != principal.tenant_id.0 {
        return Err(ApiError::NotFound("media"));
    }
    if !state.media.store.exists(link.tenant, &link.sha256).await.map_err(media_error)? {
        return Err(ApiError::NotFound("media"));
    }
    let (url, expires_at) = state.media.sign(principal.tenant_id, &link.sha256, link.name.as_deref());
    Ok(Json(FreshLink { url, expires_at }))
}

/// Signed downloads, at the root (`/media/...`), outside the API's headers and auth.
pub fn router() -> Router<AppState> {
    Router::new().route("/media/{tenant}/{sha256}", get(download))
}

/// Upload a file for an attachment (agents, supervisors, admins and API keys).
///
/// Send `multipart/form-data` with one field named `file`. The type is sniffed from the content;
/// executables, HTML, scripts and SVG with script are refused (415 `refused_media_type`). Files
/// over the tenant's limit (default 25 MB) are refused while they stream in (413). The answer's
/// fields `kind`, `url`, `name`, `mime` and `size` are an attachment for
/// `POST /conversations/{id}/messages`; `url` is a signed `GET /media/...` link.
#[utoipa::path(
    post, path = "/uploads", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored (or already stored: the same bytes are kept once)", body = UploadedAttachment),
        (status = 400, description = "`invalid_multipart`: not a multipart body with a `file` field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the file is over the tenant's limit", body = ErrorBody),
        (status = 415, description = "`refused_media_type`: a dangerous type (executable, HTML, script, SVG with script)", body = ErrorBody),
        (status = 422, description = "`invalid_body`: an empty file or an unexpected field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upload(State(state): State<AppState>, principal: Principal, request: Request) -> ApiResult<Response> {
    principal.require(&[Role::Admin, Role::Supervisor, Role::Agent])?;
    receive(&state, principal.tenant_id, request).await
}

/// Upload a file from the web widget (customers).
///
/// Authenticated like the widget's socket: the web inbox's id and public widget key, and the
/// customer's session token (`sbw_…`, from the socket's `session` event). The same rules as
/// `POST /uploads` apply; send the answer as an attachment of the socket's `message` event.
/// Callable from any origin (CORS).
#[utoipa::path(
    post, path = "/widget/uploads", tag = "media",
    params(
        ("x-widget-inbox" = i64, Header, description = "The web inbox's id"),
        ("x-widget-key" = String, Header, description = "The web inbox's widget key"),
        ("x-widget-session" = String, Header, description = "The customer's session token (`sbw_…`)"),
    ),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored (or already stored)", body = UploadedAttachment),
        (status = 400, description = "`invalid_multipart`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown inbox, wrong key or no session", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`refused_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
    ),
    security(())
)]
pub async fn widget_upload(State(state): State<AppState>, headers: HeaderMap, request: Request) -> ApiResult<Response> {
    let tenant = widget_customer_tenant(&state, &headers).await?;
    receive(&state, tenant, request).await
}

/// The tenant of a widget customer's request, checked as the widget socket checks its `auth`.
async fn widget_customer_tenant(state: &AppState, headers: &HeaderMap) -> ApiResult<TenantId> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let inbox_id: InboxId = header("x-widget-inbox").and_then(|v| v.parse().ok()).ok_or(ApiError::Unauthorized)?;
    let key = header("x-widget-key").unwrap_or_default();
    let session = header("x-widget-session").unwrap_or_default();
    if !session.starts_with("sbw_") || session.len() > 100 || key.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let (inbox, _) = state.store.get_inbox_unscoped(inbox_id).await?.ok_or(ApiError::Unauthorized)?;
    let expected = inbox.settings.get("widget_key").and_then(serde_json::Value::as_str).unwrap_or_default();
    if inbox.kind != ChannelKind::Web || expected.is_empty() || !constant_time_eq(expected.as_bytes(), key.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(inbox.tenant_id)
}

/// Streams the `file` field into the store and answers 201 with the attachment.
async fn receive(state: &AppState, tenant: TenantId, request: Request) -> ApiResult<Response> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request("invalid_multipart", format!("send multipart/form-data with a `file` field: {}", e.body_text())))?;
    let limit = state.media.limit_for(tenant);
    let field = match multipart.next_field().await.map_err(multipart_error)? {
        Some(field) if field.name() == Some(FILE_FIELD) => field,
        Some(field) => {
            let name = field.name().unwrap_or_default().chars().take(50).collect::<String>();
            return Err(ApiError::Unprocessable(format!("unexpected multipart field {name:?}: send one field named `file`")));
        }
        None => return Err(ApiError::Unprocessable("no `file` field in the multipart body".into())),
    };
    let name = field.file_name().map(clean_name);
    let body = field
        .map(move |chunk| {
            chunk.map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => MediaError::TooLarge { limit },
                _ => MediaError::Read(e.body_text()),
            })
        })
        .boxed();
    let stored = state.media.store.put(tenant.0, name.as_deref(), body, limit).await.map_err(media_error)?;
    metrics::counter!("switchboard_media_uploads_total", "deduplicated" => stored.deduplicated.to_string()).increment(1);
    Ok((StatusCode::CREATED, Json(state.media.uploaded(&stored, name))).into_response())
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request("invalid_multipart", e.body_text())
    }
}

fn media_error(e: MediaError) -> ApiError {
    match e {
        MediaError::TooLarge { .. } => ApiError::PayloadTooLarge,
        MediaError::Empty => ApiError::Unprocessable("the file is empty".into()),
        MediaError::Refused(r) => ApiError::RefusedMedia(r.to_string()),
        MediaError::NotFound => ApiError::NotFound("media"),
        MediaError::Read(m) => ApiError::bad_request("invalid_multipart", m),
        e @ (MediaError::Backend(_) | MediaError::Config(_)) => ApiError::Unavailable(e.to_string()),
    }
}

/// An answer to a download that cannot be served: `403 invalid_media_link` (not a link we
/// signed, or altered) or `410 media_link_expired` (ours, but past its expiry: ask for a fresh
/// one at `POST /api/v1/media/links`). Platforms fetching an expired link see the 410.
fn link_refused(e: UrlError) -> Response {
    let (status, code, message) = match e {
        UrlError::Expired => (StatusCode::GONE, "media_link_expired", "this media link has expired; request a fresh one (POST /api/v1/media/links)"),
        UrlError::BadSignature => (StatusCode::FORBIDDEN, "invalid_media_link", "this is not a valid media link"),
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, [(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))], Json(body)).into_response()
}

/// Serves one object to whoever holds a valid, unexpired signed URL (403 for a bad link, 410
/// for an expired one).
async fn download(
    State(state): State<AppState>,
    ApiPath((tenant, sha256)): ApiPath<(i64, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let Some(url) = parse_query(tenant, sha256, query.as_deref().unwrap_or("")) else {
        return Ok(link_refused(UrlError::BadSignature));
    };
    let now = unix_now();
    if let Err(e) = state.media.signer.verify(&url, now) {
        return Ok(link_refused(e));
    }
    let blob = state.media.store.get(url.tenant, &url.sha256).await.map_err(media_error)?;
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(CONTENT_TYPE, value(&blob.mime));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(blob.size));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Even a file a browser would render cannot run script or load anything.
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The content behind a key never changes; the link's lifetime bounds the caching.
    let max_age = url.expires_at.saturating_sub(now);
    headers.insert(CACHE_CONTROL, value(&format!("private, max-age={max_age}")));
    headers.insert(CONTENT_DISPOSITION, value(&disposition(blob.kind, url.name.as_deref())));
    Ok((StatusCode::OK, headers, Body::from_stream(blob.body)).into_response())
}

/// Images are shown inline; everything else is a download. The name is given both as an ASCII
/// fallback and percent-encoded UTF-8 (RFC 6266).
fn disposition(kind: MediaKind, name: Option<&str>) -> String {
    let disposition = if kind == MediaKind::Image { "inline" } else { "attachment" };
    let Some(name) = name else { return disposition.to_string() };
    let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    let ascii = ascii.replace(['"', '\\'], "_");
    let encoded: String = url_encode(name);
    format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_attachments_unless_images() {
        assert_eq!(disposition(MediaKind::Image, None), "inline");
        assert_eq!(
            disposition(MediaKind::File, Some("r\u{e9}sum\u{e9} \"1\".pdf")),
            "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.pdf"
        );
    }
}
