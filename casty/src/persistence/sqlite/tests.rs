//! Unit tests of the row checks: the checksum, a damaged row, the head row.

use rusqlite::Connection;

use super::checksum;
use super::file::SCHEMA;
use super::read::{head, head_crc, verified};
use crate::persistence::journal::JournalError;

#[test]
fn the_checksum_covers_id_seq_manifest_and_payload() {
    let base = checksum("a", 1, "E", b"xy");
    assert_eq!(base, checksum("a", 1, "E", b"xy"));
    for other in [
        checksum("b", 1, "E", b"xy"),
        checksum("a", 2, "E", b"xy"),
        checksum("a", 1, "F", b"xy"),
        checksum("a", 1, "E", b"xz"),
        // Moving a byte between fields changes it too.
        checksum("a", 1, "Ex", b"y"),
    ] {
        assert_ne!(base, other);
    }
}

#[test]
fn a_damaged_row_is_corrupt() {
    let crc = checksum("a", 3, "E", b"payload");
    assert!(verified("a", 3, "E".into(), b"payload".to_vec(), crc).is_ok());
    let e = verified("a", 3, "E".into(), b"pay1oad".to_vec(), crc).unwrap_err();
    assert!(
        matches!(e, JournalError::Corrupt { seq: Some(3), .. }),
        "{e:?}"
    );
    let e = verified("a", -1, "E".into(), vec![], crc).unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
}

#[test]
fn a_head_row_is_checked() {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(SCHEMA).unwrap();
    assert_eq!(head(&c, "a").unwrap(), 0);
    c.execute("INSERT INTO heads VALUES ('a', 5, ?1)", [head_crc("a", 5)])
        .unwrap();
    assert_eq!(head(&c, "a").unwrap(), 5);
    c.execute("UPDATE heads SET seq = 6 WHERE persistence_id = 'a'", [])
        .unwrap();
    assert!(matches!(head(&c, "a"), Err(JournalError::Corrupt { .. })));
}
