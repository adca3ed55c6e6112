//! The process-wide tokio runtime used when the caller is not inside one: two small named worker
//! threads, enough for many sockets on a phone.

use std::sync::LazyLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("steadyws")
        .thread_stack_size(512 * 1024)
        .enable_all()
        .build()
        .expect("the steadyws runtime can be built (threads and timers are available)")
});

/// The caller's runtime if there is one, else the shared steadyws runtime.
pub fn handle() -> Handle {
    Handle::try_current().unwrap_or_else(|_| RUNTIME.handle().clone())
}
