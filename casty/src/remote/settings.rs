//! How a system takes part in remoting ([`RemoteSettings`]), what can go wrong starting it
//! ([`RemoteError`]), and the refusals it publishes ([`HandshakeRefused`]).

use std::sync::Arc;
use std::time::Duration;

use crate::actor::message::Message;
use crate::remote::handshake::Refusal;
use crate::remote::{AddressError, TcpTransport, Transport};

/// How a system takes part in remoting (see
/// [`ActorSystem::start_remote`](crate::ActorSystem::start_remote)).
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
    /// How long a connection may take to handshake, TLS included (default 5 s).
    pub handshake_timeout: Duration,
    /// How many inbound connections may be in handshake at once (default 128). More are closed
    /// at once, unread, and counted in
    /// [`RemoteCounters::handshakes_shed`](crate::remote::RemoteCounters::handshakes_shed); a
    /// peer shed this way retries with its backoff. Handshake frames are limited to
    /// [`HANDSHAKE_MAX_FRAME`](crate::remote::HANDSHAKE_MAX_FRAME) bytes, so each such connection
    /// costs little.
    pub max_handshakes: usize,
    /// Reconnection backoff: first and longest wait (default 50 ms, 5 s).
    pub backoff: (Duration, Duration),
    /// The transport (default TCP; tests use `casty::testing::FaultyTransport`).
    pub transport: Arc<dyn Transport>,
    /// How long a lost connection may stay lost before the node counts as gone: its watched
    /// actors are `Terminated` and asks to it fail (default 10 s). This timeout is the only
    /// failure detector remoting has.
    pub unreachable_after: Duration,
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
            max_handshakes: crate::remote::endpoint::DEFAULT_MAX_HANDSHAKES,
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            transport: Arc::new(TcpTransport),
            unreachable_after: Duration::from_secs(10),
        }
    }

    /// Sets how long a lost connection may stay lost before the node counts as gone.
    pub fn unreachable_after(mut self, after: Duration) -> Self {
        self.unreachable_after = after;
        self
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

    /// Sets how long a connection may take to handshake, TLS included.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how many inbound connections may be in handshake at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).max_handshakes(16);
    /// assert_eq!(s.max_handshakes, 16);
    /// ```
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n;
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
