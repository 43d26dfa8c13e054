//! The inbound side: the listener, and one task per accepted connection that runs the
//! responder's handshake and then reads frames and hands them up.
//!
//! The listener only accepts, so a silent peer delays nobody else. Until its handshake is done a
//! connection may send frames of [`frame::HANDSHAKE_MAX_FRAME`] bytes at most, and only
//! `max_handshakes` connections may be in handshake at once ([`HandshakeSlot`]): more are closed
//! at once, unread. After the handshake, a malformed frame or a `Define` past the name table's
//! bounds closes that connection only.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::actor::behavior::BoxFuture;
use crate::remote::frame::{self, Decoded, Frame, FrameDecoder};
use crate::remote::handshake::{self, Peer, Responder, Step};
use crate::remote::transport::{BoxStream, Fate, Listener, Severer};
use crate::remote::NodeAddress;

use super::compact_table::CompactTable;
use super::connect::{nonce, read_frame, report_refusal, write_frame};
use super::counters::Counters;
use super::inbound::PeerInfo;
use super::Shared;

/// One of the `max_handshakes` places for inbound connections in handshake, held by a connection
/// from its accept until its handshake ends, however it ends.
struct HandshakeSlot(Arc<Shared>);

impl HandshakeSlot {
    /// A free place, if there is one.
    fn take(shared: &Arc<Shared>) -> Option<HandshakeSlot> {
        let max = shared.settings.max_handshakes;
        shared
            .handshaking
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(HandshakeSlot(shared.clone()))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.handshaking.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections until `stop` says the endpoint shuts down, each in a task of its own.
pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    mut listener: Box<dyn Listener>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, from)) => {
                // Unauthenticated connections are cheap to open: only so many may be in
                // handshake at once, and the rest are closed unread.
                let Some(slot) = HandshakeSlot::take(&shared) else {
                    Counters::add(&shared.counters.handshakes_shed, 1);
                    tracing::warn!(%from, "closing: too many connections in handshake");
                    drop(stream);
                    continue;
                };
                // A TLS handshake, if any, runs in the connection's own task.
                let stream = listener.upgrade(stream, from);
                let span = tracing::info_span!("remote-inbound", from = %from);
                let token = shared.task_token();
                tokio::spawn(
                    async move {
                        let _token = token;
                        inbound_connection(slot, stream, from).await
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The responder's side of an inbound connection's handshake: the transport's upgrade (TLS),
/// then `Hello` / `Welcome` / `Confirm`, with frames limited to [`frame::HANDSHAKE_MAX_FRAME`].
/// Returns the stream, its decoder (which may hold frames that came right after), and the peer.
async fn inbound_handshake(
    shared: &Shared,
    upgrade: BoxFuture<'static, io::Result<BoxStream>>,
    from: SocketAddr,
) -> Option<(BoxStream, FrameDecoder, Peer)> {
    let max = frame::HANDSHAKE_MAX_FRAME;
    let timeout = shared.settings.handshake_timeout;
    let mut stream = match upgrade.await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "inbound connection refused by the transport");
            return None;
        }
    };
    let mut dec = FrameDecoder::new(max);
    let mut responder = Responder::new(shared.local.clone(), nonce());
    let peer = loop {
        let f = match read_frame(&mut stream, &mut dec, timeout).await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "inbound handshake failed");
                if e.kind() == io::ErrorKind::Other {
                    Counters::add(&shared.counters.malformed, 1);
                }
                return None;
            }
        };
        let screened = handshake::screen(&f, |uid| shared.quarantine.contains(uid));
        match screened.and_then(|()| responder.on_frame(f)) {
            Ok(Step::Send(frame, next)) => {
                if write_frame(&mut stream, &frame, max).await.is_err() {
                    return None;
                }
                responder = *next;
            }
            Ok(Step::Done(p)) => break p,
            Err(failed) => {
                if let Some(f) = failed.frame() {
                    let _ = write_frame(&mut stream, &f, max).await;
                }
                report_refusal(shared, &from.to_string(), &failed.refusal);
                return None;
            }
        }
    };
    Some((stream, dec, peer))
}

/// One accepted connection, from its handshake to its end.
async fn inbound_connection(
    slot: HandshakeSlot,
    upgrade: BoxFuture<'static, io::Result<BoxStream>>,
    from: SocketAddr,
) {
    let shared = slot.0.clone();
    if shared.closed.load(Ordering::Acquire) {
        // Shutting down: nobody new gets in.
        return;
    }
    let timeout = shared.settings.handshake_timeout;
    // One deadline for the whole handshake, the transport's part included.
    let handshake = tokio::time::timeout(timeout, inbound_handshake(&shared, upgrade, from)).await;
    drop(slot);
    let (mut stream, mut dec, peer) = match handshake {
        Ok(Some(done)) => done,
        Ok(None) => return,
        Err(_) => {
            tracing::debug!("inbound handshake timed out");
            return;
        }
    };
    dec.set_max(shared.settings.max_frame);
    let address = match NodeAddress::parse_actor(&peer.address) {
        Ok((a, _)) => a,
        Err(e) => {
            tracing::warn!(error = %e, "the peer announced a bad address");
            return;
        }
    };
    let info = PeerInfo {
        address,
        uid: peer.uid,
    };
    shared.note_incarnation(&info.address, info.uid);
    shared.inbound.accepted(&info);
    shared.peer_connected_to_us(&info.address);
    let severer = Severer::default();
    shared.transport.register(&info.address, &severer);
    let _link = shared.quarantine.link(info.uid, &severer);
    let mut stop = shared.shutdown.subscribe();
    // Severed or shutting down (true): one future for the connection's life, not two per read.
    let closed = async {
        tokio::select! {
            _ = severer.severed() => false,
            // Also if the shutdown began before this connection subscribed.
            _ = stop.wait_for(|&stopping| stopping) => true,
        }
    };
    let mut closed = std::pin::pin!(closed);
    let mut chunk = vec![0u8; 64 * 1024];
    // Recipients this peer named for compact envelopes, and what the handler cached for each.
    let mut names = CompactTable::default();
    // Messages the link dropped on arrival (fault injection), reported once per read.
    let mut inbound_lost = 0u64;
    let mut first_inbound_lost: Option<(String, u64)> = None;
    loop {
        // Frames that came in with the handshake's last bytes are already buffered.
        loop {
            if severer.is_severed() {
                return;
            }
            let decoded = match dec.next() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    Counters::add(&shared.counters.malformed, 1);
                    tracing::warn!(peer = %info.address, error = %e, "closing the connection");
                    return;
                }
            };
            Counters::add(&shared.counters.frames_in, 1);
            // Names are connection state, not traffic: faults do not apply to them.
            if let Decoded::Frame(Frame::Define { id, path, .. }) = decoded {
                if let Err(e) = names.define(id, path) {
                    Counters::add(&shared.counters.malformed, 1);
                    tracing::warn!(peer = %info.address, id, "closing: {e}");
                    return;
                }
                continue;
            }
            match shared.transport.inbound(&info.address) {
                Fate::Pass => {}
                Fate::Drop => {
                    Counters::add(&shared.counters.dropped, 1);
                    let recipient = match &decoded {
                        Decoded::Compact { id, uid, .. } => {
                            names.get_mut(*id).map(|(p, _)| (p.clone(), *uid))
                        }
                        Decoded::Envelope { path, uid, .. } => Some((path.to_string(), *uid)),
                        Decoded::Frame(_) => None,
                    };
                    if let Some(r) = recipient {
                        inbound_lost += 1;
                        first_inbound_lost.get_or_insert(r);
                    }
                    continue;
                }
                Fate::Delay(d) => tokio::time::sleep(d).await,
            }
            match decoded {
                Decoded::Compact { id, uid, payload } => {
                    let Some((path, cache)) = names.get_mut(id) else {
                        Counters::add(&shared.counters.malformed, 1);
                        tracing::warn!(peer = %info.address, id, "closing: an undefined recipient id");
                        return;
                    };
                    shared.inbound.compact(&info, path, uid, &payload, cache);
                }
                Decoded::Envelope {
                    path,
                    uid,
                    manifest,
                    payload,
                } => shared.inbound.envelope(&info, path, uid, manifest, payload),
                Decoded::Frame(Frame::Bye) => {
                    // Stop writing to the peer before anyone learns that it left.
                    shared.retire_connection(&info.address, info.uid);
                    shared.inbound.frame(&info, Frame::Bye);
                }
                Decoded::Frame(f) => shared.inbound.frame(&info, f),
            }
        }
        if inbound_lost > 0 {
            let first = first_inbound_lost.take();
            shared.inbound.dropped(
                &info.address,
                first.as_ref().map(|(p, u)| (p.as_str(), *u)),
                std::mem::take(&mut inbound_lost),
                "dropped on arrival by the link (fault injection)",
            );
        }
        let n = tokio::select! {
            biased;
            stopping = &mut closed => {
                // A peer our association is connected to gets our goodbye there, behind our last
                // replies and notices; any other gets it here, on its own connection, so it need
                // not wait for its failure detection either.
                let ours = shared
                    .assocs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&info.address)
                    .is_some_and(|a| a.connected.load(Ordering::Acquire));
                if stopping && !ours {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        write_frame(&mut stream, &Frame::Bye, shared.settings.max_frame),
                    )
                    .await;
                }
                return;
            }
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        Counters::add(&shared.counters.bytes_in, n as u64);
        dec.push(&chunk[..n]);
    }
}
