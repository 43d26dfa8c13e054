//! The checks recovery makes on what it reads from the journal (P5): a snapshot must hold the
//! entity's state type; each replayed event must directly follow the last one applied (no gap, no
//! duplicate) and be of the entity's event type. A short page ends the replay. These are pure
//! functions of what was read, so the entity's recovery loop only reads, decodes and folds.

use crate::persistence::journal::{JournalError, StoredEvent, StoredSnapshot};

/// Checks that `snapshot` holds the state type the entity reads (`expected` manifest).
pub(crate) fn check_snapshot(
    persistence_id: &str,
    snapshot: &StoredSnapshot,
    expected: &str,
) -> Result<(), JournalError> {
    if snapshot.manifest != expected {
        return Err(JournalError::UnknownManifest {
            persistence_id: persistence_id.to_string(),
            seq: snapshot.seq,
            found: snapshot.manifest.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Checks that a replayed `event` comes right after `last_seq` (the snapshot's or the last
/// replayed event's sequence number, 0 for none) and is of the event type the entity reads
/// (`expected` manifest). A gap or a duplicate is reported before a wrong manifest.
pub(crate) fn check_event(
    persistence_id: &str,
    last_seq: u64,
    event: &StoredEvent,
    expected: &str,
) -> Result<(), JournalError> {
    if event.seq != last_seq + 1 {
        return Err(JournalError::Corrupt {
            persistence_id: Some(persistence_id.to_string()),
            seq: Some(event.seq),
            reason: format!(
                "expected seq {} next; the log has a gap or a duplicate",
                last_seq + 1
            ),
        });
    }
    if event.manifest != expected {
        return Err(JournalError::UnknownManifest {
            persistence_id: persistence_id.to_string(),
            seq: event.seq,
            found: event.manifest.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Whether a page of `len` events, read with a page size of `page`, ends the log: only a short
/// page does (a full one may be followed by more).
pub(crate) fn is_last_page(len: usize, page: usize) -> bool {
    len < page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, manifest: &'static str) -> StoredEvent {
        StoredEvent::new(seq, manifest, vec![])
    }

    #[test]
    fn a_snapshot_of_the_entitys_state_type_passes() {
        let s = StoredSnapshot::new(7, "bank.Account", vec![]);
        assert_eq!(check_snapshot("acc-1", &s, "bank.Account"), Ok(()));
    }

    #[test]
    fn a_snapshot_of_another_type_is_an_unknown_manifest_at_its_seq() {
        let s = StoredSnapshot::new(7, "bank.Old", vec![]);
        assert_eq!(
            check_snapshot("acc-1", &s, "bank.Account"),
            Err(JournalError::UnknownManifest {
                persistence_id: "acc-1".into(),
                seq: 7,
                found: "bank.Old".into(),
                expected: "bank.Account".into(),
            })
        );
    }

    #[test]
    fn the_event_right_after_the_last_one_passes() {
        assert_eq!(check_event("acc-1", 0, &event(1, "E"), "E"), Ok(()));
        // Right after a snapshot at 100.
        assert_eq!(check_event("acc-1", 100, &event(101, "E"), "E"), Ok(()));
    }

    #[test]
    fn a_gap_or_a_duplicate_is_corruption_at_the_events_seq() {
        let corrupt = |found: u64, next: u64| JournalError::Corrupt {
            persistence_id: Some("acc-1".into()),
            seq: Some(found),
            reason: format!("expected seq {next} next; the log has a gap or a duplicate"),
        };
        assert_eq!(
            check_event("acc-1", 4, &event(6, "E"), "E"),
            Err(corrupt(6, 5))
        );
        assert_eq!(
            check_event("acc-1", 4, &event(4, "E"), "E"),
            Err(corrupt(4, 5))
        );
        // An event the snapshot already covers.
        assert_eq!(
            check_event("acc-1", 100, &event(100, "E"), "E"),
            Err(corrupt(100, 101))
        );
        // The sequence is checked before the manifest.
        assert_eq!(
            check_event("acc-1", 4, &event(6, "Other"), "E"),
            Err(corrupt(6, 5))
        );
    }

    #[test]
    fn an_event_of_another_type_is_an_unknown_manifest_at_its_seq() {
        assert_eq!(
            check_event("acc-1", 4, &event(5, "Other"), "E"),
            Err(JournalError::UnknownManifest {
                persistence_id: "acc-1".into(),
                seq: 5,
                found: "Other".into(),
                expected: "E".into(),
            })
        );
    }

    #[test]
    fn only_a_short_page_ends_the_replay() {
        assert!(is_last_page(0, 1024));
        assert!(is_last_page(1023, 1024));
        assert!(!is_last_page(1024, 1024));
        assert!(is_last_page(0, 1));
        assert!(!is_last_page(1, 1));
    }
}
