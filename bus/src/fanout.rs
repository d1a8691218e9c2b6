//! Turns a `tokio::sync::broadcast` receiver into the `BoxStream` the [`Bus`](crate::Bus) port
//! hands out. Both implementations fan events out to local subscribers through a broadcast
//! channel, so the "what happens to a slow subscriber" policy lives here, once.
//!
//! The policy: a broadcast channel never blocks the sender. When a subscriber falls more than the
//! channel's capacity behind, its next `recv` reports `Lagged(n)` and resumes at the oldest event
//! still buffered. We log the loss, hand the subscriber a [`BusEvent::Resync`] in place of what it
//! missed, and keep streaming — bus events are notifications, and the clients behind that
//! subscriber resync from the database. The stream ends only when every
//! sender is gone, i.e. the bus itself was dropped.

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use switchboard_core::bus::BusEvent;

/// A stream of every event sent on `rx`'s channel from now on, skipping over lag.
/// `backend` only labels the warning.
pub(crate) fn subscriber_stream(
    rx: broadcast::Receiver<BusEvent>,
    backend: &'static str,
) -> BoxStream<'static, BusEvent> {
    stream::unfold(rx, move |mut rx| async move {
        match rx.recv().await {
            Ok(event) => Some((event, rx)),
            Err(RecvError::Lagged(missed)) => {
                // The publisher already moved on; the missed events are gone for this
                // subscriber only. Say so in the stream (its consumer tells the clients to
                // resync); the next item is the oldest event still buffered.
                tracing::warn!(backend, missed, "bus subscriber lagged; skipped events");
                Some((BusEvent::Resync { reason: format!("{missed} bus events skipped") }, rx))
            }
            Err(RecvError::Closed) => None,
        }
    })
    .boxed()
}
