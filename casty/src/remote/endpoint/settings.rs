//! How an endpoint is configured.

use std::time::Duration;

use crate::remote::frame;

/// How many inbound connections may be in handshake at once, by default.
pub(crate) const DEFAULT_MAX_HANDSHAKES: usize = 128;

/// How an endpoint behaves.
#[derive(Debug, Clone)]
pub(crate) struct EndpointSettings {
    pub(crate) system: String,
    /// The host to bind and to announce.
    pub(crate) host: String,
    /// The port to bind (0 for any free port).
    pub(crate) port: u16,
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) max_frame: usize,
    /// Frames an association buffers for a peer before refusing more.
    pub(crate) outbound_capacity: usize,
    pub(crate) handshake_timeout: Duration,
    /// Inbound connections that may be in handshake at once; more are closed at once.
    pub(crate) max_handshakes: usize,
    /// The first wait before reconnecting to a peer; each failed attempt doubles it.
    pub(crate) backoff_min: Duration,
    /// The longest wait before reconnecting to a peer.
    pub(crate) backoff_max: Duration,
}

impl EndpointSettings {
    pub(crate) fn new(system: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        EndpointSettings {
            system: system.into(),
            host: host.into(),
            port,
            secret: None,
            max_frame: frame::DEFAULT_MAX_FRAME,
            outbound_capacity: 100_000,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}
