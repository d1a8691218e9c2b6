//! The media store's conformance suite: every check is written once against `Arc<dyn
//! BlobStore>` and run on local disk (a scratch directory) and on a real S3-compatible server
//! (`SWITCHBOARD_TEST_S3_ENDPOINT`, default `http://127.0.0.1:9000`, which `scripts/services.sh`
//! starts with moto). An unreachable S3 server skips the S3 half with a note, unless
//! `SWITCHBOARD_TEST_REQUIRE_ALL=1` (CI), which makes it a failure.

#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md)

/// Generates, for each named `async fn check(store: Arc<dyn BlobStore>)` of the calling module,
/// `<module>::local::<check>` and `<module>::s3::<check>`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        conformance!(@backend local, Local, $($check),*);
        conformance!(@backend s3, S3, $($check),*);
    };
    (@backend $module:ident, $kind:ident, $($check:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::harness::run(crate::harness::Kind::$kind, |store| Box::pin(super::$check(store))).await;
                }
            )*
        }
    };
}

mod harness;

mod conformance;
