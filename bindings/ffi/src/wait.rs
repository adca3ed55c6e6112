//! Ending a native wait from the host: `WaitCancellation`. UniFFI's Swift async calls cannot be
//! cancelled (a cancelled Swift task keeps awaiting the Rust future until it completes), so a
//! host that stops waiting hands the wait a token and cancels it; the future then completes at
//! once instead of living on until the ack, the open or the close.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// Ends the native waits it was given (`send_and_wait`, `wait_acked`, `wait_open`,
/// `next_events`, `StatusWatch::changed`) when `cancel` is called, before or during the wait. A cancelled wait
/// fails with the kind `Cancelled`: the wait ended, nothing else did (the message stays queued,
/// the socket goes on connecting). One token can serve any number of waits; cancelling is final.
#[derive(uniffi::Object)]
pub struct WaitCancellation {
    cancelled: watch::Sender<bool>,
}

#[uniffi::export]
impl WaitCancellation {
    /// A token not cancelled yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(WaitCancellation {
            cancelled: watch::Sender::new(false),
        })
    }

    /// End every wait given this token, now and later.
    pub fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }
}

/// `wait`'s output, or `None` once `cancellation` (if any) is cancelled.
pub(crate) async fn unless_cancelled<T>(
    cancellation: Option<Arc<WaitCancellation>>,
    wait: impl Future<Output = T>,
) -> Option<T> {
    let Some(cancellation) = cancellation else {
        return Some(wait.await);
    };
    let mut cancelled = cancellation.cancelled.subscribe();
    tokio::select! {
        biased;
        _ = cancelled.wait_for(|cancelled| *cancelled) => None,
        output = wait => Some(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_token_cancelled_before_the_wait_ends_it_at_once() {
        let token = WaitCancellation::new();
        token.cancel();
        let answer = block_on(unless_cancelled(Some(token), std::future::pending::<()>()));
        assert_eq!(answer, None);
    }

    #[test]
    fn cancelling_during_the_wait_ends_it() {
        let token = WaitCancellation::new();
        let canceller = Arc::clone(&token);
        let answer = block_on(async move {
            let wait = unless_cancelled(Some(token), std::future::pending::<()>());
            let cancel = async {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                canceller.cancel();
                std::future::pending::<()>().await
            };
            tokio::select! {
                answer = wait => answer,
                _ = cancel => unreachable!("the cancel branch never completes"),
            }
        });
        assert_eq!(answer, None);
    }

    #[test]
    fn without_a_token_or_uncancelled_the_wait_answers() {
        assert_eq!(block_on(unless_cancelled(None, async { 7 })), Some(7));
        let token = WaitCancellation::new();
        assert_eq!(
            block_on(unless_cancelled(Some(token), async { 8 })),
            Some(8)
        );
    }
}
