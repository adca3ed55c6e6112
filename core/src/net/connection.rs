//! One transport's task: dial, then shuttle frames between the socket and the pump until either
//! side ends it (reading it shares with the app's wait, see [`Reading`]). It reports what
//! happened and never decides what to do about it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::dial::{self, TransportOptions};
use super::inbox::Inbox;
use super::reading::{Batch, Ended, Reading};
use super::write_queue::WriteQueue;
use crate::engine::{ConnId, ConnectionError, Frame};

/// What a transport reports.
#[derive(Debug)]
pub enum Report {
    /// The upgrade completed; the app may read the socket through this while it waits.
    Opened(Arc<Reading>),
    /// The dial failed, or the open connection broke.
    Failed(ConnectionError),
    /// The peer closed (`None`: without a close frame).
    Closed(Option<u16>, String),
    /// Frames arrived (all that were ready: one step, one wake-up of the app for them).
    Frames(Vec<Frame>),
    /// The writer took raw-mode messages from the write queue (collect them there).
    Written,
}

/// Where a transport reports to (the pump), and the inbox whose room paces its reading. The
/// task knows nothing else of the socket.
pub trait Reports: Send + Sync + 'static {
    /// Transport `conn`'s news.
    fn report(self: &Arc<Self>, conn: ConnId, report: Report);
    /// Transport `conn` stopped (`true`) or resumed (`false`) reading because the app is behind.
    fn reading_paused(self: &Arc<Self>, conn: ConnId, paused: bool);
    /// Transport `conn` could not write (`true`: the send buffer is full) or wrote again.
    fn writing_blocked(self: &Arc<Self>, conn: ConnId, blocked: bool);
    /// The events waiting for the app.
    fn inbox(&self) -> &Inbox;
    /// What a read took: its frames, then how the transport ended, if it did.
    fn report_batch(self: &Arc<Self>, conn: ConnId, batch: Batch) {
        if !batch.frames.is_empty() {
            self.report(conn, Report::Frames(batch.frames));
        }
        match batch.end {
            Some(Ended::Closed(code, reason)) => self.report(conn, Report::Closed(code, reason)),
            Some(Ended::Failed(error)) => self.report(conn, Report::Failed(error)),
            None => {}
        }
    }
}

/// Longest wait for a close frame to be written and answered before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Run a transport task so that a panic in it (in code it calls: an app's headers provider, a
/// platform's certificate verifier) becomes a failure the engine hears about, instead of a task
/// that vanishes while the engine waits for its connect timeout again and again.
pub async fn guarded<R: Reports>(conn: ConnId, shared: Arc<R>, task: impl Future<Output = ()>) {
    use futures_util::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        log::error!("transport {} panicked: {what}", conn.0);
        shared.report(conn, Report::Failed(panicked(&what)));
    }
}

/// The error a panic in a transport task is reported as.
fn panicked(what: &str) -> ConnectionError {
    // rustls-platform-verifier panics this way on Android when it was never initialised.
    if what.contains("rustls-platform-verifier to be initialized") {
        return ConnectionError::Tls {
            detail: "the platform certificate verifier was not initialised: on Android it needs the app's Context before the first wss connection (see docs/troubleshooting.md, TLS failures)".into(),
        };
    }
    ConnectionError::Io {
        detail: format!(
            "the connection task panicked ({what}); if it came from your headers provider, fix it there, otherwise please report it"
        ),
    }
}

/// Run transport `conn` to completion.
pub async fn run<R: Reports>(
    conn: ConnId,
    url: String,
    refresh_credentials: bool,
    options: Arc<TransportOptions>,
    queue: Arc<WriteQueue>,
    shared: Arc<R>,
) {
    let report = |r: Report| shared.report(conn, r);
    let ws = match dial::dial(&url, &options, refresh_credentials).await {
        Ok(ws) => ws,
        Err(err) => return report(Report::Failed(err)),
    };
    let (sink, stream) = ws.split();
    let reading = Reading::new(conn, stream);
    report(Report::Opened(Arc::clone(&reading)));
    let reader = async {
        loop {
            // The app is behind: stop reading so TCP pushes back on the server, until it takes
            // some events.
            if shared.inbox().is_full() {
                shared.reading_paused(conn, true);
                shared.inbox().room().await;
                shared.reading_paused(conn, false);
            }
            // One batch per step: the inbox is checked between batches, so they bound what
            // reading adds past a full inbox.
            let reported = std::future::poll_fn(|cx| {
                reading.poll_for_task(cx, |batch| shared.report_batch(conn, batch))
            });
            if reported.await.is_none() {
                return;
            }
        }
    };
    queue.attach(Box::pin(sink));
    let writer = async {
        loop {
            let blocked = |blocked| shared.writing_blocked(conn, blocked);
            let written = unless_blocked(std::future::poll_fn(|cx| queue.poll_write(cx)), blocked);
            if let Err(err) = written.await {
                return report(Report::Failed(dial::handshake_error(&err)));
            }
            if let Some((code, reason, mut sink)) = queue.take_close() {
                let close = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ =
                    tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(close)))).await;
                break;
            }
            // Once per burst, and never in envelope mode (acks settle those messages).
            if queue.has_written() {
                report(Report::Written);
            }
            queue.changed().await;
        }
        // Either the pump dropped this transport or asked to close it: give the peer a moment
        // to answer the close, then drop the socket.
        tokio::time::sleep(CLOSE_GRACE).await;
        report(Report::Closed(
            None,
            "no close frame from the server".into(),
        ));
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}

/// Await a write, telling `blocked(true)` if it cannot complete at once (the socket's send
/// buffer is full) and `blocked(false)` when it does: a write is then waiting on the peer.
async fn unless_blocked<T>(write: impl Future<Output = T>, blocked: impl Fn(bool)) -> T {
    let mut write = std::pin::pin!(write);
    if let Some(done) = futures_util::FutureExt::now_or_never(write.as_mut()) {
        return done;
    }
    blocked(true);
    let done = write.await;
    blocked(false);
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uninitialised_android_verifier_is_a_tls_error_naming_what_is_missing() {
        // The panic message of rustls-platform-verifier 0.7 (`android::get_runtime`).
        let error = panicked("Expect rustls-platform-verifier to be initialized");
        let ConnectionError::Tls { detail } = &error else {
            panic!("{error:?}");
        };
        assert!(
            detail.contains("not initialised") && detail.contains("Context"),
            "{detail}"
        );
        assert!(matches!(
            panicked("index out of bounds"),
            ConnectionError::Io { detail } if detail.contains("panicked (index out of bounds)")
        ));
    }
}
