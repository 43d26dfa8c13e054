//! The writer task of one connection of an association: batched writes, and what the peer may
//! still say on that connection.
//!
//! It names every recipient again first (the other side of a new connection has an empty
//! table), then writes whatever senders queued, a whole buffer per `write_all`. When the
//! transport injects no faults and the peer accepts our frame limit, batches go out as they
//! are, and a sender that finds the connection idle may write itself; otherwise only this task
//! writes, and it looks at each frame ([`filter_batch`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::watch;

use crate::remote::frame::{self, Frame, FrameDecoder};
use crate::remote::handshake::Refusal;
use crate::remote::transport::{BoxStream, Fate, Severer};

use super::association::Association;
use super::connect::refused_by;
use super::counters::Counters;
use super::inbound::PeerInfo;
use super::Shared;

/// What a peer may say on a connection we opened, after the handshake.
enum PeerSaid {
    /// The connection ended.
    Closed,
    /// A late refusal (it quarantined us).
    Refuse(String),
    /// It is shutting down.
    Bye,
}

/// Walks the frames of a batch, applying the transport's fate and the peer's limit to each.
/// Appends the frames to write to `out`, and returns how many there are and the longest delay
/// asked for.
fn filter_batch(
    shared: &Shared,
    assoc: &Association,
    batch: &[u8],
    out: &mut Vec<u8>,
) -> (usize, Option<Duration>) {
    let limit = assoc.limit.load(Ordering::Relaxed);
    let mut frames = 0;
    let mut delay: Option<Duration> = None;
    // Lost messages, reported once for the batch: how many, the first one, and why.
    let mut lost = 0u64;
    let mut first_lost: Option<&[u8]> = None;
    let mut why = "";
    // The batch from the current frame on: where the first lost message starts, its recipient
    // is read from there.
    let mut rest = batch;
    for f in frame::each_frame(batch) {
        let len = frame::body_len(f);
        let keep = if len > limit {
            tracing::warn!(
                size = len,
                limit,
                "dropping a frame larger than the peer accepts"
            );
            why = "larger than the peer accepts";
            false
        } else {
            match shared.transport.outbound(&assoc.peer) {
                Fate::Pass => true,
                Fate::Drop => {
                    why = "dropped by the link (fault injection)";
                    false
                }
                Fate::Delay(d) => {
                    delay = Some(delay.map_or(d, |x| x.max(d)));
                    true
                }
            }
        };
        if keep {
            out.extend_from_slice(f);
            frames += 1;
        } else {
            Counters::add(&shared.counters.dropped, 1);
            if !frame::is_define(f) {
                lost += 1;
                first_lost.get_or_insert(rest);
            }
        }
        rest = &rest[f.len()..];
    }
    if let Some(from) = first_lost {
        let first = frame::first_recipient(from, |id| assoc.path_of(id));
        shared.inbound.dropped(
            &assoc.peer,
            first.as_ref().map(|(p, u)| (p.as_str(), *u)),
            lost,
            why,
        );
    }
    (frames, delay)
}

/// Ends a connection's use of the association's write half, however the writer leaves.
struct Release<'a>(&'a Association);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue();
        q.out = None;
        q.direct = false;
        q.unflushed = false;
        q.generation += 1;
    }
}

/// Returns the write half to the queue for the next writer, unless the connection was retired
/// meanwhile (the peer said goodbye): then nobody may write to it any more.
fn put_back(assoc: &Association, generation: u64, w: WriteHalf<BoxStream>) -> bool {
    let mut q = assoc.queue();
    if q.generation != generation {
        return false;
    }
    q.out = Some(w);
    true
}

/// Every recipient name of `assoc`, as `Define` frames in number order, for a new connection.
/// `None` if one is larger than the peer accepts.
fn replay_names(assoc: &Association) -> Option<Vec<u8>> {
    let names: Vec<(u32, String, String)> = assoc
        .queue()
        .naming
        .replay()
        .map(|(id, path, manifest)| (id, path.to_string(), manifest.to_string()))
        .collect();
    let limit = assoc.limit.load(Ordering::Relaxed);
    let mut prefix = Vec::new();
    for (id, path, manifest) in names {
        let define = Frame::Define { id, path, manifest };
        frame::encode(&define, limit, &mut prefix).ok()?;
    }
    Some(prefix)
}

/// Writes what is queued for the peer on `stream` until the connection ends, the peer refuses
/// or leaves, or the endpoint shuts down (then it flushes what is queued, briefly).
pub(super) async fn write_loop(
    shared: &Shared,
    assoc: &Association,
    info: &PeerInfo,
    stream: BoxStream,
    severer: &Severer,
    stop: &mut watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    // The peer writes nothing on this connection after the handshake, except a refusal or its
    // goodbye.
    let max = shared.settings.max_frame;
    let mut reader = Box::pin(async move {
        let mut dec = FrameDecoder::new(max);
        let mut chunk = [0u8; 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return PeerSaid::Closed,
                Ok(n) => {
                    dec.push(&chunk[..n]);
                    loop {
                        match dec.next_frame() {
                            Ok(Some(Frame::Refuse { reason })) => return PeerSaid::Refuse(reason),
                            Ok(Some(Frame::Bye)) => return PeerSaid::Bye,
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(_) => return PeerSaid::Closed,
                        }
                    }
                }
            }
        }
    });
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut filtered = Vec::with_capacity(64 * 1024);
    // A new connection has a fresh table on the other side: name every recipient again before
    // any compact envelope that may be queued.
    let Some(prefix) = replay_names(assoc) else {
        return;
    };
    if !prefix.is_empty() && wr.write_all(&prefix).await.is_err() {
        return;
    }
    // The usual case writes each batch as it is, and lets senders write when the connection is
    // idle: no faults to apply, and every queued frame is within the peer's limit (which is
    // ours). Otherwise only this task writes, and it looks at each frame.
    let as_is = !shared.transport.filters_frames()
        && assoc.limit.load(Ordering::Relaxed) >= shared.settings.max_frame;
    let _release = Release(assoc);
    // Long-lived, so that each wake-up of the writer does not subscribe to them again.
    let mut severed = std::pin::pin!(severer.severed());
    let mut stopping = std::pin::pin!(stop.changed());
    // This connection's generation: a new one means it was retired.
    let generation = {
        let mut q = assoc.queue();
        q.out = Some(wr);
        q.direct = as_is;
        q.generation
    };
    loop {
        let (taken, queued, unflushed) = {
            let mut q = assoc.queue();
            if q.generation != generation {
                return;
            }
            if q.frames > 0 || q.unflushed {
                // `None` while a sender writes; it wakes us again if it leaves work behind.
                match q.out.take() {
                    Some(w) => {
                        std::mem::swap(&mut q.buf, &mut batch);
                        let unflushed = std::mem::take(&mut q.unflushed);
                        let (frames, wanted) = q.take_frames();
                        drop(q);
                        // The queue is empty again: senders waiting for room may go on
                        // while this batch is written.
                        assoc.room_made(wanted);
                        (Some(w), frames, unflushed)
                    }
                    None => (None, 0, false),
                }
            } else {
                // Idle: the next sender may write itself.
                q.direct = as_is;
                (None, 0, false)
            }
        };
        let Some(mut w) = taken else {
            tokio::select! {
                _ = assoc.wake.notified() => continue,
                r = &mut reader => {
                    match r {
                        PeerSaid::Refuse(reason) => {
                            refused_by(shared, assoc, &Refusal::ByPeer(reason));
                        }
                        PeerSaid::Bye => {
                            shared.retire_connection(&info.address, info.uid);
                            shared.inbound.peer_left(info);
                        }
                        PeerSaid::Closed => {}
                    }
                    return;
                }
                _ = &mut severed => return,
                _ = &mut stopping => {
                    // Shutting down: flush what is queued (Terminated notices, last replies),
                    // briefly, then close.
                    let (w, last) = {
                        let mut q = assoc.queue();
                        q.frames = 0;
                        (q.out.take(), std::mem::take(&mut q.buf))
                    };
                    // The endpoint is closed: senders waiting for room give up.
                    assoc.room.notify_waiters();
                    let Some(mut w) = w else { return };
                    let mut out = Vec::new();
                    filter_batch(shared, assoc, &last, &mut out);
                    let _ = tokio::time::timeout(Duration::from_millis(500), async {
                        w.write_all(&out).await?;
                        w.flush().await
                    })
                    .await;
                    let _ = tokio::time::timeout(Duration::from_millis(100), w.shutdown()).await;
                    return;
                }
            }
        };
        let frames = if as_is {
            std::mem::swap(&mut batch, &mut filtered);
            queued
        } else {
            filtered.clear();
            let (frames, delay) = filter_batch(shared, assoc, &batch, &mut filtered);
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            frames
        };
        batch.clear();
        if filtered.is_empty() && !unflushed {
            if !put_back(assoc, generation, w) {
                return;
            }
            continue;
        }
        if severer.is_severed() {
            return;
        }
        // A TLS stream may keep part of a write buffered until flushed.
        let written = tokio::select! {
            biased;
            _ = &mut severed => return,
            r = async {
                w.write_all(&filtered).await?;
                w.flush().await
            } => r,
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; reconnecting");
            return;
        }
        if !put_back(assoc, generation, w) {
            return;
        }
        Counters::add(&shared.counters.frames_out, frames as u64);
        Counters::add(&shared.counters.bytes_out, filtered.len() as u64);
        filtered.clear();
        // Keep a large buffer from being held forever after a burst.
        if batch.capacity() > 4 * 1024 * 1024 {
            batch = Vec::with_capacity(64 * 1024);
        }
    }
}
