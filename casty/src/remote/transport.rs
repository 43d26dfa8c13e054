//! The `Transport` trait: how nodes reach each other, and the one place faults can be injected.
//!
//! A transport binds a listener and opens byte streams; [`TcpTransport`] is the real one. The
//! remote layer asks the transport what to do with each frame (`outbound`, `inbound`): a real
//! transport always passes, while the test-only [`crate::testing::FaultyTransport`] can blackhole,
//! delay or drop frames per peer and sever connections, switched at run time. Faults act on whole
//! frames, so they look like a lossy or partitioned network, never like a corrupt stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::actor::behavior::BoxFuture;
use crate::remote::NodeAddress;

/// A bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Accepts incoming streams.
pub trait Listener: Send + 'static {
    /// The address actually bound (port 0 becomes a real port).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The next incoming stream and its peer's socket address. It should return as soon as the
    /// raw connection is there: anything that waits for the peer (a TLS handshake) belongs in
    /// [`Listener::upgrade`], since the listener accepts one connection at a time.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>>;

    /// Finishes accepting `stream` from `from`, for example with a TLS handshake. The endpoint
    /// awaits it in the new connection's own task, under the handshake deadline, so a slow or
    /// silent peer delays only itself. The default passes the stream through.
    ///
    /// # Errors
    ///
    /// Whatever refuses the connection; it is then closed.
    fn upgrade(
        &self,
        stream: BoxStream,
        from: SocketAddr,
    ) -> BoxFuture<'static, io::Result<BoxStream>> {
        let _ = from;
        Box::pin(std::future::ready(Ok(stream)))
    }
}

/// What happens to one frame on its way (see [`Transport::outbound`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// Send or deliver it.
    Pass,
    /// Lose it.
    Drop,
    /// Send or deliver it after this long.
    Delay(Duration),
}

/// Lets a transport close one connection (fault injection's "sever"). Severing is permanent: a
/// connection that is severed before it looks is still closed when it looks.
#[derive(Debug, Clone)]
pub struct Severer(Arc<watch::Sender<bool>>);

impl Default for Severer {
    fn default() -> Self {
        Severer(Arc::new(watch::channel(false).0))
    }
}

impl Severer {
    /// Whether `other` is this same severer (a clone of it).
    pub(crate) fn same(&self, other: &Severer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether a clone of this severer is held elsewhere than by the caller (by a connection
    /// that is still open, say).
    pub(crate) fn in_use(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// Closes the connection registered with this severer.
    pub fn sever(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Severer::sever`] was called.
    pub fn is_severed(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) async fn severed(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// How nodes reach each other.
///
/// # Examples
///
/// ```
/// use casty::remote::{TcpTransport, Transport};
/// use std::sync::Arc;
/// let t: Arc<dyn Transport> = Arc::new(TcpTransport::default());
/// # let _ = t;
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Listens on `addr` (`host:port`; port 0 picks a free port).
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>>;

    /// Opens a stream to `addr` (`host:port`).
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>>;

    /// Whether [`Transport::outbound`] may ever answer anything but [`Fate::Pass`]; when it
    /// cannot, batches are written without looking at each frame.
    fn filters_frames(&self) -> bool {
        false
    }

    /// What to do with a frame this node is about to send to `peer`.
    fn outbound(&self, _peer: &NodeAddress) -> Fate {
        Fate::Pass
    }

    /// What to do with a frame this node received from `peer`.
    fn inbound(&self, _peer: &NodeAddress) -> Fate {
        Fate::Pass
    }

    /// Called for every established connection to or from `peer`; a transport that can sever
    /// connections keeps the severer.
    fn register(&self, _peer: &NodeAddress, _severer: &Severer) {}
}

/// The TCP transport, with `TCP_NODELAY` (writes are batched by the remote layer instead).
#[derive(Debug, Clone, Default)]
pub struct TcpTransport;

struct TcpListen(tokio::net::TcpListener);

impl Listener for TcpListen {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, addr) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((Box::new(s) as BoxStream, addr))
        })
    }
}

impl Transport for TcpTransport {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpListen(l)) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}
