//! The sender's side of compact envelopes: the numbers an association gives its recipients.
//!
//! A recipient (a path with its message manifest) named once with a `Define` frame is then sent
//! by number. Numbers are dense (0, 1, 2, ...) and never change while the association lives; the
//! table is bounded like the receiver's ([`frame::MAX_COMPACT_NAMES`] names,
//! [`frame::MAX_COMPACT_NAME_BYTES`] bytes of paths), and a recipient past the bounds travels
//! with its full path instead. A new connection starts with an empty table on the other side, so
//! every name is sent again, in number order, before anything else ([`Naming::replay`]).
//!
//! This is a pure table, without I/O or locks: the association keeps it in its queue and writes
//! the frames it asks for.

use std::collections::HashMap;

use crate::remote::frame;

/// What [`Naming::define`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Defined {
    /// The recipient already had this number.
    Existing(u32),
    /// The recipient got this number now: its `Define` must be sent before any use.
    New(u32),
    /// The table is full: the recipient goes by its full path.
    Full,
}

/// An association's recipient names, by `(path, manifest)` and by number.
#[derive(Debug, Default)]
pub(super) struct Naming {
    ids: HashMap<(String, String), u32>,
    /// Indexed by number.
    names: Vec<(String, String)>,
    /// Bytes of the paths in `names`, bounded by [`frame::MAX_COMPACT_NAME_BYTES`].
    bytes: usize,
}

// Every number below the bound fits a `u32`.
const _: () = assert!(frame::MAX_COMPACT_NAMES <= u32::MAX as usize);

impl Naming {
    /// The number of `path` with `manifest`, giving it the next one if it has none and the table
    /// has room.
    pub(super) fn define(&mut self, path: &str, manifest: &str) -> Defined {
        let key = (path.to_string(), manifest.to_string());
        if let Some(id) = self.ids.get(&key) {
            return Defined::Existing(*id);
        }
        if self.names.len() >= frame::MAX_COMPACT_NAMES
            || self.bytes + path.len() > frame::MAX_COMPACT_NAME_BYTES
        {
            return Defined::Full;
        }
        let id = self.names.len() as u32;
        self.bytes += path.len();
        self.ids.insert(key.clone(), id);
        self.names.push(key);
        Defined::New(id)
    }

    /// Takes back `id`, the newest number, whose `Define` could not be queued: nobody was given
    /// it, and the next new recipient gets it. Any other number is left alone.
    pub(super) fn retract(&mut self, id: u32) {
        if self.names.len().checked_sub(1) != Some(id as usize) {
            return;
        }
        if let Some(key) = self.names.pop() {
            self.bytes -= key.0.len();
            self.ids.remove(&key);
        }
    }

    /// Every name, in number order: what a new connection must define before anything else.
    pub(super) fn replay(&self) -> impl Iterator<Item = (u32, &str, &str)> + '_ {
        self.names
            .iter()
            .enumerate()
            .map(|(id, (path, manifest))| (id as u32, path.as_str(), manifest.as_str()))
    }

    /// The path numbered `id`, if any.
    pub(super) fn path(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|(p, _)| p.as_str())
    }

    /// How many recipients are named.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(n: &Naming) -> Vec<(u32, String, String)> {
        n.replay()
            .map(|(id, p, m)| (id, p.to_string(), m.to_string()))
            .collect()
    }

    #[test]
    fn numbers_are_dense_and_a_name_keeps_its_number() {
        let mut n = Naming::default();
        assert_eq!(n.define("/user/a", "m"), Defined::New(0));
        assert_eq!(n.define("/user/b", "m"), Defined::New(1));
        assert_eq!(n.define("/user/a", "m"), Defined::Existing(0));
        assert_eq!(n.define("/user/c", "m"), Defined::New(2));
        assert_eq!(n.define("/user/b", "m"), Defined::Existing(1));
        assert_eq!(n.len(), 3);
        assert_eq!(
            (n.path(0), n.path(1), n.path(2), n.path(3)),
            (Some("/user/a"), Some("/user/b"), Some("/user/c"), None)
        );
    }

    #[test]
    fn the_same_path_with_another_manifest_is_another_name() {
        let mut n = Naming::default();
        assert_eq!(n.define("/user/a", "m1"), Defined::New(0));
        assert_eq!(n.define("/user/a", "m2"), Defined::New(1));
        assert_eq!(n.define("/user/a", "m1"), Defined::Existing(0));
        assert_eq!(n.define("/user/a", "m2"), Defined::Existing(1));
    }

    #[test]
    fn replay_yields_every_name_in_number_order() {
        let mut n = Naming::default();
        assert_eq!(replayed(&n), vec![]);
        for p in ["/user/z", "/user/y", "/user/x"] {
            n.define(p, "m");
        }
        n.define("/user/y", "m");
        n.define("/user/w", "other");
        assert_eq!(
            replayed(&n),
            vec![
                (0, "/user/z".to_string(), "m".to_string()),
                (1, "/user/y".to_string(), "m".to_string()),
                (2, "/user/x".to_string(), "m".to_string()),
                (3, "/user/w".to_string(), "other".to_string()),
            ]
        );
        // Replaying changes nothing: the next connection replays the same.
        assert_eq!(replayed(&n).len(), 4);
        assert_eq!(n.define("/user/v", "m"), Defined::New(4));
    }

    #[test]
    fn no_more_names_than_the_receiver_accepts() {
        let mut n = Naming::default();
        for i in 0..frame::MAX_COMPACT_NAMES {
            assert_eq!(n.define(&format!("/{i}"), ""), Defined::New(i as u32));
        }
        assert_eq!(n.define("/one-more", ""), Defined::Full);
        assert_eq!(n.define("/7", ""), Defined::Existing(7), "still named");
        assert_eq!(n.len(), frame::MAX_COMPACT_NAMES);
        assert_eq!(n.path(frame::MAX_COMPACT_NAMES as u32), None);
    }

    #[test]
    fn no_more_path_bytes_than_the_receiver_accepts() {
        let mut n = Naming::default();
        let quarter = "/".repeat(frame::MAX_COMPACT_NAME_BYTES / 4);
        for i in 0..4u32 {
            // Manifests do not count.
            let manifest = format!("m{i}");
            assert_eq!(n.define(&quarter, &manifest), Defined::New(i));
        }
        assert_eq!(n.define("/", "m9"), Defined::Full);
        assert_eq!(n.define("", "m9"), Defined::New(4), "an empty path fits");
        assert_eq!(n.define(&quarter, "m0"), Defined::Existing(0));
    }

    #[test]
    fn a_retracted_number_goes_to_the_next_name() {
        let mut n = Naming::default();
        n.define("/user/a", "m");
        assert_eq!(n.define("/user/too-long", "m"), Defined::New(1));
        // Only the newest number can be taken back.
        n.retract(0);
        n.retract(7);
        assert_eq!(n.len(), 2);
        n.retract(1);
        assert_eq!(n.len(), 1);
        assert_eq!(n.path(1), None);
        assert_eq!(n.define("/user/b", "m"), Defined::New(1));
        assert_eq!(n.define("/user/too-long", "m"), Defined::New(2));
        assert_eq!(
            replayed(&n).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        // Its bytes are given back too.
        let mut n = Naming::default();
        let half = "/".repeat(frame::MAX_COMPACT_NAME_BYTES / 2);
        assert_eq!(n.define(&half, "a"), Defined::New(0));
        assert_eq!(n.define(&half, "b"), Defined::New(1));
        assert_eq!(n.define("/", "c"), Defined::Full);
        n.retract(1);
        assert_eq!(n.define("/", "c"), Defined::New(1));
    }
}
