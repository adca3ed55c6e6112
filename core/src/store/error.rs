//! `StoreError`: why a durable store cannot be used.

/// Why a durable store cannot be used. The store file is left as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another socket, in this process or another, has the store open.
    #[error(
        "the store {path} is in use by another socket (in this process or another): a store has one owner at a time; close the other socket first, or give this one its own store name"
    )]
    InUse {
        /// The store file.
        path: String,
    },
    /// A newer version of steadyws wrote the store, in a format this one cannot read.
    #[error(
        "the store {path} was written by a newer steadyws (format {found}; this build reads up to {supported}): update the app, or point this socket at another store"
    )]
    NewerFormat {
        /// The store file.
        path: String,
        /// The file's format version.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The file cannot be opened or written (permissions, a missing directory, a full disk).
    #[error("the store {path} cannot be used: {detail}")]
    Failed {
        /// The store file (or directory).
        path: String,
        /// What the system reported, and what to check.
        detail: String,
    },
}
