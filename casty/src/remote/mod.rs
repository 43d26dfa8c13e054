//! Remoting: typed actor refs across processes over TCP.
//!
//! The pieces, bottom up, each tested on its own:
//! - [`NodeAddress`]: `casty://system@host:port` and actor addresses under it;
//! - `frame`: length-prefixed CBOR frames with a hard size limit and an incremental decoder that
//!   never panics, with a zero-copy path for compact envelopes (R3);
//! - `handshake`: the connect/accept handshake as pure state machines (protocol version, system
//!   name, incarnation uid, frame limits, and an HMAC challenge-response over a shared secret,
//!   R1–R2);
//! - [`Transport`]: TCP, TLS (feature `tls`), and the test-only `FaultyTransport` wrapper;
//! - `endpoint`: the listener and one batched, reconnecting, bounded association per peer (R5),
//!   with its reconnect/outage decisions and its recipient numbering as pure state machines;
//! - `reachability`: which nodes are reachable, which incarnations are gone and which refuse
//!   us, as a pure state machine that returns commands (timers, nodes down, quarantine);
//! - `watch`: death watch across nodes, both ways;
//! - `system`: `ActorSystem::start_remote`, `remote_ref`, and the driver of `reachability`,
//!   bridging the endpoint to the actor core's wire support (`actor::wire`), with `route` sending
//!   what the core encodes (compressing recipient names), `inbound` handing it what the endpoint
//!   receives and `settings` saying how a system takes part.

mod address;
pub(crate) mod endpoint;
pub(crate) mod frame;
pub(crate) mod handshake;
mod inbound;
mod reachability;
mod route;
mod settings;
mod system;
#[cfg(feature = "cluster")]
pub(crate) use system::NodeNews;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod watch;

pub use address::{AddressError, NodeAddress};
pub use endpoint::{RemoteCounters, SendError};
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub use frame::fuzz_decode;
pub use frame::{
    FrameError, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME, MAX_COMPACT_NAMES, MAX_COMPACT_NAME_BYTES,
};
pub use handshake::Refusal;
pub use settings::{HandshakeRefused, RemoteError, RemoteSettings};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError, TlsTransport};
pub use transport::{BoxStream, Fate, Listener, Severer, Stream, TcpTransport, Transport};
