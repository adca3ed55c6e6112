//! Stand-in for the store file in builds without the `store` feature: opening refuses, saying
//! how to get the feature.

use super::{Change, Recovery, Snapshot, StoreConfig, StoreError};

/// Never constructed.
pub enum StoreFile {}

/// What opening found (never, here).
pub struct Opened {
    pub file: StoreFile,
    pub snapshot: Snapshot,
    pub recovery: Option<Recovery>,
}

fn refused(config: &StoreConfig) -> StoreError {
    StoreError::Failed {
        path: config.path().display().to_string(),
        detail: "this build of steadyws has no store: enable the `bundled-sqlite` cargo feature (the default), or `store` to use the system's SQLite".into(),
    }
}

impl StoreFile {
    pub fn open(config: &StoreConfig, _seen_limit: usize) -> Result<Opened, StoreError> {
        Err(refused(config))
    }

    pub fn reopen(config: &StoreConfig, _seen_limit: usize) -> Result<StoreFile, StoreError> {
        Err(refused(config))
    }

    pub fn apply(&mut self, _changes: &[Change]) -> Result<(), String> {
        match *self {}
    }
}
