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
/// Start from [`RemoteSettings::new`] (the defaults) and change what you need with the setters,
/// one per field. The fields can be read, and assigned too, but the type is `#[non_exhaustive]`:
/// it cannot be built with struct-literal syntax outside casty, so a field added later breaks
/// no code.
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteSettings;
/// use std::time::Duration;
///
/// let s = RemoteSettings::new("127.0.0.1", 0)
///     .secret("s3cret")
///     .max_frame(64 * 1024)
///     .outbound_capacity(10_000)
///     .handshake_timeout(Duration::from_secs(2))
///     .max_handshakes(32)
///     .backoff(Duration::from_millis(20), Duration::from_secs(1))
///     .unreachable_after(Duration::from_secs(3));
/// assert_eq!(s.port, 0);
/// assert_eq!(s.outbound_capacity, 10_000);
/// assert_eq!(s.backoff, (Duration::from_millis(20), Duration::from_secs(1)));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RemoteSettings {
    /// The host to bind and to announce.
    pub host: String,
    /// The port (0 picks a free one).
    pub port: u16,
    /// A shared secret every peer must prove (HMAC challenge-response; it never travels).
    pub secret: Option<Vec<u8>>,
    /// The largest frame accepted or sent (default 256 KiB).
    pub max_frame: usize,
    /// Frames buffered per peer (default 100,000). Past it, `send(..).await` on a ref to an
    /// actor there waits for room, `try_tell` hands the message back, `tell` makes it a dead
    /// letter, and an ask waits within its timeout, then fails with
    /// [`AskError::OutboundFull`](crate::AskError::OutboundFull).
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
    /// This incarnation's uid (default: `None`, a fresh random one). Set it only where a run
    /// must repeat exactly, as in a seeded simulation: two incarnations with one uid are one.
    pub uid: Option<u64>,
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
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// use std::time::Duration;
    /// let s = RemoteSettings::new("0.0.0.0", 25520);
    /// assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 25520));
    /// assert_eq!(s.secret, None);
    /// assert_eq!(s.max_frame, casty::remote::DEFAULT_MAX_FRAME);
    /// assert_eq!(s.unreachable_after, Duration::from_secs(10));
    /// ```
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
            uid: None,
        }
    }

    /// Sets the host to bind and to announce.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).host("10.0.0.7");
    /// assert_eq!(s.host, "10.0.0.7");
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the port to bind (0 picks a free one).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).port(25520);
    /// assert_eq!(s.port, 25520);
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Requires every peer to prove `secret` (HMAC challenge-response; it never travels).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).secret("s3cret");
    /// assert_eq!(s.secret.as_deref(), Some(&b"s3cret"[..]));
    /// ```
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Sets the largest frame accepted or sent, in bytes (default 256 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).max_frame(64 * 1024);
    /// assert_eq!(s.max_frame, 65_536);
    /// ```
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets how many frames may wait for one peer (default 100,000). Past it, a ref to an
    /// actor there acts as a full `Reject` mailbox: `send(..).await` waits for room (the writer
    /// makes room as it sends), `try_tell` hands the message back, `tell` makes it a dead
    /// letter. A burst from one producer sent with `send(..).await` loses nothing whatever the
    /// bound; a larger bound only lets `tell` run further ahead of the network, at the cost of
    /// memory and latency to a slow peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).outbound_capacity(1_000);
    /// assert_eq!(s.outbound_capacity, 1_000);
    /// ```
    pub fn outbound_capacity(mut self, frames: usize) -> Self {
        self.outbound_capacity = frames;
        self
    }

    /// Sets how long a connection may take to handshake, TLS included (default 5 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// use std::time::Duration;
    /// let s = RemoteSettings::new("127.0.0.1", 0).handshake_timeout(Duration::from_secs(1));
    /// assert_eq!(s.handshake_timeout, Duration::from_secs(1));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how many inbound connections may be in handshake at once (default 128).
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

    /// Sets the reconnection backoff: the first wait after a lost connection, doubled at each
    /// failed attempt up to `max` (default 50 ms and 5 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// use std::time::Duration;
    /// let s = RemoteSettings::new("127.0.0.1", 0)
    ///     .backoff(Duration::from_millis(20), Duration::from_millis(500));
    /// assert_eq!(s.backoff, (Duration::from_millis(20), Duration::from_millis(500)));
    /// ```
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// Uses another transport (default TCP).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::{RemoteSettings, TcpTransport};
    /// use std::sync::Arc;
    /// let s = RemoteSettings::new("127.0.0.1", 0).transport(Arc::new(TcpTransport));
    /// # let _ = s;
    /// ```
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Sets how long a lost connection may stay lost before the node counts as gone: its watched
    /// actors are `Terminated` and asks to it fail (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// use std::time::Duration;
    /// let s = RemoteSettings::new("127.0.0.1", 0).unreachable_after(Duration::from_secs(2));
    /// assert_eq!(s.unreachable_after, Duration::from_secs(2));
    /// ```
    pub fn unreachable_after(mut self, after: Duration) -> Self {
        self.unreachable_after = after;
        self
    }

    /// Sets this incarnation's uid instead of drawing a random one (see [`RemoteSettings::uid`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).with_uid(42);
    /// assert_eq!(s.uid, Some(42));
    /// ```
    pub fn with_uid(mut self, uid: u64) -> Self {
        self.uid = Some(uid.max(1));
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

#[cfg(test)]
mod tests {
    use super::*;

    // Every field has a setter, and each setter changes its own field and no other.
    #[test]
    fn each_setter_sets_its_field_and_only_that_one() {
        let ms = Duration::from_millis;
        let base = RemoteSettings::new("127.0.0.1", 0);
        let transport: Arc<dyn Transport> = Arc::new(TcpTransport);
        let s = base
            .clone()
            .host("10.0.0.7")
            .port(25520)
            .secret("s3cret")
            .max_frame(64 * 1024)
            .outbound_capacity(7)
            .handshake_timeout(ms(1500))
            .max_handshakes(3)
            .backoff(ms(20), ms(900))
            .transport(transport.clone())
            .unreachable_after(ms(2500))
            .with_uid(77);
        // Destructured without `..`: a new field fails to compile here until it is checked too.
        let RemoteSettings {
            host,
            port,
            secret,
            max_frame,
            outbound_capacity,
            handshake_timeout,
            max_handshakes,
            backoff,
            transport: set_transport,
            unreachable_after,
            uid,
        } = s;
        assert_eq!(host, "10.0.0.7");
        assert_eq!(port, 25520);
        assert_eq!(secret.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(max_frame, 65_536);
        assert_eq!(outbound_capacity, 7);
        assert_eq!(handshake_timeout, ms(1500));
        assert_eq!(max_handshakes, 3);
        assert_eq!(backoff, (ms(20), ms(900)));
        assert!(Arc::ptr_eq(&set_transport, &transport));
        assert_eq!(unreachable_after, ms(2500));
        assert_eq!(uid, Some(77));

        // One setter at a time leaves the defaults of the other fields alone.
        type Fields = (
            String,
            u16,
            Option<Vec<u8>>,
            usize,
            usize,
            Duration,
            usize,
            (Duration, Duration),
            Duration,
            Option<u64>,
        );
        let fields = |s: &RemoteSettings| -> Fields {
            (
                s.host.clone(),
                s.port,
                s.secret.clone(),
                s.max_frame,
                s.outbound_capacity,
                s.handshake_timeout,
                s.max_handshakes,
                s.backoff,
                s.unreachable_after,
                s.uid,
            )
        };
        let check = |set: RemoteSettings, change: &dyn Fn(&mut Fields)| {
            let mut expected = fields(&base);
            change(&mut expected);
            assert_eq!(fields(&set), expected);
        };
        check(base.clone().host("h"), &|f| f.0 = "h".into());
        check(base.clone().port(9), &|f| f.1 = 9);
        check(base.clone().secret("x"), &|f| f.2 = Some(b"x".to_vec()));
        check(base.clone().max_frame(5000), &|f| f.3 = 5000);
        check(base.clone().outbound_capacity(7), &|f| f.4 = 7);
        check(base.clone().handshake_timeout(ms(1)), &|f| f.5 = ms(1));
        check(base.clone().max_handshakes(3), &|f| f.6 = 3);
        check(base.clone().backoff(ms(2), ms(3)), &|f| {
            f.7 = (ms(2), ms(3))
        });
        check(base.clone().unreachable_after(ms(4)), &|f| f.8 = ms(4));
        check(base.clone().with_uid(5), &|f| f.9 = Some(5));
        check(base.clone().transport(transport.clone()), &|_| {});
        assert!(!Arc::ptr_eq(&base.transport, &transport));
    }
}
