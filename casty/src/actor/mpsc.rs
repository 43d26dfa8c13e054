//! The queue under an actor's mailbox: many producers, one consumer at a time.
//!
//! Messages live in blocks of [`BLOCK_CAP`] slots linked in a list. A producer claims the next
//! position with one compare-and-swap on the tail index, writes its message into that slot and
//! marks it ready; the producer that claims the last slot of a block links the next one first.
//! Nothing is allocated until the first push, and then one block per [`BLOCK_CAP`] messages.
//!
//! The consumer is one thread at a time, which it proves by holding a [`Consumer`]: taking one is
//! a swap on a flag, and while it is held, popping is a load of the block's ready bits, a read of
//! the message and a plain store of the head index, with no other read-modify-write. An actor's
//! run loop takes the consumer once and keeps it while it runs (`MailboxQueue::batch`); whoever
//! else must pop only tries, or, under `DropOldest`, where producers pop the oldest message
//! themselves, every pop takes the consumer for its own length. Once the consumer has read the
//! last slot of a block, every producer of that block has finished with it, so the consumer
//! frees it.
//!
//! The index scheme is crossbeam's `SegQueue`'s (each block spans `LAP` index positions; the last
//! position of a lap marks "the next block is being linked"), which makes a stale block pointer
//! harmless: a producer reads the tail index, then the tail block, and uses the block only if its
//! compare-and-swap on the unchanged index succeeds, and the block is stored before the index
//! enters its lap.
//!
//! This module, `handler_box`, `reply_slot`, `deadlines` and `park` are the crate's only `unsafe`
//! code; each block says why it is sound, and the tests below exercise order, drops of what is
//! left, zero-sized messages, many producers, and consumers that come and go.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Messages per block.
const BLOCK_CAP: usize = 31;
const _: () = assert!(BLOCK_CAP <= 32, "one ready bit per slot in a u32");
/// Index positions per block: one more than its slots, for "the next block is being linked".
const LAP: usize = BLOCK_CAP + 1;

/// One block of slots. A slot is exactly a `T`: which ones are written is one word of bits for
/// the whole block, so a block of 24-byte messages holds 24-byte slots.
struct Block<T> {
    next: AtomicPtr<Block<T>>,
    /// Bit `i` is set (with a full fence) once slot `i` is written.
    ready: AtomicU32,
    slots: [UnsafeCell<MaybeUninit<T>>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Self> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            ready: AtomicU32::new(0),
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        })
    }

    /// Writes slot `offset` and marks it ready.
    ///
    /// # Safety
    /// The caller claimed `offset` in this block (no one else writes it), and `offset < BLOCK_CAP`.
    #[inline]
    unsafe fn write(&self, offset: usize, value: T) {
        // SAFETY: the caller's contract: the slot is ours to write, once.
        unsafe {
            self.slots
                .get_unchecked(offset)
                .get()
                .write(MaybeUninit::new(value))
        };
        self.ready.fetch_or(1 << offset, Ordering::SeqCst);
    }

    #[inline]
    fn is_ready(&self, offset: usize) -> bool {
        self.ready.load(Ordering::SeqCst) & (1 << offset) != 0
    }
}

/// A multi-producer queue with one consumer at a time. See the module docs.
pub(crate) struct Queue<T> {
    tail_index: AtomicUsize,
    tail_block: AtomicPtr<Block<T>>,
    /// Written only by the holder of the consumer.
    head_index: AtomicUsize,
    /// Written by the holder of the consumer, and by the producer that links the first block.
    head_block: AtomicPtr<Block<T>>,
    consuming: AtomicBool,
}

// SAFETY: the queue hands each `T` from one thread to another (so `T: Send`), and never shares a
// `&T` between threads.
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above; all shared state is atomics, and the slots are written by the one producer
// that claimed them and read by the one consumer.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    pub(crate) const fn new() -> Self {
        Queue {
            tail_index: AtomicUsize::new(0),
            tail_block: AtomicPtr::new(ptr::null_mut()),
            head_index: AtomicUsize::new(0),
            head_block: AtomicPtr::new(ptr::null_mut()),
            consuming: AtomicBool::new(false),
        }
    }

    /// Appends a message. Lock-free: one compare-and-swap on the tail index (retried under
    /// contention), and one fetch-or to mark the slot ready, which also orders the push before the
    /// caller's next load (the mailbox's wake-up check relies on that).
    #[inline]
    pub(crate) fn push(&self, value: T) {
        // The common case, kept small enough to inline into `tell`: a slot inside an existing
        // block, claimed at the first try.
        let tail = self.tail_index.load(Ordering::Acquire);
        let block = self.tail_block.load(Ordering::Acquire);
        let offset = tail % LAP;
        if offset + 1 < BLOCK_CAP
            && !block.is_null()
            && self
                .tail_index
                .compare_exchange(tail, tail + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: as in `push_slow`: the claimed index is in `block`'s lap, and not its last
            // slot, so there is no next block to link.
            unsafe { (*block).write(offset, value) };
            return;
        }
        self.push_slow(value);
    }

    /// Everything else: contention, the first block, the last slot of a block.
    #[cold]
    #[inline(never)]
    fn push_slow(&self, value: T) {
        let mut spins = 0u32;
        let mut contended = 0u32;
        let mut tail = self.tail_index.load(Ordering::Acquire);
        let mut block = self.tail_block.load(Ordering::Acquire);
        let mut next_block: Option<Box<Block<T>>> = None;
        loop {
            let offset = tail % LAP;
            if offset == BLOCK_CAP {
                // Another producer is linking the next block.
                snooze(&mut spins);
                tail = self.tail_index.load(Ordering::Acquire);
                block = self.tail_block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            if block.is_null() {
                // The first push: link the first block.
                let new = Box::into_raw(Block::new());
                if self
                    .tail_block
                    .compare_exchange(block, new, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    self.head_block.store(new, Ordering::Release);
                    block = new;
                } else {
                    // SAFETY: `new` came from `Box::into_raw` above and was never shared.
                    next_block = Some(unsafe { Box::from_raw(new) });
                    tail = self.tail_index.load(Ordering::Acquire);
                    block = self.tail_block.load(Ordering::Acquire);
                    continue;
                }
            }
            match self.tail_index.compare_exchange_weak(
                tail,
                tail + 1,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: the index did not change between reading it and claiming it, and
                    // the block for its lap was stored before the index entered the lap, so
                    // `block` is that block; it is freed only after the consumer has read every
                    // slot of it, including the one claimed here.
                    unsafe {
                        if offset + 1 == BLOCK_CAP {
                            let next = Box::into_raw(next_block.take().expect("allocated above"));
                            self.tail_block.store(next, Ordering::Release);
                            self.tail_index.fetch_add(1, Ordering::Release);
                            (*block).next.store(next, Ordering::Release);
                        }
                        (*block).write(offset, value);
                    }
                    return;
                }
                Err(now) => {
                    // Contention: back off a little more each time, so that producers racing
                    // for the tail do not keep stealing its cache line from each other.
                    for _ in 0..(1u32 << contended.min(6)) {
                        std::hint::spin_loop();
                    }
                    contended += 1;
                    tail = now;
                    block = self.tail_block.load(Ordering::Acquire);
                }
            }
        }
    }

    /// Takes the consumer, unless another thread holds it.
    #[inline]
    pub(crate) fn consumer(&self) -> Option<Consumer<'_, T>> {
        if self.consuming.swap(true, Ordering::SeqCst) {
            None
        } else {
            Some(Consumer { queue: self })
        }
    }

    /// Whether a push has been claimed that no consumer has taken yet. Reads two indexes and
    /// nothing else, so anyone may ask; `true` may mean a push still under way.
    #[inline]
    pub(crate) fn maybe_nonempty(&self) -> bool {
        // A position at the end of a lap is never a message, and the head skips it: compare
        // after skipping it on the tail side too.
        let tail = self.tail_index.load(Ordering::SeqCst);
        let head = self.head_index.load(Ordering::SeqCst);
        let tail = if tail % LAP == BLOCK_CAP {
            tail + 1
        } else {
            tail
        };
        tail != head
    }
}

/// The right to pop, held by one thread at a time; dropping it lets go.
pub(crate) struct Consumer<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> Consumer<'_, T> {
    /// The next message, or `None` if there is none (or the next one is still being written).
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.pop_in_place(|m| m.take())
    }

    /// Pops the next message into `f`, which gets it where it lies in its slot: it is not copied
    /// on its way to `f`, and `f` takes it out (or drops it there) as late as it likes. An actor's
    /// run loop hands it this way through the handler's table straight to the handler, so that a
    /// message is copied once from its slot, not once per call on its way.
    #[inline(always)]
    pub(crate) fn pop_in_place<R>(&mut self, f: impl FnOnce(InPlace<'_, T>) -> R) -> Option<R> {
        let q = self.queue;
        let head = q.head_index.load(Ordering::Relaxed);
        let block = q.head_block.load(Ordering::Acquire);
        if block.is_null() {
            return None;
        }
        let offset = head % LAP;
        // SAFETY: `block` is the head block, which only this consumer frees; `offset` is below
        // BLOCK_CAP because the head skips the last position of each lap. A ready slot was fully
        // written by its producer (the fetch-or that marked it released the write), and is read
        // once: the head moves past it before anyone can pop again, and `&mut self` keeps this
        // consumer from popping until `f` is done with it. The block outlives `f`: when this is
        // its last slot, the head moves on now but the block is freed after `f` (by `_free`, also
        // if `f` unwinds); producers never touch a claimed slot, and no one else frees a block.
        unsafe {
            if !(*block).is_ready(offset) {
                return None;
            }
            let slot = (*block).slots.get_unchecked(offset).get();
            let _free = if offset + 1 == BLOCK_CAP {
                // The producer of the last slot linked the next block before marking its slot
                // ready, and every slot of this block has now been read: no one touches it again.
                let next = (*block).next.load(Ordering::Acquire);
                q.head_block.store(next, Ordering::Release);
                q.head_index.store(head + 2, Ordering::Release);
                Some(FreeBlock(block))
            } else {
                // Release, not a fence: the next holder of the consumer reads the head after
                // taking the consumer, which orders it after this. A reader without the consumer
                // (`maybe_nonempty`) may see an older head and take the queue for non-empty,
                // which costs it one empty pop, never a missed message.
                q.head_index.store(head + 1, Ordering::Release);
                None
            };
            // `MaybeUninit<T>` and `ManuallyDrop<T>` both have the layout of `T`, and the slot is
            // initialized; it is this call's alone.
            Some(f(InPlace(&mut *slot.cast::<ManuallyDrop<T>>())))
        }
    }
}

/// Frees a block that the consumer has read to its end, once what was lent from it is returned.
struct FreeBlock<T>(*mut Block<T>);

impl<T> Drop for FreeBlock<T> {
    fn drop(&mut self) {
        // SAFETY: the block came from `Box::into_raw`; every slot of it has been read, the head
        // has moved past it, and only the consumer that read its last slot holds this.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// A value owned where it lies: whoever holds this owns the value without having moved it. It is
/// taken out with [`InPlace::take`], or dropped in place with this. One pointer wide, so passing it
/// on costs a word whatever the size of the value.
pub(crate) struct InPlace<'a, T>(&'a mut ManuallyDrop<T>);

impl<T> InPlace<'_, T> {
    /// Moves the value out.
    #[inline(always)]
    pub(crate) fn take(self) -> T {
        let this = ManuallyDrop::new(self);
        let value: *const ManuallyDrop<T> = &*this.0;
        // SAFETY: `InPlace` owns an initialized value (`ManuallyDrop<T>` has the layout of `T`),
        // and `this`, never dropped, will not drop it again.
        unsafe { value.cast::<T>().read() }
    }

    /// The value, to look at.
    #[inline(always)]
    pub(crate) fn get(&self) -> &T {
        self.0
    }
}

impl<T> Drop for InPlace<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `InPlace` owns an initialized value, which nothing reads after this.
        unsafe { ManuallyDrop::drop(self.0) }
    }
}

/// Lends `value` to `f` in place, as a popped message is lent (see [`Consumer::pop_in_place`]).
#[inline(always)]
pub(crate) fn in_place<T, R>(value: T, f: impl FnOnce(InPlace<'_, T>) -> R) -> R {
    let mut value = ManuallyDrop::new(value);
    f(InPlace(&mut value))
}

impl<T> Drop for Consumer<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.queue.consuming.store(false, Ordering::SeqCst);
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        let tail = *self.tail_index.get_mut();
        let mut head = *self.head_index.get_mut();
        let mut block = *self.head_block.get_mut();
        // SAFETY: `&mut self`: no producer or consumer is left. Every position between head and
        // tail was claimed and, its push having finished, written; blocks from the head on are
        // owned by the queue.
        unsafe {
            while head != tail && !block.is_null() {
                let offset = head % LAP;
                if offset == BLOCK_CAP {
                    let next = *(*block).next.get_mut();
                    drop(Box::from_raw(block));
                    block = next;
                } else {
                    if *(*block).ready.get_mut() & (1 << offset) != 0 {
                        (*block)
                            .slots
                            .get_unchecked_mut(offset)
                            .get_mut()
                            .assume_init_drop();
                    }
                }
                head += 1;
            }
            if !block.is_null() {
                drop(Box::from_raw(block));
            }
        }
    }
}

/// Backs off while another producer links a block: spins a little, then yields the thread.
fn snooze(spins: &mut u32) {
    if *spins < 6 {
        for _ in 0..(1 << *spins) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
    *spins = spins.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn one_producer_s_messages_come_out_in_order_across_many_blocks() {
        let q = Queue::new();
        let mut c = q.consumer().unwrap();
        assert_eq!(c.pop(), None::<u64>);
        for round in 0..3u64 {
            for i in 0..1000 {
                q.push(round * 1000 + i);
            }
            for i in 0..1000 {
                assert_eq!(c.pop(), Some(round * 1000 + i));
            }
            assert_eq!(c.pop(), None);
            assert!(!q.maybe_nonempty());
        }
    }

    #[test]
    fn only_one_consumer_at_a_time() {
        let q = Queue::<u8>::new();
        let c = q.consumer().unwrap();
        assert!(q.consumer().is_none());
        q.push(1);
        drop(c);
        let mut c = q.consumer().unwrap();
        assert_eq!(c.pop(), Some(1));
    }

    #[test]
    fn maybe_nonempty_follows_pushes_and_pops_across_block_ends() {
        let q = Queue::new();
        assert!(!q.maybe_nonempty());
        for i in 0..(3 * LAP as u32) {
            q.push(i);
            assert!(q.maybe_nonempty());
            let mut c = q.consumer().unwrap();
            assert_eq!(c.pop(), Some(i));
            drop(c);
            assert!(!q.maybe_nonempty(), "after {i}");
        }
    }

    /// Counts drops, to check that what is left in the queue is dropped once.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_queue_drops_each_message_left_once() {
        for (pushed, popped) in [
            (0, 0),
            (1, 0),
            (31, 0),
            (32, 5),
            (100, 31),
            (100, 62),
            (64, 64),
        ] {
            let drops = Arc::new(AtomicUsize::new(0));
            let q = Queue::new();
            for _ in 0..pushed {
                q.push(Counted(drops.clone()));
            }
            let mut c = q.consumer().unwrap();
            for _ in 0..popped {
                drop(c.pop().unwrap());
            }
            drop(c);
            assert_eq!(drops.load(Ordering::SeqCst), popped);
            drop(q);
            assert_eq!(
                drops.load(Ordering::SeqCst),
                pushed,
                "{pushed} pushed, {popped} popped"
            );
        }
    }

    #[test]
    fn a_message_lent_in_place_is_dropped_once_whether_taken_left_or_unwound_through() {
        // Three ways to end a lend, across two block ends (slots 30 and 61 are the last of their
        // blocks, which are freed only once their last message is done with).
        let drops = Arc::new(AtomicUsize::new(0));
        let q = Queue::new();
        for _ in 0..(2 * BLOCK_CAP + 5) {
            q.push(Counted(drops.clone()));
        }
        let mut c = q.consumer().unwrap();
        for i in 0..(2 * BLOCK_CAP + 5) {
            let before = drops.load(Ordering::SeqCst);
            match i % 3 {
                // Taken out: dropped when the taker drops it.
                0 => {
                    let m = c.pop_in_place(|m| m.take()).unwrap();
                    assert_eq!(drops.load(Ordering::SeqCst), before);
                    drop(m);
                }
                // Left in place: dropped there when the lend ends.
                1 => assert_eq!(
                    c.pop_in_place(|m| Arc::strong_count(&m.get().0) > 1),
                    Some(true)
                ),
                // The borrower panics holding it: dropped while unwinding.
                _ => {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        c.pop_in_place(|_m| panic!("handler failed"))
                    }));
                    assert!(r.is_err());
                }
            }
            assert_eq!(drops.load(Ordering::SeqCst), before + 1, "message {i}");
        }
        assert!(c.pop().is_none());
        drop(c);
        drop(q);
        assert_eq!(drops.load(Ordering::SeqCst), 2 * BLOCK_CAP + 5);
    }

    #[test]
    fn a_value_lent_with_in_place_is_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        in_place(Counted(drops.clone()), |m| drop(m));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let kept = in_place(Counted(drops.clone()), |m| m.take());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(kept);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn zero_sized_messages_are_counted() {
        let q = Queue::new();
        for _ in 0..100 {
            q.push(());
        }
        let mut c = q.consumer().unwrap();
        assert_eq!(std::iter::from_fn(|| c.pop()).count(), 100);
    }

    #[test]
    fn many_producers_lose_nothing_and_keep_each_one_s_order() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 20_000;
        let q = Arc::new(Queue::new());
        let threads: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        q.push((p, i));
                    }
                })
            })
            .collect();
        let mut next = [0u64; PRODUCERS as usize];
        let mut got = 0;
        while got < PRODUCERS * EACH {
            // Consumers come and go, as an actor's batches do.
            let mut c = q.consumer().unwrap();
            for _ in 0..50 {
                match c.pop() {
                    Some((p, i)) => {
                        assert_eq!(i, next[p as usize], "producer {p}'s order");
                        next[p as usize] += 1;
                        got += 1;
                    }
                    None => break,
                }
            }
            drop(c);
            std::thread::yield_now();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(!q.maybe_nonempty());
        assert_eq!(next, [EACH; PRODUCERS as usize]);
    }
}
