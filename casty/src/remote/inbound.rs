//! [`ToSystem`], the endpoint's [`Inbound`]: hands inbound frames, connection changes and
//! refusals to the system.

use std::sync::{Arc, Weak};

use crate::actor::cell::{AnyCell, SysMsg};
use crate::actor::path::ActorPath;
use crate::actor::system::{ActorSystem, SystemInner};
use crate::actor::wire;
use crate::remote::endpoint::{DeliveryCache, Inbound, PeerInfo};
use crate::remote::frame::Frame;
use crate::remote::handshake::Refusal;
use crate::remote::settings::HandshakeRefused;
use crate::remote::system::Provider;
use crate::remote::watch::{RemoteWatch, RemoteWatcher, Watched};
use crate::remote::NodeAddress;

/// Hands inbound frames to the system. Holds the system weakly: the system owns the endpoint.
pub(crate) struct ToSystem(pub(crate) Weak<SystemInner>);

impl ToSystem {
    fn provider(inner: &SystemInner) -> Option<&Provider> {
        inner.wire.get()?.as_any().downcast_ref::<Provider>()
    }
}

impl Inbound for ToSystem {
    fn frame(&self, from: &PeerInfo, frame: Frame) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        match frame {
            Frame::Envelope(e) => {
                let r = &e.recipient;
                self.envelope(from, &r.path, r.uid, &e.manifest, &e.payload);
            }
            Frame::Watch { target, watcher } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let cell = inner
                    .lookup_cell(&target.path)
                    .filter(|c| target.uid == 0 || c.path().uid() == target.uid);
                match cell {
                    Some(cell) => {
                        let alias = crate::actor::path::next_uid();
                        let replaced = p.nodes.lock().remote_watchers.insert(
                            (from.address.node_key(), watcher.uid, target.path.clone()),
                            RemoteWatch {
                                alias,
                                node_uid: from.uid,
                            },
                        );
                        if let Some(old) = replaced {
                            // The same watch again: one registration, like a local re-watch.
                            cell.send_sys(SysMsg::Unwatch(old.alias));
                        }
                        // Keep an association with the watcher's node, so that its loss is
                        // noticed and this watch does not outlive it.
                        drop(p.endpoint.route(&from.address));
                        cell.send_sys(SysMsg::Watch(Arc::new(RemoteWatcher {
                            alias,
                            to: from.address.clone(),
                            their_uid: watcher.uid,
                            nodes: Arc::downgrade(&p.nodes),
                        })));
                    }
                    None => {
                        // Nothing there (any more): it is terminated as far as anyone can tell.
                        let _ = p
                            .endpoint
                            .send(&from.address, &Frame::Terminated { path: target });
                    }
                }
            }
            Frame::Unwatch { target, watcher } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let entry = p.nodes.lock().remote_watchers.remove(&(
                    from.address.node_key(),
                    watcher.uid,
                    target.path.clone(),
                ));
                if let Some(w) = entry {
                    if let Some(cell) = inner.lookup_cell(&target.path) {
                        cell.send_sys(SysMsg::Unwatch(w.alias));
                    }
                }
            }
            Frame::Terminated { path } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let node = from.address.node_key();
                let gone: Vec<Watched> = {
                    let mut g = p.nodes.lock();
                    let Some(watched) = g.watched.get_mut(&node) else {
                        return;
                    };
                    watched.terminated(&path.path, path.uid)
                };
                for w in gone {
                    w.watcher.notify_death(w.alias, None);
                }
            }
            // The goodbye that follows everything the node sent us on this connection.
            Frame::Bye => {
                if let Some(p) = Self::provider(&inner) {
                    p.nodes.left(&from.address.node_key(), from.uid);
                }
            }
            _ => {}
        }
    }

    fn envelope(&self, _from: &PeerInfo, path: &str, uid: u64, _manifest: &str, payload: &[u8]) {
        if let Some(inner) = self.0.upgrade() {
            wire::deliver_wire(&ActorSystem::from_inner(inner), path, uid, payload);
        }
    }

    fn compact(
        &self,
        _from: &PeerInfo,
        path: &str,
        uid: u64,
        payload: &[u8],
        cache: &mut DeliveryCache,
    ) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let system = ActorSystem::from_inner(inner);
        let slot = cache.get_or_insert_with(|| Box::new(None::<Arc<dyn AnyCell>>));
        match slot.downcast_mut::<Option<Arc<dyn AnyCell>>>() {
            Some(cell) => wire::deliver_wire_cached(&system, path, uid, payload, cell),
            None => wire::deliver_wire(&system, path, uid, payload),
        }
    }

    fn connected(&self, peer: &PeerInfo) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.connected(&peer.address.node_key(), peer.uid);
            }
        }
    }

    fn accepted(&self, peer: &PeerInfo) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.accepted(&peer.address.node_key(), peer.uid);
            }
        }
    }

    fn disconnected(&self, peer: &NodeAddress) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.disconnected(&peer.node_key());
            }
        }
    }

    fn node_refused(&self, peer: &NodeAddress, refusal: &Refusal) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.refused(
                    &peer.node_key(),
                    format!("{peer} refused the handshake: {refusal}"),
                );
                if matches!(refusal, Refusal::Quarantined { .. }) {
                    p.nodes.quarantined_us(peer);
                }
            }
        }
    }

    fn peer_left(&self, peer: &PeerInfo) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.left(&peer.address.node_key(), peer.uid);
            }
        }
    }

    fn dropped(&self, peer: &NodeAddress, first: Option<(&str, u64)>, count: u64, why: &str) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let node: Arc<str> = Arc::from(peer.node_key());
        let recipient = match first {
            Some((path, uid)) => ActorPath::new(node, path.to_string(), uid),
            None => ActorPath::new(node, "/".to_string(), 0),
        };
        inner.dead_letters(&recipient, count, || {
            let message = if count == 1 {
                "<a message>".to_string()
            } else {
                format!("<{count} messages>")
            };
            (message, crate::DeadLetterReason::Remote(why.to_string()))
        });
    }

    fn refused(&self, peer: &str, refusal: &Refusal) {
        if let Some(inner) = self.0.upgrade() {
            inner.events.publish(HandshakeRefused {
                peer: peer.to_string(),
                reason: refusal.clone(),
            });
        }
    }
}
