//! Death watch across nodes: the remote actors watched from this node ([`WatchedOnNode`]) and
//! the watches other nodes hold on this node's actors ([`RemoteWatch`], [`RemoteWatcher`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::actor::cell::Watcher;
use crate::actor::path::ActorPath;
use crate::remote::frame::{Frame, WirePath};
use crate::remote::system::Nodes;
use crate::remote::NodeAddress;

/// A remote actor watched from this node.
pub(crate) struct Watched {
    pub(crate) path: String,
    pub(crate) wire_uid: u64,
    pub(crate) alias: ActorPath,
    pub(crate) watcher: Arc<dyn Watcher>,
}

/// The remote actors watched from this node on one other node, by path and then by watcher uid:
/// a watch, an unwatch and a `Terminated` each touch only their own entries, however many
/// watches there are.
#[derive(Default)]
pub(crate) struct WatchedOnNode {
    by_path: HashMap<String, HashMap<u64, Vec<Watched>>>,
    pub(crate) len: usize,
}

impl WatchedOnNode {
    pub(crate) fn add(&mut self, w: Watched) {
        self.by_path
            .entry(w.path.clone())
            .or_default()
            .entry(w.watcher.watcher_uid())
            .or_default()
            .push(w);
        self.len += 1;
    }

    pub(crate) fn remove(&mut self, path: &str, watcher_uid: u64) {
        self.take(path, watcher_uid);
    }

    /// Takes the watches `watcher_uid` holds on `path`.
    pub(crate) fn take(&mut self, path: &str, watcher_uid: u64) -> Vec<Watched> {
        let Some(by_watcher) = self.by_path.get_mut(path) else {
            return Vec::new();
        };
        let list = by_watcher.remove(&watcher_uid).unwrap_or_default();
        self.len -= list.len();
        if by_watcher.is_empty() {
            self.by_path.remove(path);
        }
        list
    }

    /// Takes the watches that end because `path`, incarnation `uid`, terminated.
    pub(crate) fn terminated(&mut self, path: &str, uid: u64) -> Vec<Watched> {
        let Some(by_watcher) = self.by_path.get_mut(path) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        by_watcher.retain(|_, list| {
            let (ended, kept): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|w| w.wire_uid == 0 || w.wire_uid == uid);
            gone.extend(ended);
            *list = kept;
            !list.is_empty()
        });
        if by_watcher.is_empty() {
            self.by_path.remove(path);
        }
        self.len -= gone.len();
        gone
    }

    pub(crate) fn into_all(self) -> Vec<Watched> {
        self.by_path
            .into_values()
            .flat_map(HashMap::into_values)
            .flatten()
            .collect()
    }
}

/// A watch another node holds on one of this node's actors.
pub(crate) struct RemoteWatch {
    /// The alias uid the watched cell knows the watcher by.
    pub(crate) alias: u64,
    /// The watching node's incarnation.
    pub(crate) node_uid: u64,
}

/// A watcher on another node, registered with a local actor: tells that node when it stops.
pub(crate) struct RemoteWatcher {
    pub(crate) alias: u64,
    pub(crate) to: NodeAddress,
    /// The watcher's own uid on its node (part of its key in `remote_watchers`).
    pub(crate) their_uid: u64,
    pub(crate) nodes: Weak<Nodes>,
}

impl Watcher for RemoteWatcher {
    fn watcher_uid(&self) -> u64 {
        self.alias
    }

    fn notify_death(&self, path: ActorPath, _failure: Option<crate::Failure>) {
        let Some(nodes) = self.nodes.upgrade() else {
            return;
        };
        let key = (
            self.to.node_key(),
            self.their_uid,
            path.as_str().to_string(),
        );
        {
            let mut g = nodes.lock();
            if g.remote_watchers
                .get(&key)
                .is_some_and(|w| w.alias == self.alias)
            {
                g.remote_watchers.remove(&key);
            }
        }
        let frame = Frame::Terminated {
            path: WirePath {
                path: path.as_str().to_string(),
                uid: path.uid(),
            },
        };
        if let Err(e) = nodes.endpoint.send(&self.to, &frame) {
            tracing::debug!(to = %self.to, error = %e, "cannot tell a remote watcher");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher that counts how often anyone asked it for its uid.
    struct Nobody(u64, Arc<std::sync::atomic::AtomicUsize>);

    impl Watcher for Nobody {
        fn watcher_uid(&self) -> u64 {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0
        }

        fn notify_death(&self, _path: ActorPath, _failure: Option<crate::Failure>) {}
    }

    fn watched_counted(
        path: &str,
        wire_uid: u64,
        watcher: u64,
        asked: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> Watched {
        Watched {
            path: path.into(),
            wire_uid,
            alias: ActorPath::new("b@127.0.0.1:1".into(), path.into(), 1),
            watcher: Arc::new(Nobody(watcher, asked.clone())),
        }
    }

    fn watched(path: &str, wire_uid: u64, watcher: u64) -> Watched {
        watched_counted(path, wire_uid, watcher, &Default::default())
    }

    // Fifty thousand watchers of one remote actor come and go, each watch and unwatch looking at
    // its own entry only (counted, not timed: a scan of the node's list per unwatch would ask
    // every other watcher, over a billion times).
    #[test]
    fn many_watches_of_one_remote_actor_are_added_and_removed_quickly() {
        const N: u64 = 50_000;
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut w = WatchedOnNode::default();
        for uid in 1..=N {
            w.add(watched_counted("/user/target", 0, uid, &asked));
        }
        assert_eq!(w.len, N as usize);
        for uid in 1..=N {
            w.remove("/user/target", uid);
        }
        assert_eq!((w.len, w.by_path.len()), (0, 0));
        let looks = asked.load(std::sync::atomic::Ordering::Relaxed);
        assert!(looks <= N as usize, "{looks} uid lookups for {N} watches");
    }

    // `Terminated` for one incarnation ends the watches of that incarnation and of the path as a
    // whole, and leaves the others; an unwatch removes exactly that watcher's watches of a path.
    #[test]
    fn terminated_and_unwatch_take_exactly_their_watches() {
        let mut w = WatchedOnNode::default();
        w.add(watched("/a", 0, 1));
        w.add(watched("/a", 7, 2));
        w.add(watched("/a", 8, 3));
        w.add(watched("/b", 0, 1));
        w.add(watched("/b", 0, 2));
        let mut ended: Vec<u64> = w
            .terminated("/a", 7)
            .iter()
            .map(|x| x.watcher.watcher_uid())
            .collect();
        ended.sort_unstable();
        assert_eq!(ended, vec![1, 2]);
        assert_eq!(w.len, 3);
        assert!(w.terminated("/c", 1).is_empty());
        w.remove("/b", 1);
        w.remove("/b", 9);
        assert_eq!(w.len, 2);
        let mut rest: Vec<(String, u64)> = w
            .into_all()
            .into_iter()
            .map(|x| (x.path, x.watcher.watcher_uid()))
            .collect();
        rest.sort();
        assert_eq!(rest, vec![("/a".into(), 3), ("/b".into(), 2)]);
    }
}
