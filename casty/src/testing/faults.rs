//! `FaultyTransport`: a transport wrapper whose links tests can break and heal at run time.
//!
//! Faults are per peer node and act on whole frames: a blackholed direction loses every frame, a
//! delayed one holds each batch back, a lossy one drops a fraction of frames at random, and
//! `sever` closes the current connections (the association reconnects). Keep a clone of the
//! transport to flip switches while the system uses another clone.
//!
//! A connection this transport opens counts as current from the moment it is asked for, not
//! only once the endpoint registers it after the handshake: a `sever` while it is still being
//! opened closes it too, as a real partition would break a handshake in flight. Otherwise a
//! connection whose handshake ends just after `blackhole` and `sever` would stay up, with every
//! frame on it lost, and its loss would never be noticed.
//!
//! Which frames a lossy link drops is drawn from the transport's own random source; seed it
//! ([`FaultyTransport::with_seed`]) and the losses are the same on every run of the same
//! history, as a deterministic simulation needs.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// The links, and the severers of the connections this transport opened, by the socket address
/// they were opened to (a peer with no fault set yet has no [`Link`]).
#[derive(Default)]
struct Links {
    by_peer: HashMap<NodeAddress, Link>,
    opened: HashMap<String, Vec<Severer>>,
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
    links: Arc<Mutex<Links>>,
    /// Draws which frames a lossy link drops.
    rng: Arc<Mutex<fastrand::Rng>>,
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
            rng: Arc::new(Mutex::new(fastrand::Rng::new())),
        }
    }

    /// Seeds the random source that decides which frames a lossy link
    /// ([`FaultyTransport::drop_fraction`]) drops, so that a run can be replayed.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::testing::FaultyTransport;
    ///
    /// let t = FaultyTransport::tcp().with_seed(7);
    /// # drop(t);
    /// ```
    pub fn with_seed(self, seed: u64) -> Self {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = fastrand::Rng::with_seed(seed);
        self
    }

    /// Wraps the TCP transport.
    pub fn tcp() -> Self {
        Self::new(Arc::new(TcpTransport))
    }

    fn links(&self) -> std::sync::MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, peer: &NodeAddress, f: impl FnOnce(&mut Link)) {
        f(self.links().by_peer.entry(peer.clone()).or_default());
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

    /// Closes the current connections to and from `peer`, including those this node is still
    /// opening to it (in handshake). A connection from `peer` still in handshake is not known to
    /// be from `peer` yet, and is not closed.
    pub fn sever(&self, peer: &NodeAddress) {
        let mut links = self.links();
        let opened = links.opened.remove(&peer.socket_addr()).unwrap_or_default();
        let registered = links
            .by_peer
            .get_mut(peer)
            .map(|l| std::mem::take(&mut l.severers))
            .unwrap_or_default();
        for s in opened.iter().chain(&registered) {
            s.sever();
        }
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
        let peers: Vec<_> = self.links().by_peer.keys().cloned().collect();
        for p in peers {
            self.heal(&p);
        }
    }

    fn fate(&self, peer: &NodeAddress, blackholed: impl Fn(&Link) -> bool) -> Fate {
        let links = self.links();
        let Some(l) = links.by_peer.get(peer) else {
            return Fate::Pass;
        };
        let lost = l.drop_fraction > 0.0
            && self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64() < l.drop_fraction;
        if blackholed(l) || lost {
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
        // One look at the links: whether they partition this peer away, and if not, this
        // connection counts among its current ones from now on (see the module notes).
        let severer = {
            let mut links = self.links();
            // A link blackholed both ways is a partition: new connections fail too.
            let partitioned = links
                .by_peer
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
            let severer = Severer::default();
            let opened = links.opened.entry(addr.to_string()).or_default();
            // Those of connections that ended are of no more use.
            opened.retain(Severer::in_use);
            opened.push(severer.clone());
            severer
        };
        let connecting = self.inner.connect(addr);
        Box::pin(async move {
            let stream = connecting.await?;
            Ok(Box::new(Severable::new(stream, severer)) as BoxStream)
        })
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

/// A stream opened by [`FaultyTransport`]: once its severer fires, every read and write fails,
/// as on a connection the network cut.
struct Severable {
    inner: BoxStream,
    severed: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Whether the severer fired (it stays so).
    cut: bool,
    /// Kept so that [`Severer::in_use`] tells this stream is still open.
    _severer: Severer,
}

impl Severable {
    fn new(inner: BoxStream, severer: Severer) -> Self {
        let watched = severer.clone();
        Severable {
            inner,
            severed: Box::pin(async move { watched.severed().await }),
            cut: false,
            _severer: severer,
        }
    }

    /// Whether the connection was severed; if not, the task is woken when it is.
    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.cut && self.severed.as_mut().poll(cx).is_ready() {
            self.cut = true;
        }
        self.cut
    }
}

fn severed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the connection was severed (fault injection)",
    )
}

impl AsyncRead for Severable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Severable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    // A connection still being opened when its link is severed (here: connected, but not yet
    // registered by a handshake) is closed as well, so a partition cannot miss it; one opened
    // after the sever works.
    #[tokio::test]
    async fn a_sever_also_closes_a_connection_still_being_opened() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = NodeAddress::new("sys", "127.0.0.1", port);
        let t = FaultyTransport::tcp();
        let mut opening = t.connect(&peer.socket_addr()).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();

        t.sever(&peer);
        let write = opening.write_all(b"hello").await;
        assert_eq!(
            write.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
        let mut buf = [0u8; 8];
        let read = opening.read(&mut buf).await;
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );

        let mut later = t.connect(&peer.socket_addr()).await.unwrap();
        let (mut other, _) = listener.accept().await.unwrap();
        later.write_all(b"hi").await.unwrap();
        let mut got = [0u8; 2];
        other.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
        // Nothing from the severed connection arrived.
        drop(opening);
        let mut rest = Vec::new();
        accepted.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"");
    }

    // A read waiting on a connection being opened is woken by the sever, not left waiting.
    #[tokio::test]
    async fn a_sever_wakes_a_read_waiting_on_a_connection_being_opened() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = NodeAddress::new("sys", "127.0.0.1", port);
        let t = FaultyTransport::tcp();
        let mut opening = t.connect(&peer.socket_addr()).await.unwrap();
        let _accepted = listener.accept().await.unwrap();
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            opening.read(&mut buf).await.map_err(|e| e.kind())
        });
        tokio::task::yield_now().await;
        t.sever(&peer);
        let read = tokio::time::timeout(Duration::from_secs(5), reading)
            .await
            .expect("the sever wakes the read")
            .unwrap();
        assert_eq!(read, Err(io::ErrorKind::ConnectionReset));
    }
}
