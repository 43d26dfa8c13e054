//! A remote-enabled `ActorSystem`: binding, remote refs, and the bridge between the endpoint and
//! the actor core's wire support (`actor::wire`).

use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::actor::actor_ref::ActorRef;
use crate::actor::message::Message;
use crate::actor::system::{ActorSystem, SystemInner};
use crate::actor::wire::{self, WireProvider};
use crate::remote::endpoint::{node_uid, Endpoint, EndpointSettings, Inbound, PeerInfo};
use crate::remote::frame::{Envelope, Frame, WirePath};
use crate::remote::handshake::Refusal;
use crate::remote::{AddressError, NodeAddress, RemoteCounters, TcpTransport, Transport};

/// How a system takes part in remoting (see [`ActorSystem::start_remote`]).
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteSettings;
/// let s = RemoteSettings::new("127.0.0.1", 0).secret("s3cret").max_frame(64 * 1024);
/// assert_eq!(s.port, 0);
/// ```
#[derive(Clone)]
pub struct RemoteSettings {
    /// The host to bind and to announce.
    pub host: String,
    /// The port (0 picks a free one).
    pub port: u16,
    /// A shared secret every peer must prove (HMAC challenge-response; it never travels).
    pub secret: Option<Vec<u8>>,
    /// The largest frame accepted or sent (default 256 KiB).
    pub max_frame: usize,
    /// Frames buffered per peer before more become dead letters (default 100,000).
    pub outbound_capacity: usize,
    /// How long a connection may take to handshake (default 5 s).
    pub handshake_timeout: Duration,
    /// Reconnection backoff: first and longest wait (default 50 ms, 5 s).
    pub backoff: (Duration, Duration),
    /// The transport (default TCP; tests use `casty::testing::FaultyTransport`).
    pub transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl RemoteSettings {
    /// Settings for `host:port`, with the defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RemoteSettings {
            host: host.into(),
            port,
            secret: None,
            max_frame: crate::remote::DEFAULT_MAX_FRAME,
            outbound_capacity: 100_000,
            handshake_timeout: Duration::from_secs(5),
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            transport: Arc::new(TcpTransport),
        }
    }

    /// Requires every peer to prove `secret`.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Sets the frame limit.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Uses another transport.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }
}

/// What can go wrong starting remoting or naming a remote actor.
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteError;
/// assert_eq!(RemoteError::NotStarted.to_string(), "remoting is not started on this system");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// `start_remote` has not been called.
    #[error("remoting is not started on this system")]
    NotStarted,
    /// `start_remote` was called twice.
    #[error("remoting is already started on this system")]
    AlreadyStarted,
    /// The address could not be bound.
    #[error("cannot bind {address}: {reason}")]
    Bind {
        /// What was bound.
        address: String,
        /// The OS error.
        reason: String,
    },
    /// A malformed address.
    #[error(transparent)]
    Address(#[from] AddressError),
}

/// A refusal seen by this node, published on the event stream (R2).
///
/// # Examples
///
/// ```
/// use casty::remote::HandshakeRefused;
/// fn log(e: &HandshakeRefused) { eprintln!("{}: {}", e.peer, e.reason); }
/// # let _ = log;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRefused {
    /// The peer (its node address, or its socket address for an inbound connection).
    pub peer: String,
    /// Why, as both sides log it.
    pub reason: Refusal,
}

impl Message for HandshakeRefused {}

struct Provider {
    node: String,
    endpoint: Endpoint,
}

impl WireProvider for Provider {
    fn node(&self) -> &str {
        &self.node
    }

    fn send(
        &self,
        node: &str,
        path: &str,
        uid: u64,
        manifest: &'static str,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let (peer, _) =
            NodeAddress::parse_actor(&format!("casty://{node}/")).map_err(|e| e.to_string())?;
        let frame = Frame::Envelope(Envelope {
            recipient: WirePath {
                path: path.to_string(),
                uid,
            },
            sender: None,
            manifest: manifest.to_string(),
            payload,
        });
        self.endpoint.send(&peer, &frame).map_err(|e| e.to_string())
    }

    fn shutdown(&self) {
        self.endpoint.shutdown();
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Hands inbound frames to the system. Holds the system weakly: the system owns the endpoint.
struct ToSystem(Weak<SystemInner>);

impl Inbound for ToSystem {
    fn frame(&self, _from: &PeerInfo, frame: Frame) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let system = ActorSystem::from_inner(inner);
        if let Frame::Envelope(e) = frame {
            wire::deliver_wire(&system, &e.recipient.path, e.recipient.uid, &e.payload);
        }
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

impl ActorSystem {
    /// Makes this system reachable from other nodes: binds `settings.host:port` and returns the
    /// node address, `casty://name@host:port`, with the port actually bound.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Bind`] if the address cannot be bound, [`RemoteError::AlreadyStarted`] on a
    /// second call.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::remote::RemoteSettings;
    /// use casty::ActorSystem;
    /// let system = ActorSystem::new("bank");
    /// let addr = system.start_remote(RemoteSettings::new("127.0.0.1", 0)).await.unwrap();
    /// assert!(addr.to_string().starts_with("casty://bank@127.0.0.1:"));
    /// assert_ne!(addr.port(), 0);
    /// # system.shutdown().await; }
    /// ```
    pub async fn start_remote(&self, settings: RemoteSettings) -> Result<NodeAddress, RemoteError> {
        let inner = self.inner().clone();
        if inner.wire.get().is_some() {
            return Err(RemoteError::AlreadyStarted);
        }
        let mut es = EndpointSettings::new(&*inner.name, settings.host.clone(), settings.port);
        es.secret = settings.secret.clone();
        es.max_frame = settings.max_frame;
        es.outbound_capacity = settings.outbound_capacity;
        es.handshake_timeout = settings.handshake_timeout;
        (es.backoff_min, es.backoff_max) = settings.backoff;
        let inbound = Arc::new(ToSystem(Arc::downgrade(&inner)));
        let endpoint = Endpoint::bind(es, node_uid(), settings.transport.clone(), inbound)
            .await
            .map_err(|e: io::Error| RemoteError::Bind {
                address: format!("{}:{}", settings.host, settings.port),
                reason: e.to_string(),
            })?;
        let address = endpoint.address().clone();
        let node = format!("{}@{}", address.system(), address.socket_addr());
        let provider = Arc::new(Provider {
            node,
            endpoint: endpoint.clone(),
        });
        if inner.wire.set(provider).is_err() {
            endpoint.shutdown();
            return Err(RemoteError::AlreadyStarted);
        }
        tracing::info!(node = %address, "remoting started");
        Ok(address)
    }

    /// This node's address, once remoting is started.
    pub fn remote_address(&self) -> Option<NodeAddress> {
        let node = self.inner().wire.get()?.node().to_string();
        NodeAddress::parse_actor(&format!("casty://{node}"))
            .ok()
            .map(|(a, _)| a)
    }

    /// A typed ref to the actor at `address` (`casty://system@host:port/path`), on this node or
    /// another. `M` must be serializable: that is checked here, at compile time. The actor on the
    /// other side must accept `M` from the wire (`#[message_enum]` does, unless `local`).
    ///
    /// # Errors
    ///
    /// [`RemoteError::NotStarted`] before `start_remote`, or a malformed address.
    pub fn remote_ref<M: Message + Serialize>(
        &self,
        address: &str,
    ) -> Result<ActorRef<M>, RemoteError> {
        let inner = self.inner();
        let provider = inner.wire.get().ok_or(RemoteError::NotStarted)?;
        let (node, path) = NodeAddress::parse_actor(address)?;
        let node = format!("{}@{}", node.system(), node.socket_addr());
        if node == provider.node() {
            return Ok(wire::resolve_node_ref(self, &node, path, 0));
        }
        Ok(wire::remote_ref(inner, &node, path, 0))
    }

    /// The remoting counters (frames, bytes, drops, reconnects), once remoting is started.
    pub fn remote_counters(&self) -> Option<RemoteCounters> {
        let provider = self.inner().wire.get()?;
        let any: &dyn std::any::Any = provider.as_any();
        any.downcast_ref::<Provider>()
            .map(|p| p.endpoint.counters())
    }
}
