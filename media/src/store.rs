//! The blob store: one trait, one implementation over the `object_store` crate for local disk,
//! any S3-compatible service, and memory.
//!
//! Objects are content-addressed per tenant: `t/{tenant}/{sha256}`. The same bytes uploaded
//! twice by one tenant are stored once; two tenants never share an object, so one tenant's key
//! says nothing about another's storage.
//!
//! An upload is read chunk by chunk, counted against the limit as it arrives (the read stops at
//! the first byte over it), hashed, and held in memory only up to the limit: the digest, which
//! names the object, is known only at the end. Then the type is sniffed from the bytes and the
//! object written unless it already exists. Two concurrent uploads of the same bytes may both
//! write; they write identical content, so the last write changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

use crate::signing::is_digest;
use crate::sniff::{sniff, MediaKind, Refusal, SNIFF_LEN};

/// An upload's bytes as they arrive. The producer reports its own failures as
/// [`MediaError::Read`] (or [`MediaError::TooLarge`] when an outer limit stopped it).
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, MediaError>>;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("no such media")]
    NotFound,
    #[error("reading the upload failed: {0}")]
    Read(String),
    #[error("media storage failed: {0}")]
    Backend(#[source] object_store::Error),
    #[error("media storage configuration: {0}")]
    Config(String),
}

impl From<object_store::Error> for MediaError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => MediaError::NotFound,
            other => MediaError::Backend(other),
        }
    }
}

/// What an upload became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub tenant: i64,
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the content.
    pub mime: String,
    pub kind: MediaKind,
    /// True when this tenant already had these bytes (nothing was written).
    pub deduplicated: bool,
}

/// A stored object being read.
pub struct Blob {
    pub size: u64,
    /// Sniffed again from the stored bytes (the same bytes always give the same answer).
    pub mime: String,
    pub kind: MediaKind,
    pub body: BoxStream<'static, Result<Bytes, MediaError>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("size", &self.size).field("mime", &self.mime).finish_non_exhaustive()
    }
}

/// Where a tenant's media lives. Implementations must keep tenants apart: `get(t, sha)` finds
/// only what `put(t, ..)` stored.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores an upload of at most `limit` bytes; `name` (the client's file name) is used only
    /// to refuse dangerous extensions, never to decide the type.
    async fn put(&self, tenant: i64, name: Option<&str>, body: ByteStream<'_>, limit: u64) -> Result<StoredBlob, MediaError>;
    /// Opens a tenant's object for reading; [`MediaError::NotFound`] for anything else.
    async fn get(&self, tenant: i64, sha256: &str) -> Result<Blob, MediaError>;
    /// Whether the tenant holds this object.
    async fn exists(&self, tenant: i64, sha256: &str) -> Result<bool, MediaError>;
    /// `local`, `s3` or `memory`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
}

/// How to reach the backend.
#[derive(Clone)]
pub enum BackendConfig {
    /// Files below this directory (created if missing).
    Local { path: std::path::PathBuf },
    /// An S3-compatible service.
    S3(S3Config),
    /// In this process only (tests, throwaway nodes).
    Memory,
}

#[derive(Clone)]
pub struct S3Config {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`; empty: AWS.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, moto, ...).
    pub path_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// Opens the configured backend.
pub fn open(config: &BackendConfig) -> Result<Arc<dyn BlobStore>, MediaError> {
    let (store, backend): (Arc<dyn ObjectStore>, &'static str) = match config {
        BackendConfig::Local { path } => {
            std::fs::create_dir_all(path)
                .map_err(|e| MediaError::Config(format!("creating media directory {}: {e}", path.display())))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(path)?.with_automatic_cleanup(true);
            (Arc::new(fs), "local")
        }
        BackendConfig::S3(s3) => {
            let mut builder = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key)
                .with_virtual_hosted_style_request(!s3.path_style);
            if let Some(endpoint) = s3.endpoint.as_deref().filter(|e| !e.is_empty()) {
                builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
            }
            (Arc::new(builder.build()?), "s3")
        }
        BackendConfig::Memory => (Arc::new(object_store::memory::InMemory::new()), "memory"),
    };
    Ok(Arc::new(ObjectBlobStore { store, backend }))
}

/// [`BlobStore`] over any `object_store` backend.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    backend: &'static str,
}

/// The object key of a tenant's blob.
pub fn object_key(tenant: i64, sha256: &str) -> Path {
    Path::from(format!("t/{tenant}/{sha256}"))
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    #[tracing::instrument(skip_all, fields(tenant, backend = self.backend))]
    async fn put(&self, tenant: i64, name: Option<&str>, mut body: ByteStream<'_>, limit: u64) -> Result<StoredBlob, MediaError> {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut size: u64 = 0;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(MediaError::TooLarge { limit });
            }
            hasher.update(&chunk);
            chunks.push(chunk);
        }
        if size == 0 {
            return Err(MediaError::Empty);
        }
        let sha256 = hex::encode(hasher.finalize());
        let sniffed = sniff_chunks(&chunks, name)?;
        let key = object_key(tenant, &sha256);
        let deduplicated = match self.store.head(&key).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !deduplicated {
            self.store.put(&key, PutPayload::from_iter(chunks)).await?;
        }
        tracing::debug!(%sha256, size, mime = %sniffed.mime, deduplicated, "media stored");
        Ok(StoredBlob { tenant, sha256, size, mime: sniffed.mime, kind: sniffed.kind, deduplicated })
    }

    #[tracing::instrument(skip_all, fields(tenant, backend = self.backend))]
    async fn get(&self, tenant: i64, sha256: &str) -> Result<Blob, MediaError> {
        if !is_digest(sha256) {
            return Err(MediaError::NotFound);
        }
        let result = self.store.get(&object_key(tenant, sha256)).await?;
        let size = result.meta.size;
        let mut stream = result.into_stream();
        // Read just enough to sniff, then hand those chunks back in front of the rest.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0;
        while head_len < SNIFF_LEN {
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    head_len += chunk.len();
                    head.push(chunk);
                }
                None => break,
            }
        }
        // Stored objects passed the refusal checks on the way in; only the type is wanted.
        let prefix: Vec<u8> = head.concat();
        let (mime, kind) = match sniff(&prefix[..prefix.len().min(SNIFF_LEN)], None) {
            Ok(s) => (s.mime, s.kind),
            Err(_) => ("application/octet-stream".to_string(), MediaKind::File),
        };
        let rest = stream.map(|r| r.map_err(MediaError::from));
        let body = futures::stream::iter(head.into_iter().map(Ok)).chain(rest).boxed();
        Ok(Blob { size, mime, kind, body })
    }

    async fn exists(&self, tenant: i64, sha256: &str) -> Result<bool, MediaError> {
        if !is_digest(sha256) {
            return Ok(false);
        }
        match self.store.head(&object_key(tenant, sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn backend(&self) -> &'static str {
        self.backend
    }
}

/// Sniffs the upload: magic numbers from the first bytes; the text checks (scripts in SVG or
/// HTML) over the whole file when it turns out to be text.
fn sniff_chunks(chunks: &[Bytes], name: Option<&str>) -> Result<crate::sniff::Sniffed, Refusal> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    for c in chunks {
        if head.len() >= SNIFF_LEN {
            break;
        }
        head.extend_from_slice(&c[..c.len().min(SNIFF_LEN - head.len())]);
    }
    let first = sniff(&head, name)?;
    let text = first.mime.starts_with("text/") || first.mime == "image/svg+xml";
    let total: usize = chunks.iter().map(Bytes::len).sum();
    if text && total > head.len() {
        return sniff(&chunks.concat(), name);
    }
    Ok(first)
}
