//! The receiver's side of compact envelopes: the recipients a peer named on one inbound
//! connection.

use crate::remote::frame;

use super::inbound::DeliveryCache;

/// The recipients a peer named on one inbound connection (`Define`), for its compact envelopes,
/// and what the handler cached for each. Bounded in entries and bytes, and grown only near its
/// end, so a peer cannot make it large; a `Define` that would is malformed.
#[derive(Default)]
pub(super) struct CompactTable {
    names: Vec<Option<(String, DeliveryCache)>>,
    /// Bytes of the paths in `names`.
    bytes: usize,
}

impl CompactTable {
    /// Names `id` (again, if it was named before).
    pub(super) fn define(&mut self, id: u32, path: String) -> Result<(), String> {
        let i = id as usize;
        if i >= frame::MAX_COMPACT_NAMES {
            return Err(format!(
                "recipient id {id} beyond the limit of {} names",
                frame::MAX_COMPACT_NAMES
            ));
        }
        if i > self.names.len() + frame::MAX_DEFINE_GAP {
            return Err(format!(
                "recipient id {id} far past the {} names defined",
                self.names.len()
            ));
        }
        let old = self
            .names
            .get(i)
            .and_then(|n| n.as_ref())
            .map_or(0, |(p, _)| p.len());
        let bytes = self.bytes - old + path.len();
        if bytes > frame::MAX_COMPACT_NAME_BYTES {
            return Err(format!(
                "recipient names beyond the limit of {} bytes",
                frame::MAX_COMPACT_NAME_BYTES
            ));
        }
        if self.names.len() <= i {
            self.names.resize_with(i + 1, || None);
        }
        self.names[i] = Some((path, None));
        self.bytes = bytes;
        Ok(())
    }

    /// The recipient named `id` and the handler's cache for it.
    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut (String, DeliveryCache)> {
        self.names.get_mut(id as usize)?.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A `Define` that would take the table past its bounds, or far past its end, is refused and
    // leaves it as it was.
    #[test]
    fn the_compact_table_refuses_growth_past_its_bounds() {
        let mut t = CompactTable::default();
        t.define(0, "/user/a".into()).unwrap();
        assert!(t.define(1_000_000, "/x".into()).is_err());
        assert!(t.define(u32::MAX, "/x".into()).is_err());
        assert!(t
            .define((frame::MAX_DEFINE_GAP + 2) as u32, "/x".into())
            .is_err());
        assert_eq!((t.names.len(), t.bytes), (1, 7));
        // A small gap (a lost `Define`) is fine.
        t.define((frame::MAX_DEFINE_GAP + 1) as u32, "/b".into())
            .unwrap();
        assert_eq!((t.names.len(), t.bytes), (frame::MAX_DEFINE_GAP + 2, 9));
        assert!(t.get_mut(1).is_none());
        assert_eq!(t.get_mut(0).unwrap().0, "/user/a");
        // Redefining replaces, and counts only the new name.
        t.define(0, "/c".into()).unwrap();
        assert_eq!(t.bytes, 4);

        let mut t = CompactTable::default();
        for id in 0..frame::MAX_COMPACT_NAMES as u32 {
            t.define(id, "/".into()).unwrap();
        }
        let full = frame::MAX_COMPACT_NAMES as u32;
        assert!(t.define(full, "/".into()).is_err());
        assert_eq!(t.names.len(), frame::MAX_COMPACT_NAMES);

        let mut t = CompactTable::default();
        let big = "/".repeat(frame::MAX_COMPACT_NAME_BYTES / 4);
        for id in 0..4 {
            t.define(id, big.clone()).unwrap();
        }
        assert!(t.define(4, "/".into()).is_err());
        assert_eq!((t.names.len(), t.bytes), (4, frame::MAX_COMPACT_NAME_BYTES));
    }

    // What the handler caches for a recipient stays with it until the recipient is named again.
    #[test]
    fn a_redefined_recipient_loses_its_cache() {
        let mut t = CompactTable::default();
        t.define(0, "/user/a".into()).unwrap();
        t.get_mut(0).unwrap().1 = Some(Box::new(7u32));
        let cached = |t: &mut CompactTable| {
            t.get_mut(0)
                .and_then(|(_, c)| c.as_ref()?.downcast_ref::<u32>().copied())
        };
        assert_eq!(cached(&mut t), Some(7));
        t.define(0, "/user/b".into()).unwrap();
        assert_eq!(t.get_mut(0).unwrap().0, "/user/b");
        assert_eq!(cached(&mut t), None);
    }
}
