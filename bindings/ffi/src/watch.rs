//! `StatusWatch`: the state and outbox length followed from the side, for the platform
//! adapters (a background task held until the outbox is acknowledged) and connection
//! indicators. No thread and no callback: the host awaits `changed` in its own task and stops
//! by cancelling that task and dropping the watch.

use std::sync::Arc;

use crate::event::SocketState;
use crate::wait::{WaitCancellation, unless_cancelled};

/// The state, and how many messages wait for their acknowledgement.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SocketStatus {
    /// The socket's state.
    pub state: SocketState,
    /// Messages not acknowledged yet.
    pub outbox_len: u64,
}

/// One watch of a socket's status ([`NativeSocket::watch`](crate::NativeSocket::watch)).
#[derive(uniffi::Object)]
pub struct StatusWatch {
    watch: tokio::sync::Mutex<steadyws::StatusWatch>,
}

impl StatusWatch {
    pub(crate) fn new(watch: steadyws::StatusWatch) -> Arc<Self> {
        Arc::new(StatusWatch {
            watch: tokio::sync::Mutex::new(watch),
        })
    }
}

#[uniffi::export]
impl StatusWatch {
    /// The status now on the first call, then each change (a watcher that falls behind gets
    /// the latest). `None` once the socket is closed (after `Closed` was seen), or when
    /// `cancellation` is cancelled.
    #[uniffi::method(default(cancellation = None))]
    pub async fn changed(
        &self,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Option<SocketStatus> {
        let mut watch = self.watch.lock().await;
        let status = unless_cancelled(cancellation, watch.changed()).await??;
        Some(SocketStatus {
            state: status.state.into(),
            outbox_len: status.outbox_len as u64,
        })
    }
}
