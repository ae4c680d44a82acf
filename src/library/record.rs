//! The metadata record persisted per file (`user.spis.meta` or the state-dir cache).
//!
//! It stores what was extracted together with the size and mtime it was extracted from and a
//! format version. The rule: a record is trusted only while all three still match the file, so a
//! changed file or a newer extractor always re-reads the header.

use serde::{Deserialize, Serialize};

use super::probe::Probe;

/// Bump when extraction improves, so old records are re-extracted once.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub probe: Probe,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serializes")
    }

    /// The probe stored in `bytes`, if it is a current record for a file of this size and mtime.
    pub fn decode_valid(bytes: &[u8], size: u64, mtime_ns: i64) -> Option<Probe> {
        let r: Record = serde_json::from_slice(bytes).ok()?;
        (r.v == VERSION && r.size == size && r.mtime_ns == mtime_ns).then_some(r.probe)
    }
}
