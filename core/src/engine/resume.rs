//! The resume cursor: the last server message delivered to the app.
//!
//! It travels in every reconnect URL so the server can replay what was missed, and it orders
//! delivery: a sequenced message at or below the cursor has been delivered already.

/// How the resume cursor travels in the reconnect URL.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeConfig {
    /// Query parameter carrying the last delivered `seq`.
    pub seq_param: String,
    /// Query parameter carrying the last delivered `ts` (the seed's `?last_ts=`).
    pub ts_param: String,
    /// A cursor the app persisted earlier, to resume across process restarts.
    pub initial: ResumeCursor,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            seq_param: "last_seq".into(),
            ts_param: "last_ts".into(),
            initial: ResumeCursor::default(),
        }
    }
}

/// Position in the server's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeCursor {
    /// `seq` of the last delivered message.
    pub last_seq: Option<u64>,
    /// `ts` (server milliseconds) of the last delivered message.
    pub last_ts: Option<u64>,
}

impl ResumeCursor {
    /// Whether a message with this `seq` is new. Unsequenced messages always are (dedup decides).
    pub fn admits(&self, seq: Option<u64>) -> bool {
        match (seq, self.last_seq) {
            (Some(seq), Some(last)) => seq > last,
            _ => true,
        }
    }

    /// Start from the server's current position if there is no cursor yet, so that what is
    /// published while this client is offline — before it ever received a message — is replayed.
    pub fn adopt_if_unset(&mut self, seq: Option<u64>, ts: Option<u64>) {
        if self.last_seq.is_none() && self.last_ts.is_none() {
            self.last_seq = seq;
            self.last_ts = ts;
        }
    }

    /// Move past a delivered message.
    pub fn advance(&mut self, seq: Option<u64>, ts: Option<u64>) {
        if seq.is_some() {
            self.last_seq = seq;
        }
        if let Some(ts) = ts {
            self.last_ts = Some(self.last_ts.map_or(ts, |last| last.max(ts)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_what_is_past_the_cursor() {
        let mut cursor = ResumeCursor::default();
        assert!(cursor.admits(Some(0)) && cursor.admits(None));
        cursor.advance(Some(5), Some(100));
        assert!(!cursor.admits(Some(5)) && !cursor.admits(Some(3)));
        assert!(cursor.admits(Some(6)) && cursor.admits(None));
        cursor.advance(None, Some(90));
        assert_eq!(
            cursor,
            ResumeCursor {
                last_seq: Some(5),
                last_ts: Some(100)
            }
        );
    }
}
