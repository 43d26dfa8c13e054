//! Quarantined peer incarnations (R1), and the live connections to cut when one is quarantined.
//!
//! A connection registers itself under its peer's incarnation for as long as it lives
//! ([`Quarantine::link`]). Quarantining an incarnation severs whatever is registered under it,
//! and a connection registering after that is severed at once, so neither order of the two races
//! leaves a quarantined peer connected.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::remote::transport::Severer;

/// Peer incarnations that may never connect again, and the live connections by incarnation.
#[derive(Default)]
pub(super) struct Quarantine {
    uids: Mutex<HashSet<u64>>,
    links: Mutex<HashMap<u64, Vec<Severer>>>,
}

impl Quarantine {
    /// Whether `uid` is quarantined.
    pub(super) fn contains(&self, uid: u64) -> bool {
        self.uids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&uid)
    }

    /// How many incarnations are quarantined.
    pub(super) fn len(&self) -> usize {
        self.uids.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Quarantines `uid` and severs its live connections. Returns whether it was newly
    /// quarantined.
    pub(super) fn add(&self, uid: u64) -> bool {
        let new = self
            .uids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid);
        let live = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            .cloned()
            .unwrap_or_default();
        for s in live {
            s.sever();
        }
        new
    }

    /// Registers a live connection with `uid`, until the guard drops. A connection whose peer
    /// was quarantined meanwhile is closed at once.
    pub(super) fn link<'a>(&'a self, uid: u64, severer: &Severer) -> Link<'a> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid)
            .or_default()
            .push(severer.clone());
        if self.contains(uid) {
            severer.sever();
        }
        Link {
            quarantine: self,
            uid,
            severer: severer.clone(),
        }
    }
}

/// A live connection's registration in [`Quarantine`].
pub(super) struct Link<'a> {
    quarantine: &'a Quarantine,
    uid: u64,
    severer: Severer,
}

impl Drop for Link<'_> {
    fn drop(&mut self) {
        let mut links = self
            .quarantine
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = links.get_mut(&self.uid) {
            list.retain(|s| !s.same(&self.severer));
            if list.is_empty() {
                links.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantining_severs_the_live_connections_of_that_incarnation_only() {
        let q = Quarantine::default();
        let (a, b, other) = (Severer::default(), Severer::default(), Severer::default());
        let _la = q.link(7, &a);
        let _lb = q.link(7, &b);
        let _lo = q.link(8, &other);
        assert!(q.add(7));
        assert!(!q.add(7), "once is enough");
        assert!(a.is_severed() && b.is_severed());
        assert!(!other.is_severed());
        assert!(q.contains(7) && !q.contains(8));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_connection_linked_after_the_quarantine_is_severed_at_once() {
        let q = Quarantine::default();
        q.add(7);
        let late = Severer::default();
        let _l = q.link(7, &late);
        assert!(late.is_severed());
    }

    #[test]
    fn an_ended_connection_is_no_longer_registered() {
        let q = Quarantine::default();
        let gone = Severer::default();
        let kept = Severer::default();
        drop(q.link(7, &gone));
        let k = q.link(7, &kept);
        assert_eq!(q.links.lock().unwrap()[&7].len(), 1);
        drop(k);
        assert!(q.links.lock().unwrap().is_empty());
        q.add(7);
        assert!(!gone.is_severed());
    }
}
