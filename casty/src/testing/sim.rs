//! `SimTransport`: remoting over turmoil's simulated network, so that a whole cluster of real
//! systems runs in simulated time, reproducibly (feature `simulation`).
//!
//! Each system runs as a turmoil host and binds the host's address; connections go through
//! turmoil, which delivers, delays, partitions and repairs links as the simulation says, and whose
//! clock drives every timer of the systems.

use std::io;
use std::net::SocketAddr;

use crate::actor::behavior::BoxFuture;
use crate::remote::{BoxStream, Listener, Transport};

/// Remoting over turmoil's simulated TCP. Use it inside a turmoil host.
///
/// # Examples
///
/// ```
/// use casty::testing::SimTransport;
/// use casty::remote::RemoteSettings;
/// use std::sync::Arc;
/// let settings = RemoteSettings::new("node-1", 2551).transport(Arc::new(SimTransport));
/// assert_eq!(settings.port, 2551);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SimTransport;

struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, addr) = self.0.accept().await?;
            Ok((Box::new(s) as BoxStream, addr))
        })
    }
}

impl Transport for SimTransport {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            // A host binds its own address: turmoil names hosts, and gives each an IP.
            let port: u16 = addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, addr.to_string()))?;
            let l = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
            Ok(Box::new(SimListener(l)) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let s = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}
