//! CBOR encoding of events and snapshots (ciborium), with errors that name the persistence id.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::persistence::journal::JournalError;

pub(crate) fn encode<T: Serialize>(
    value: &T,
    persistence_id: &str,
    what: &'static str,
) -> Result<Vec<u8>, JournalError> {
    let mut buf = Vec::with_capacity(64);
    ciborium::into_writer(value, &mut buf).map_err(|e| JournalError::Encode {
        persistence_id: persistence_id.to_string(),
        what,
        reason: e.to_string(),
    })?;
    Ok(buf)
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    persistence_id: &str,
    what: &'static str,
    seq: u64,
) -> Result<T, JournalError> {
    ciborium::from_reader(bytes).map_err(|e| JournalError::Decode {
        persistence_id: persistence_id.to_string(),
        what,
        seq,
        reason: e.to_string(),
    })
}
