//! `FaultyTransport`: a transport wrapper whose links tests can break and heal at run time.
//!
//! Faults are per peer node and act on whole frames: a blackholed direction loses every frame, a
//! delayed one holds each batch back, a lossy one drops a fraction of frames at random, and
//! `sever` closes the current connections (the association reconnects). Keep a clone of the
//! transport to flip switches while the system uses another clone.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::actor::behavior::BoxFuture;
use crate::remote::{BoxStream, Fate, Listener, NodeAddress, Severer, TcpTransport, Transport};

/// Which way a fault applies, seen from the node whose transport it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames this node sends to the peer.
    Outbound,
    /// Frames this node receives from the peer.
    Inbound,
    /// Both.
    Both,
}

#[derive(Default)]
struct Link {
    blackhole_out: bool,
    blackhole_in: bool,
    delay: Option<Duration>,
    drop_fraction: f64,
    severers: Vec<Severer>,
}

/// A [`Transport`] with switchable faults (see the module notes).
///
/// # Examples
///
/// ```
/// use casty::remote::NodeAddress;
/// use casty::testing::{Direction, FaultyTransport};
///
/// let t = FaultyTransport::tcp();
/// let peer: NodeAddress = "casty://bank@127.0.0.1:25520".parse().unwrap();
/// t.blackhole(&peer, Direction::Both);
/// t.heal(&peer);
/// ```
#[derive(Clone)]
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    links: Arc<Mutex<HashMap<NodeAddress, Link>>>,
}

impl std::fmt::Debug for FaultyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyTransport").finish_non_exhaustive()
    }
}

impl FaultyTransport {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        FaultyTransport {
            inner,
            links: Arc::default(),
        }
    }

    /// Wraps the TCP transport.
    pub fn tcp() -> Self {
        Self::new(Arc::new(TcpTransport))
    }

    fn with(&self, peer: &NodeAddress, f: impl FnOnce(&mut Link)) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        f(links.entry(peer.clone()).or_default());
    }

    /// Loses every frame to and/or from `peer`. Both ways is a partition: new connections to
    /// the peer fail as well (combine with [`FaultyTransport::sever`] to cut the current ones).
    pub fn blackhole(&self, peer: &NodeAddress, direction: Direction) {
        self.with(peer, |l| match direction {
            Direction::Outbound => l.blackhole_out = true,
            Direction::Inbound => l.blackhole_in = true,
            Direction::Both => {
                l.blackhole_out = true;
                l.blackhole_in = true;
            }
        });
    }

    /// Holds back frames to and from `peer` by `delay`.
    pub fn delay(&self, peer: &NodeAddress, delay: Duration) {
        self.with(peer, |l| l.delay = Some(delay));
    }

    /// Drops this fraction (0.0 to 1.0) of frames to and from `peer`, at random.
    pub fn drop_fraction(&self, peer: &NodeAddress, fraction: f64) {
        self.with(peer, |l| l.drop_fraction = fraction.clamp(0.0, 1.0));
    }

    /// Closes the current connections to and from `peer`.
    pub fn sever(&self, peer: &NodeAddress) {
        self.with(peer, |l| {
            for s in l.severers.drain(..) {
                s.sever();
            }
        });
    }

    /// Removes every fault on `peer`.
    pub fn heal(&self, peer: &NodeAddress) {
        self.with(peer, |l| {
            l.blackhole_out = false;
            l.blackhole_in = false;
            l.delay = None;
            l.drop_fraction = 0.0;
        });
    }

    /// Removes every fault on every peer.
    pub fn heal_all(&self) {
        let peers: Vec<_> = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for p in peers {
            self.heal(&p);
        }
    }

    fn fate(&self, peer: &NodeAddress, blackholed: impl Fn(&Link) -> bool) -> Fate {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let Some(l) = links.get(peer) else {
            return Fate::Pass;
        };
        if blackholed(l) || (l.drop_fraction > 0.0 && fastrand::f64() < l.drop_fraction) {
            return Fate::Drop;
        }
        l.delay.map_or(Fate::Pass, Fate::Delay)
    }
}

impl Transport for FaultyTransport {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        self.inner.bind(addr)
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        // A link blackholed both ways is a partition: new connections fail too.
        let partitioned = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(peer, l)| l.blackhole_out && l.blackhole_in && peer.socket_addr() == addr);
        if partitioned {
            return Box::pin(async move {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{addr} is partitioned away (fault injection)"),
                ))
            });
        }
        self.inner.connect(addr)
    }

    fn filters_frames(&self) -> bool {
        true
    }

    fn outbound(&self, peer: &NodeAddress) -> Fate {
        self.fate(peer, |l| l.blackhole_out)
    }

    fn inbound(&self, peer: &NodeAddress) -> Fate {
        self.fate(peer, |l| l.blackhole_in)
    }

    fn register(&self, peer: &NodeAddress, severer: &Severer) {
        self.with(peer, |l| l.severers.push(severer.clone()));
    }
}
