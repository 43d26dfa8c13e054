//! Remoting: typed actor refs across processes over TCP (issue "Remoting").
//!
//! The pieces, bottom up, each usable and tested on its own:
//! - [`address`](NodeAddress): `casty://system@host:port` and actor addresses under it;
//! - `frame`: length-prefixed CBOR frames with a hard size limit and an incremental decoder that
//!   never panics (R3);
//! - `handshake`: the connect/accept handshake as pure state machines (protocol version, system
//!   name, incarnation uid, frame limits, and an HMAC challenge-response over a shared secret,
//!   R1–R2).
//!
//! The transport, associations and remote refs build on these.

// The frame codec and handshake are complete and unit-tested; the transport that calls them lands
// in the next step of the remoting issue. Until then their crate-internal items are unused.
#![allow(dead_code)]

mod address;
pub(crate) mod endpoint;
pub(crate) mod frame;
pub(crate) mod handshake;
mod system;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use address::{AddressError, NodeAddress};
pub use endpoint::{RemoteCounters, SendError};
#[doc(hidden)]
pub use frame::fuzz_decode;
pub use frame::{FrameError, DEFAULT_MAX_FRAME};
pub use handshake::Refusal;
pub use system::{HandshakeRefused, RemoteError, RemoteSettings};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError, TlsTransport};
pub use transport::{BoxStream, Fate, Listener, Severer, Stream, TcpTransport, Transport};
