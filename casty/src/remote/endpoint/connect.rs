//! Opening a connection to a peer and driving the initiator's side of the handshake, plus the
//! frame I/O both handshakes share, and what a refused handshake does to an association.
//!
//! The handshake itself is the pure state machine in `handshake`; this file only reads and
//! writes its frames, under the settings' deadline, with frames limited to
//! [`frame::HANDSHAKE_MAX_FRAME`] until it is done.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::remote::frame::{self, Frame, FrameDecoder};
use crate::remote::handshake::{self, Initiator, Peer, Refusal, NONCE_LEN};
use crate::remote::transport::BoxStream;
use crate::remote::NodeAddress;

use super::association::Association;
use super::counters::Counters;
use super::Shared;

/// A fresh handshake nonce.
pub(super) fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    if getrandom::fill(&mut n).is_err() {
        // No OS randomness: fall back to a non-cryptographic source rather than a fixed value.
        for b in &mut n {
            *b = fastrand::u8(..);
        }
    }
    n
}

/// Reads one frame, within `timeout`.
pub(super) async fn read_frame(
    stream: &mut BoxStream,
    dec: &mut FrameDecoder,
    timeout: Duration,
) -> io::Result<Frame> {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(timeout, async {
        loop {
            if let Some(f) = dec.next_frame().map_err(io::Error::other)? {
                return Ok(f);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection",
                ));
            }
            dec.push(&chunk[..n]);
        }
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}

/// Writes one frame and flushes it.
pub(super) async fn write_frame(
    stream: &mut BoxStream,
    frame: &Frame,
    max: usize,
) -> io::Result<()> {
    let mut buf = Vec::new();
    frame::encode(frame, max, &mut buf).map_err(io::Error::other)?;
    stream.write_all(&buf).await?;
    stream.flush().await
}

/// Why an outbound connection attempt failed.
pub(super) enum ConnectError {
    Io(io::Error),
    Refused(Refusal),
}

/// Connects to `peer` and performs the initiator's handshake, under the handshake deadline for
/// the connect and for each answer.
pub(super) async fn connect(
    shared: &Shared,
    peer: &NodeAddress,
) -> Result<(BoxStream, Peer), ConnectError> {
    let timeout = shared.settings.handshake_timeout;
    let mut stream = tokio::time::timeout(timeout, shared.transport.connect(&peer.socket_addr()))
        .await
        .map_err(|_| {
            ConnectError::Io(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
        })?
        .map_err(ConnectError::Io)?;
    let max = frame::HANDSHAKE_MAX_FRAME;
    let (init, hello) = Initiator::start(shared.local.clone(), nonce());
    write_frame(&mut stream, &hello, max)
        .await
        .map_err(ConnectError::Io)?;
    let mut dec = FrameDecoder::new(max);
    let answer = read_frame(&mut stream, &mut dec, timeout)
        .await
        .map_err(ConnectError::Io)?;
    let screened = handshake::screen(&answer, |uid| shared.quarantine.contains(uid));
    match screened.and_then(|()| init.on_frame(answer)) {
        Ok((confirm, p)) => {
            write_frame(&mut stream, &confirm, max)
                .await
                .map_err(ConnectError::Io)?;
            Ok((stream, p))
        }
        Err(failed) => {
            if let Some(f) = failed.frame() {
                let _ = write_frame(&mut stream, &f, max).await;
            }
            Err(ConnectError::Refused(failed.refusal))
        }
    }
}

/// Counts, logs and hands up a refused handshake with `peer`, by either side.
pub(super) fn report_refusal(shared: &Shared, peer: &str, refusal: &Refusal) {
    Counters::add(&shared.counters.refused, 1);
    tracing::warn!(node = %shared.address, peer, reason = %refusal, "handshake refused");
    shared.inbound.refused(peer, refusal);
}

/// The peer of an outbound association refused us: sends to it are refused from now until a
/// handshake succeeds, and what is queued for it is lost.
pub(super) fn refused_by(shared: &Shared, assoc: &Association, refusal: &Refusal) {
    report_refusal(shared, &assoc.peer.to_string(), refusal);
    *assoc.refusal.lock().unwrap_or_else(|e| e.into_inner()) =
        format!("{} refused the handshake: {refusal}", assoc.peer);
    assoc.refusing.store(true, Ordering::Release);
    // Senders waiting for room are refused now instead.
    assoc.room.notify_waiters();
    shared.drop_queued(
        assoc,
        &format!("{} refused the handshake: {refusal}", assoc.peer),
    );
    shared.inbound.node_refused(&assoc.peer, refusal);
}
