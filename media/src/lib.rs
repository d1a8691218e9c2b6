//! Switchboard's media store: attachments' bytes, kept apart from the SQL database.
//!
//! - [`store`]: the [`BlobStore`] trait and its implementation over the `object_store` crate —
//!   local disk (the embedded default), any S3-compatible service, or memory. Objects are
//!   content-addressed per tenant (`t/{tenant}/{sha256}`) and size-limited while they stream in.
//! - [`sniff`]: the type decided from the bytes, and the refusal of dangerous kinds.
//! - [`signing`]: signed, expiring download URLs served by our own server for every backend.
//!
//! This crate knows nothing of HTTP, tenants' rows or messages: the server checks who may
//! upload and turns a [`StoredBlob`] into a message attachment.
#![forbid(unsafe_code)]

pub mod signing;
pub mod sniff;
pub mod store;

pub use signing::{parse_media_url, MediaUrl, UrlError, UrlSigner};
pub use sniff::{MediaKind, Refusal};
pub use store::{open, BackendConfig, Blob, BlobStore, ByteStream, MediaError, S3Config, StoredBlob};
