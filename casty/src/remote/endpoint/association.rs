//! One peer's outbound association: its queue of encoded frames, its recipient names, and the
//! sending side of [`Route`], including a sender's own write when the connection is idle.
//!
//! The queue (`OutQueue`) is the one place senders and the writer task meet. Senders append
//! encoded frames to its buffer under its lock; the writer swaps the whole buffer out. The
//! connection's write half lives in the queue while nobody writes, so whoever takes it (the
//! writer, or a sender that finds the connection idle) is the only writer until it puts it back.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncWrite, WriteHalf};
use tokio::sync::Notify;

use crate::remote::frame::{self, Frame, FrameError};
use crate::remote::transport::BoxStream;
use crate::remote::NodeAddress;

use super::counters::Counters;
use super::naming::{Defined, Naming};
use super::Shared;

/// Why a frame was not queued for a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The frame is too large, or could not be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer's outbound queue is full (it is slow or unreachable).
    #[error("the outbound queue to {0} is full")]
    Overflow(String),
    /// The endpoint is shut down.
    #[error("remoting is shut down")]
    Closed,
    /// The peer refused the last handshake; sends are refused until one succeeds.
    #[error("{0}")]
    Refused(String),
}

/// What is waiting to be written to one peer, and who may write it.
pub(super) struct OutQueue {
    /// Encoded frames, length prefixes included.
    pub(super) buf: Vec<u8>,
    /// How many frames `buf` holds.
    pub(super) frames: usize,
    /// Recipients named for compact envelopes on this association.
    pub(super) naming: Naming,
    /// The connection's write half while nobody writes to it. The writer task, or a sender that
    /// finds it idle, takes it for one write and puts it back.
    pub(super) out: Option<WriteHalf<BoxStream>>,
    /// Whether senders may write themselves: the transport injects no per-frame faults and the
    /// peer accepts our frame limit.
    pub(super) direct: bool,
    /// Bumped when a connection ends, so a sender holding its write half drops it.
    pub(super) generation: u64,
    /// A sender's write left bytes buffered inside the stream (TLS) that still need a flush.
    pub(super) unflushed: bool,
    /// A spare buffer, swapped in while a sender writes the current one.
    pub(super) spare: Vec<u8>,
    /// A sender waits for room ([`Route::room`]): whoever empties the queue wakes it.
    pub(super) room_wanted: bool,
}

impl OutQueue {
    /// Takes the frames queued (the caller took or dropped `buf`), and says whether a sender
    /// waiting for room is to be woken ([`Association::room_made`]).
    pub(super) fn take_frames(&mut self) -> (usize, bool) {
        (
            std::mem::take(&mut self.frames),
            std::mem::take(&mut self.room_wanted),
        )
    }
}

/// One peer's outbound association.
pub(super) struct Association {
    pub(super) peer: NodeAddress,
    pub(super) queue: Mutex<OutQueue>,
    /// Wakes the writer task.
    pub(super) wake: Notify,
    /// Wakes the senders waiting for room in the queue.
    pub(super) room: Notify,
    /// The frame limit agreed with the peer (the local limit until the first handshake).
    pub(super) limit: AtomicUsize,
    /// The peer's incarnation as of the last handshake in either direction (0: none yet).
    pub(super) peer_uid: AtomicU64,
    /// Set while the peer refuses our handshake, with the refusal; sends are refused meanwhile.
    pub(super) refusing: AtomicBool,
    pub(super) refusal: Mutex<String>,
    /// Whether a connection is up (its writer runs), so what is queued goes out.
    pub(super) connected: AtomicBool,
    /// Cuts the reconnection backoff short: the peer has just connected to us, so it is up.
    pub(super) retry_now: Notify,
}

impl Association {
    /// An association with `peer`, not connected yet, whose frames are limited to `max_frame`
    /// until a handshake says otherwise.
    pub(super) fn new(peer: &NodeAddress, max_frame: usize, peer_uid: u64) -> Association {
        Association {
            peer: peer.clone(),
            queue: Mutex::new(OutQueue {
                buf: Vec::with_capacity(64 * 1024),
                frames: 0,
                naming: Naming::default(),
                out: None,
                direct: false,
                generation: 0,
                unflushed: false,
                spare: Vec::new(),
                room_wanted: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            limit: AtomicUsize::new(max_frame),
            peer_uid: AtomicU64::new(peer_uid),
            refusing: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            refusal: Mutex::new(String::new()),
            retry_now: Notify::new(),
        }
    }

    /// The queue, locked (whatever a panicking holder left).
    pub(super) fn queue(&self) -> MutexGuard<'_, OutQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the senders waiting for room, if `wanted` (from [`OutQueue::take_frames`]).
    pub(super) fn room_made(&self, wanted: bool) {
        if wanted {
            self.room.notify_waiters();
        }
    }

    /// The path this association numbered `id`, for reporting a lost compact envelope.
    pub(super) fn path_of(&self, id: u32) -> Option<String> {
        self.queue().naming.path(id).map(str::to_string)
    }
}

impl Shared {
    /// The peer incarnation `uid` at `peer` said goodbye, so our connection to it is dead,
    /// though its writer may not have seen the socket close yet. Nothing is written to it from
    /// now on: what is sent next waits in the queue for the next connection (a node restarted
    /// on the same address) instead of going into a socket the peer closed. The writer sees the
    /// new generation and ends; the peer's own connections to us are left to end by themselves,
    /// so that what it sent before its goodbye is still read.
    pub(super) fn retire_connection(&self, peer: &NodeAddress, uid: u64) {
        let assoc = self
            .assocs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .cloned();
        if let Some(a) = assoc {
            if a.peer_uid.load(Ordering::Acquire) == uid {
                {
                    let mut q = a.queue();
                    q.out = None;
                    q.direct = false;
                    q.generation += 1;
                }
                a.wake.notify_one();
            }
        }
    }

    /// Empties `assoc`'s queue, reporting what it held as lost for `why`. The recipient names
    /// stay: they are defined again on the next connection.
    pub(super) fn drop_queued(&self, assoc: &Association, why: &str) {
        let (buf, frames) = {
            let mut q = assoc.queue();
            if q.frames == 0 {
                return;
            }
            let (frames, wanted) = q.take_frames();
            let buf = std::mem::take(&mut q.buf);
            drop(q);
            assoc.room_made(wanted);
            (buf, frames)
        };
        // Definitions queued with the messages are not messages.
        let defines = frame::count_defines(&buf);
        let lost = (frames - defines.min(frames)) as u64;
        Counters::add(&self.counters.dropped, frames as u64);
        if lost > 0 {
            let first = frame::first_recipient(&buf, |id| assoc.path_of(id));
            self.inbound.dropped(
                &assoc.peer,
                first.as_ref().map(|(p, u)| (p.as_str(), *u)),
                lost,
                why,
            );
        }
    }
}

/// A resolved association: sends to one peer without a lookup.
#[derive(Clone)]
pub(crate) struct Route {
    pub(super) shared: Arc<Shared>,
    pub(super) assoc: Arc<Association>,
}

impl Route {
    /// Queues `frame` (a [`Frame`] or a borrowed frame) for the peer.
    ///
    /// # Errors
    ///
    /// As [`super::Endpoint::send`].
    pub(crate) fn send<T: serde::Serialize + ?Sized>(&self, frame: &T) -> Result<(), SendError> {
        self.send_counting(frame, true)
    }

    /// [`Route::send`]; with `count_overflow` false, a frame refused because the queue is full
    /// is not counted as dropped (its sender keeps it, to offer it again once there is
    /// [`Route::room`]).
    ///
    /// # Errors
    ///
    /// As [`super::Endpoint::send`].
    pub(crate) fn send_counting<T: serde::Serialize + ?Sized>(
        &self,
        frame: &T,
        count_overflow: bool,
    ) -> Result<(), SendError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let assoc = &self.assoc;
        if assoc.refusing.load(Ordering::Acquire) {
            let why = assoc
                .refusal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return Err(SendError::Refused(why));
        }
        let limit = assoc.limit.load(Ordering::Relaxed);
        let mut q = assoc.queue();
        if q.frames >= shared.settings.outbound_capacity {
            drop(q);
            if count_overflow {
                Counters::add(&shared.counters.dropped, 1);
            }
            return Err(SendError::Overflow(assoc.peer.to_string()));
        }
        frame::encode(frame, limit, &mut q.buf)?;
        q.frames += 1;
        if q.direct && q.out.is_some() {
            // Nobody is writing: write now from this task instead of waking the writer.
            write_direct(shared, assoc, q);
            return Ok(());
        }
        // The writer drains everything queued when it wakes; one wake-up per batch is enough.
        let first = q.frames == 1;
        drop(q);
        if first {
            assoc.wake.notify_one();
        }
        Ok(())
    }

    /// Whether a send now would not be refused for a full queue: there is room, or it would
    /// fail for another reason (see [`Route::room`]).
    pub(crate) fn has_room(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            || self.assoc.refusing.load(Ordering::Acquire)
            || self.assoc.queue().frames < self.shared.settings.outbound_capacity
    }

    /// Resolves once the queue has room for a frame, or a send would fail for another reason
    /// (the endpoint is shut down, the peer refuses us). Whoever empties the queue (the writer
    /// taking a batch, a sender writing itself, a drop of what is queued) wakes the waiters.
    pub(crate) async fn room(&self) {
        let assoc = &self.assoc;
        loop {
            let notified = assoc.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking, so a wake-up between the look and the wait is not lost.
            notified.as_mut().enable();
            if self.shared.closed.load(Ordering::Acquire) || assoc.refusing.load(Ordering::Acquire)
            {
                return;
            }
            {
                let mut q = assoc.queue();
                if q.frames < self.shared.settings.outbound_capacity {
                    return;
                }
                q.room_wanted = true;
            }
            notified.await;
        }
    }

    /// The peer's incarnation as of the last handshake in either direction (0: none yet).
    pub(crate) fn incarnation(&self) -> u64 {
        self.assoc.peer_uid.load(Ordering::Acquire)
    }

    /// The number that names `path` (with `manifest`) on this association, defining it on first
    /// use. The definition is queued ahead of any envelope that uses it. `None` once the table
    /// is full ([`frame::MAX_COMPACT_NAMES`], [`frame::MAX_COMPACT_NAME_BYTES`]): that recipient
    /// travels with its full path.
    ///
    /// # Errors
    ///
    /// The definition is larger than the peer's frame limit; nothing is defined.
    pub(crate) fn define(&self, path: &str, manifest: &str) -> Result<Option<u32>, SendError> {
        let assoc = &self.assoc;
        let limit = assoc.limit.load(Ordering::Relaxed);
        let mut q = assoc.queue();
        let id = match q.naming.define(path, manifest) {
            Defined::Existing(id) => return Ok(Some(id)),
            Defined::Full => return Ok(None),
            Defined::New(id) => id,
        };
        let define = Frame::Define {
            id,
            path: path.to_string(),
            manifest: manifest.to_string(),
        };
        if let Err(e) = frame::encode(&define, limit, &mut q.buf) {
            q.naming.retract(id);
            return Err(e.into());
        }
        q.frames += 1;
        let first = q.frames == 1;
        drop(q);
        if first {
            assoc.wake.notify_one();
        }
        Ok(Some(id))
    }
}

/// Writes everything queued from the calling task, which found the connection idle. The queue
/// lock is not held during the write: senders meanwhile append to a fresh buffer. What the socket
/// does not take at once (and any flush a TLS stream still owes) is handed to the writer task, so
/// a sender never waits for the network.
fn write_direct(shared: &Shared, assoc: &Association, mut q: MutexGuard<'_, OutQueue>) {
    let generation = q.generation;
    let Some(mut w) = q.out.take() else { return };
    let mut buf = std::mem::take(&mut q.spare);
    std::mem::swap(&mut buf, &mut q.buf);
    let (frames, wanted) = q.take_frames();
    drop(q);
    assoc.room_made(wanted);
    let mut cx = Context::from_waker(Waker::noop());
    let mut pos = 0;
    let mut failed = false;
    while pos < buf.len() {
        match Pin::new(&mut w).poll_write(&mut cx, &buf[pos..]) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                failed = true;
                break;
            }
            Poll::Ready(Ok(n)) => pos += n,
            Poll::Pending => break,
        }
    }
    let flushed = !failed
        && pos == buf.len()
        && matches!(Pin::new(&mut w).poll_flush(&mut cx), Poll::Ready(Ok(())));
    Counters::add(&shared.counters.bytes_out, pos as u64);
    let mut q = assoc.queue();
    if q.generation != generation {
        // The connection ended while we wrote; its writer is gone and so is this write half.
        return;
    }
    if pos < buf.len() {
        // The rest goes ahead of whatever was queued meanwhile.
        buf.drain(..pos);
        buf.extend_from_slice(&q.buf);
        std::mem::swap(&mut buf, &mut q.buf);
        q.frames += frames;
    } else {
        Counters::add(&shared.counters.frames_out, frames as u64);
    }
    buf.clear();
    q.spare = buf;
    q.unflushed |= !flushed;
    q.out = Some(w);
    // One sender writes once, then the writer task takes over until the connection is idle
    // again: what comes meanwhile is batched rather than written one syscall per frame.
    q.direct = false;
    drop(q);
    assoc.wake.notify_one();
}
