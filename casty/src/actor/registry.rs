//! The registry of live actors: path → cell, for typed lookup, for unique names among top-level
//! actors, for remote messages addressed by path, and for the shutdown.
//!
//! Every spawn registers and every stop unregisters, from whichever threads spawn and stop, so the
//! registry is split into shards, each behind its own lock: actors stopping on different workers
//! rarely wait for each other. An entry keeps its path's hash beside the cell, so that a shard
//! growing rehashes without reading a single path.

use std::sync::{Arc, RwLock};

use hashbrown::hash_table::{Entry as Slot, HashTable};

use crate::actor::cell::AnyCell;
use crate::actor::path::ActorPath;

/// How many shards: a power of two, a few times the number of threads that usually spawn or
/// stop actors at once.
const SHARDS: usize = 16;

struct Entry {
    hash: u64,
    cell: Arc<dyn AnyCell>,
}

/// Why [`Registry::insert`] refused a cell.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<E> {
    /// Another live actor has the path; its path (with its uid) comes back.
    Taken(ActorPath),
    /// The check run under the shard's lock failed.
    Check(E),
}

pub(crate) struct Registry {
    /// Hashes paths; seeded per process, so not predictable from outside.
    hasher: foldhash::fast::RandomState,
    shards: Box<[RwLock<HashTable<Entry>>]>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl Registry {
    fn hash(&self, path: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(path)
    }

    /// The shard of a hash. The table inside uses the hash's low bits to place an entry and its
    /// top seven as a tag: the shard is chosen by bits in between, so that neither repeats
    /// within a shard.
    fn shard(&self, hash: u64) -> &RwLock<HashTable<Entry>> {
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// Registers `cell` under its path, unless `check` fails or a live actor has that path.
    /// `check` and then `inserted` (once the cell is in) run under the shard's lock, so that they
    /// order with [`Registry::cells`]: a snapshot that sees the cell sees what `inserted` did.
    pub(crate) fn insert<E>(
        &self,
        cell: Arc<dyn AnyCell>,
        check: impl FnOnce() -> Result<(), E>,
        inserted: impl FnOnce(),
    ) -> Result<(), Refused<E>> {
        let path = cell.path().as_str();
        let hash = self.hash(path);
        let mut shard = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        check().map_err(Refused::Check)?;
        match shard.entry(
            hash,
            |e| e.hash == hash && e.cell.path().as_str() == path,
            |e| e.hash,
        ) {
            Slot::Occupied(e) => Err(Refused::Taken(e.get().cell.path().clone())),
            Slot::Vacant(v) => {
                v.insert(Entry { hash, cell });
                inserted();
                Ok(())
            }
        }
    }

    /// Unregisters the incarnation at `path`, if it is the one registered: a later incarnation
    /// under the same name, registered after this one left, stays.
    pub(crate) fn remove(&self, path: &ActorPath) {
        let hash = self.hash(path.as_str());
        let mut shard = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        if let Ok(e) = shard.find_entry(hash, |e| e.hash == hash && e.cell.path() == path) {
            e.remove();
        }
    }

    /// The live actor at `path`, if any.
    pub(crate) fn get(&self, path: &str) -> Option<Arc<dyn AnyCell>> {
        let hash = self.hash(path);
        let shard = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
        shard
            .find(hash, |e| e.hash == hash && e.cell.path().as_str() == path)
            .map(|e| e.cell.clone())
    }

    /// Every live actor, one shard after the other.
    pub(crate) fn cells(&self) -> Vec<Arc<dyn AnyCell>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            all.extend(shard.iter().map(|e| e.cell.clone()));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::cell::Shared;
    use crate::actor::mailbox::Mailbox;
    use crate::ActorSystem;

    fn cell(system: &ActorSystem, path: &str, uid: u64) -> Arc<dyn AnyCell> {
        let inner = system.inner().clone();
        let path = ActorPath::new(inner.name.clone(), path.into(), uid);
        Arc::new(Shared::<u8>::new(path, Mailbox::default(), inner, None))
    }

    // Paths spread over every shard: each is found by its path, a second actor under a taken path
    // is refused, a failed check registers nothing, and every live actor is listed once.
    #[tokio::test]
    async fn actors_are_found_by_path_once_each_and_a_taken_path_is_refused() {
        let system = ActorSystem::new("registry");
        let reg = Registry::default();
        let ok = || Ok::<(), ()>(());
        for i in 0..1_000u64 {
            reg.insert(cell(&system, &format!("/a{i}"), i + 1), ok, || {})
                .unwrap();
        }
        for i in 0..1_000u64 {
            let found = reg.get(&format!("/a{i}")).expect("registered");
            assert_eq!(found.path().uid(), i + 1);
        }
        assert!(reg.get("/a1000").is_none());
        assert_eq!(
            reg.insert(cell(&system, "/a7", 5_000), ok, || {}),
            Err(Refused::Taken(
                reg.get("/a7").expect("registered").path().clone()
            ))
        );
        assert_eq!(
            reg.insert(cell(&system, "/b", 5_001), || Err("closed"), || {}),
            Err(Refused::Check("closed"))
        );
        assert!(reg.get("/b").is_none());
        let mut uids: Vec<u64> = reg.cells().iter().map(|c| c.path().uid()).collect();
        uids.sort_unstable();
        assert_eq!(uids, (1..=1_000).collect::<Vec<_>>());
        system.shutdown().await;
    }

    // Removing takes out only the incarnation named: an older one leaving late keeps the newer.
    #[tokio::test]
    async fn removing_an_older_incarnation_keeps_the_newer_one() {
        let system = ActorSystem::new("registry");
        let reg = Registry::default();
        let new = cell(&system, "/a", 2);
        reg.insert(new.clone(), || Ok::<(), ()>(()), || {}).unwrap();
        let old = ActorPath::new(system.inner().name.clone(), "/a".into(), 1);
        reg.remove(&old);
        assert_eq!(reg.get("/a").map(|c| c.path().uid()), Some(2));
        reg.remove(new.path());
        assert!(reg.get("/a").is_none());
        assert!(reg.cells().is_empty());
        system.shutdown().await;
    }
}
