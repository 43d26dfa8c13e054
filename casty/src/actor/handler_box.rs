//! Where a behavior keeps its handler: inline when it is small, so that returning a new behavior
//! from a handler (`counter(n + 1)`) allocates nothing.
//!
//! The functional style builds a new handler for every change of state. Boxed, that is one
//! allocation for the new handler and one free for the old, per message. [`HandlerBox`] stores a
//! handler of up to [`INLINE_BYTES`] bytes (alignment at most that of `usize`) in place, inside the
//! `Behavior` value, and reaches it through a small table of functions made for its concrete type.
//! A larger or over-aligned handler is boxed, and the box is what is kept in place.
//!
//! A closure given to `Behaviors::receive` need not be `Clone`, yet a `Behavior` is, so that the
//! runtime can go back to the initial behavior on a restart. [`SharedFn`] holds the closure by
//! value until the behavior is first cloned; then it moves the closure into an `Arc` that the
//! original and its clones share. Behaviors returned from handlers are never cloned, so they never
//! allocate.
//!
//! This module, `mpsc`, `reply_slot`, `deadlines` and `park` are the modules of the crate with
//! `unsafe` code; each block says why it is sound, and the tests below exercise drops, panics,
//! clones, and large, over-aligned and zero-sized handlers.

#![allow(unsafe_code)]

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::actor::behavior::{Behavior, Handler, Kind, Outcome};
use crate::actor::context::ActorContext;
use crate::actor::mpsc::InPlace;

/// How many machine words a handler may take to be kept inline.
const INLINE_WORDS: usize = 6;

/// How many bytes a handler may take to be kept inline.
pub(crate) const INLINE_BYTES: usize = INLINE_WORDS * size_of::<usize>();

/// The type of [`VTable::step`].
type StepFn<M> = for<'a> unsafe fn(
    *mut HandlerBox<M>,
    &'a mut ActorContext<M>,
    InPlace<'_, M>,
    &mut Option<Outcome<'a, M>>,
) -> Step;

/// The functions that reach a handler of one concrete type in a [`HandlerBox`].
struct VTable<M> {
    /// The handler, for shared access. Takes a pointer to the box's storage.
    get: unsafe fn(*const u8) -> *const dyn Handler<M>,
    /// The handler, for exclusive access. Takes a pointer to the box's storage.
    get_mut: unsafe fn(*mut u8) -> *mut dyn Handler<M>,
    /// Drops what the storage holds (the handler, or the box around it).
    drop: unsafe fn(*mut u8),
    /// [`HandlerBox::step`] for this type: `Handler::receive` called directly (one indirect call
    /// per message, not two), and its result settled in the same function, where the new
    /// handler's type is known, so that it is moved into place once.
    step: StepFn<M>,
    /// `Handler::has_start` on the handler, in one indirect call.
    has_start: unsafe fn(*const u8) -> bool,
    /// The type the storage holds, so that `step` can tell a returned handler of its own type.
    stored: TypeId,
}

/// Settles a handler's outcome for [`HandlerBox::step`]: `same()` leaves the handler, a new
/// handler with no start work replaces it in place, and anything else goes to `other`.
///
/// # Safety
/// `this` points to a live `HandlerBox` to which the caller has exclusive access, and `outcome`
/// borrows nothing from it unless it is pending.
#[inline(always)]
unsafe fn settle<'a, M: 'static>(
    this: *mut HandlerBox<M>,
    outcome: Outcome<'a, M>,
    other: &mut Option<Outcome<'a, M>>,
) -> Step {
    match outcome {
        Outcome::Ready(Ok(Behavior { kind: Kind::Same })) => Step::Same,
        Outcome::Ready(Ok(Behavior {
            kind: Kind::Receive(next),
        })) if !next.has_start() => {
            // Drops the old handler, then moves the new one in. A ready outcome borrows nothing,
            // so nothing refers to the old handler any more.
            // SAFETY: the caller's contract.
            unsafe { *this = next };
            Step::Replaced
        }
        outcome => {
            *other = Some(outcome);
            Step::Other
        }
    }
}

/// Copies `n` words from `from` to `to` when dropped, with one word-sized read each.
struct MoveWords {
    from: *const MaybeUninit<usize>,
    to: *mut MaybeUninit<usize>,
    n: usize,
}

impl Drop for MoveWords {
    #[inline(always)]
    fn drop(&mut self) {
        for i in 0..self.n {
            // SAFETY: the creator's contract: `from` and `to` are the word-aligned storages of two
            // handler boxes, each at least `n` words, and `to`'s old value has been dropped.
            // Volatile, so that the reads stay one word wide.
            unsafe {
                let w = std::ptr::read_volatile(self.from.add(i));
                self.to.add(i).write(w);
            }
        }
    }
}

/// Where a box's storage keeps its handler: the handler itself ([`Inline`]), a `Box` of it
/// ([`Boxed`]), or a `Box<dyn Handler<M>>` ([`BoxedDyn`]). A [`Table`] of functions is made from
/// a place alone, so the three kinds share every function of it.
trait Place<M>: 'static {
    /// What the storage holds.
    type Stored;
    /// The handler in it: a concrete type, so that calls to it are direct, except for `BoxedDyn`.
    type Target: Handler<M> + ?Sized;
    fn target(stored: &Self::Stored) -> &Self::Target;
    fn target_mut(stored: &mut Self::Stored) -> &mut Self::Target;
    fn as_dyn(stored: &Self::Stored) -> &(dyn Handler<M> + 'static);
    fn as_dyn_mut(stored: &mut Self::Stored) -> &mut (dyn Handler<M> + 'static);
}

/// A handler `H` kept inline.
struct Inline<H>(PhantomData<H>);

impl<M: 'static, H: Handler<M>> Place<M> for Inline<H> {
    type Stored = H;
    type Target = H;
    fn target(stored: &H) -> &H {
        stored
    }
    fn target_mut(stored: &mut H) -> &mut H {
        stored
    }
    fn as_dyn(stored: &H) -> &(dyn Handler<M> + 'static) {
        stored
    }
    fn as_dyn_mut(stored: &mut H) -> &mut (dyn Handler<M> + 'static) {
        stored
    }
}

/// A handler `H` kept in a `Box<H>`, the box being what is inline.
struct Boxed<H>(PhantomData<H>);

impl<M: 'static, H: Handler<M>> Place<M> for Boxed<H> {
    type Stored = Box<H>;
    type Target = H;
    fn target(stored: &Box<H>) -> &H {
        stored
    }
    fn target_mut(stored: &mut Box<H>) -> &mut H {
        stored
    }
    fn as_dyn(stored: &Box<H>) -> &(dyn Handler<M> + 'static) {
        &**stored
    }
    fn as_dyn_mut(stored: &mut Box<H>) -> &mut (dyn Handler<M> + 'static) {
        &mut **stored
    }
}

/// A handler already boxed as `Box<dyn Handler<M>>`.
struct BoxedDyn;

impl<M: 'static> Place<M> for BoxedDyn {
    type Stored = Box<dyn Handler<M>>;
    type Target = dyn Handler<M>;
    fn target(stored: &Self::Stored) -> &Self::Target {
        &**stored
    }
    fn target_mut(stored: &mut Self::Stored) -> &mut Self::Target {
        &mut **stored
    }
    fn as_dyn(stored: &Self::Stored) -> &(dyn Handler<M> + 'static) {
        &**stored
    }
    fn as_dyn_mut(stored: &mut Self::Stored) -> &mut (dyn Handler<M> + 'static) {
        &mut **stored
    }
}

/// The table of functions for a handler kept at place `P`. Each function takes a pointer to the
/// storage of a live `HandlerBox` that holds a `P::Stored` (or to the box itself, for `step`).
struct Table<M, P>(PhantomData<(M, P)>);

impl<M: 'static, P: Place<M>> Table<M, P> {
    const VTABLE: VTable<M> = VTable {
        get: Self::get,
        get_mut: Self::get_mut,
        drop: Self::drop,
        step: Self::step,
        has_start: Self::has_start,
        stored: TypeId::of::<P::Stored>(),
    };

    /// # Safety
    /// `this` is a live `HandlerBox` holding a `P::Stored`, to which the caller has exclusive
    /// access for `'a`.
    unsafe fn step<'a>(
        this: *mut HandlerBox<M>,
        ctx: &'a mut ActorContext<M>,
        msg: InPlace<'_, M>,
        other: &mut Option<Outcome<'a, M>>,
    ) -> Step {
        // SAFETY: the storage holds an initialized `P::Stored`; the caller's exclusive access
        // lasts as long as the `Outcome` may borrow it, and `settle` writes over it only when it
        // does not.
        unsafe {
            let sp = (*this).storage.get().cast::<P::Stored>();
            // Held without a destructor from here on: once the new handler's words may be in the
            // box, only the box may drop it, even if dropping the old handler panics.
            let outcome = ManuallyDrop::new(P::target_mut(&mut *sp).receive(ctx, msg.take()));
            // `same()` holds nothing: answered here, without moving the outcome anywhere.
            if let Outcome::Ready(Ok(Behavior { kind: Kind::Same })) = &*outcome {
                return Step::Same;
            }
            // The functional style returns a handler of the handler's own type (`counter(n + 1)`
            // from `counter`'s closure): then its start work, the drop of the old one and the move
            // are calls this function knows, not calls through the table.
            if let Outcome::Ready(Ok(Behavior {
                kind: Kind::Receive(next),
            })) = &*outcome
            {
                if (*next.vtable).stored == TypeId::of::<P::Stored>() {
                    let np = next.storage.get().cast::<P::Stored>();
                    if !P::target(&*np).has_start() {
                        // A ready outcome borrows nothing, so nothing refers to the old handler
                        // any more. The new one is moved word by word: the closure that built it
                        // has just written it a word at a time, and wider reads of words just
                        // written wait for the writes to land (a store-forwarding stall). The
                        // words are copied even if dropping the old handler panics.
                        let words = MoveWords {
                            from: np.cast::<MaybeUninit<usize>>(),
                            to: sp.cast::<MaybeUninit<usize>>(),
                            n: size_of::<P::Stored>().div_ceil(size_of::<usize>()),
                        };
                        std::ptr::drop_in_place(sp);
                        drop(words);
                        // The outcome, never dropped, held nothing else: the moved handler is the
                        // box's alone.
                        return Step::Replaced;
                    }
                }
            }
            settle(this, ManuallyDrop::into_inner(outcome), other)
        }
    }

    /// # Safety
    /// `p` points to the storage of a live `HandlerBox` that holds a `P::Stored`.
    unsafe fn has_start(p: *const u8) -> bool {
        // SAFETY: the caller's contract.
        P::target(unsafe { &*p.cast::<P::Stored>() }).has_start()
    }

    /// # Safety
    /// As for `has_start`.
    unsafe fn get(p: *const u8) -> *const dyn Handler<M> {
        // SAFETY: the caller's contract; only a shared reference is made, as the caller may
        // share the box.
        P::as_dyn(unsafe { &*p.cast::<P::Stored>() })
    }

    /// # Safety
    /// As for `get`, and the caller has exclusive access to the box.
    unsafe fn get_mut(p: *mut u8) -> *mut dyn Handler<M> {
        // SAFETY: as in `get`; the caller's exclusive access makes the `&mut` unique.
        P::as_dyn_mut(unsafe { &mut *p.cast::<P::Stored>() })
    }

    /// # Safety
    /// As for `get_mut`; what the storage holds is not used again.
    unsafe fn drop(p: *mut u8) {
        // SAFETY: the storage holds an initialized, suitably aligned `P::Stored` (the caller's
        // contract).
        unsafe { std::ptr::drop_in_place(p.cast::<P::Stored>()) }
    }
}

/// A handler, kept inline when it takes at most [`INLINE_BYTES`] bytes and needs no more than the
/// alignment of `usize`, boxed otherwise. Behaves like a `Box<dyn Handler<M>>`.
pub(crate) struct HandlerBox<M> {
    /// The handler (or the box holding it), written once by a constructor and dropped by `Drop`.
    /// In an `UnsafeCell` because a handler may mutate itself through `&self` (`SharedFn::share`
    /// does, with atomics), which is allowed only inside one.
    storage: UnsafeCell<MaybeUninit<[usize; INLINE_WORDS]>>,
    /// The functions for the concrete type in `storage`: a `&'static VTable<M>` (a raw pointer
    /// only so that `M` need not be `'static` where a `HandlerBox<M>` is named).
    vtable: *const VTable<M>,
    /// Owns a handler.
    _owns: PhantomData<Box<dyn Handler<M>>>,
}

/// What [`HandlerBox::step`] did with the handler's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The handler returned `same()`.
    Same,
    /// The handler returned a new handler with no start work, now installed in its place.
    Replaced,
    /// Something else, written to the `other` argument.
    Other,
}

// SAFETY: a `HandlerBox` owns a handler, which is `Send + Sync` (a bound of `Handler`), and points
// to an immutable table of functions in static memory.
unsafe impl<M> Send for HandlerBox<M> {}
// SAFETY: as for `Send`; `&HandlerBox` gives only `&dyn Handler<M>`, which is `Sync`.
unsafe impl<M> Sync for HandlerBox<M> {}

impl<M: 'static> HandlerBox<M> {
    /// Whether an `H` is kept inline.
    pub(crate) const fn fits<H>() -> bool {
        size_of::<H>() <= INLINE_BYTES && align_of::<H>() <= align_of::<usize>()
    }

    /// Stores `h`: inline if it fits, in a `Box` otherwise.
    #[inline]
    pub(crate) fn new<H: Handler<M>>(h: H) -> Self {
        if Self::fits::<H>() {
            // SAFETY: `H` fits the storage, in size and alignment; the table is `H`'s.
            unsafe { Self::store(h, &Table::<M, Inline<H>>::VTABLE) }
        } else {
            // SAFETY: a `Box<H>` is one word, aligned like `usize`; the table is `Box<H>`'s.
            unsafe { Self::store(Box::new(h), &Table::<M, Boxed<H>>::VTABLE) }
        }
    }

    /// Stores a handler that is already boxed (no new allocation).
    pub(crate) fn from_box(h: Box<dyn Handler<M>>) -> Self {
        const {
            assert!(Self::fits::<Box<dyn Handler<M>>>());
        }
        // SAFETY: a `Box<dyn Handler<M>>` is two words, aligned like `usize` (checked above); the
        // table is its own.
        unsafe { Self::store(h, &Table::<M, BoxedDyn>::VTABLE) }
    }

    /// # Safety
    /// `T` fits the storage (size and alignment), and `vtable` is the table for a `T` in it.
    #[inline]
    unsafe fn store<T>(value: T, vtable: &'static VTable<M>) -> Self {
        let mut storage = MaybeUninit::<[usize; INLINE_WORDS]>::uninit();
        // SAFETY: the storage is valid for writes of a `T` and aligned for it (the caller's
        // contract); it is uninitialized, so nothing is overwritten.
        unsafe { storage.as_mut_ptr().cast::<T>().write(value) };
        HandlerBox {
            storage: UnsafeCell::new(storage),
            vtable: vtable as *const VTable<M>,
            _owns: PhantomData,
        }
    }

    /// The table of functions for what `storage` holds.
    #[inline]
    fn vtable(&self) -> &'static VTable<M> {
        // SAFETY: `vtable` came from a `&'static VTable<M>` in `store` and is never changed.
        unsafe { &*self.vtable }
    }

    /// The handler.
    #[inline]
    pub(crate) fn get(&self) -> &dyn Handler<M> {
        // SAFETY: `storage` holds what `vtable` is for (set together by `store`, never changed
        // since); the reference lives no longer than `&self`.
        unsafe { &*(self.vtable().get)(self.storage.get().cast_const().cast()) }
    }

    /// Runs the handler on a message and settles the two common results where the handler
    /// lives: `same()` leaves it, and a returned handler with no start work replaces it in place
    /// (the functional style's change of state). Any other result is written to `other` for the
    /// caller to interpret. Returning only which of the three happened keeps the hot path from
    /// moving a whole `Outcome` through every caller.
    #[inline]
    pub(crate) fn step<'a>(
        &'a mut self,
        ctx: &'a mut ActorContext<M>,
        msg: InPlace<'_, M>,
        other: &mut Option<Outcome<'a, M>>,
    ) -> Step {
        let this: *mut Self = self;
        // SAFETY: `storage` holds what `vtable` is for; `&'a mut self` makes the access
        // exclusive for as long as the `Outcome` may borrow the handler.
        unsafe { ((*this).vtable().step)(this, ctx, msg, other) }
    }

    /// Whether the handler has start work (`Handler::has_start`), in one indirect call.
    #[inline]
    pub(crate) fn has_start(&self) -> bool {
        // SAFETY: `storage` holds what `vtable` is for.
        unsafe { (self.vtable().has_start)(self.storage.get().cast_const().cast()) }
    }

    /// The handler, for exclusive use.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut dyn Handler<M> {
        // SAFETY: as in `get`, and `&mut self` makes the access exclusive.
        unsafe { &mut *(self.vtable().get_mut)(self.storage.get_mut().as_mut_ptr().cast()) }
    }
}

impl<M> Drop for HandlerBox<M> {
    fn drop(&mut self) {
        // SAFETY: `vtable` came from a `&'static VTable<M>` in `store`; `storage` holds what it is
        // for, and is dropped only here, once.
        unsafe { ((*self.vtable).drop)(self.storage.get_mut().as_mut_ptr().cast()) }
    }
}

impl<M: 'static> Clone for HandlerBox<M> {
    fn clone(&self) -> Self {
        self.get().clone_handler()
    }
}

/// A closure held by value until the first time it is shared (see the module's note).
pub(crate) struct SharedFn<F> {
    /// `OWNED`, `SHARING` or `SHARED`: what `slot` holds and who may touch it.
    /// A whole word, not a byte: a handler built in a closure's return value is read back word
    /// by word (see `Table::step`), and a word read of a byte just written stalls.
    state: AtomicUsize,
    /// `Owned` while `state` is `OWNED` or `SHARING`, `Shared` once it is `SHARED`.
    slot: UnsafeCell<Slot<F>>,
}

enum Slot<F> {
    Owned(F),
    Shared(Arc<F>),
}

/// `slot` holds the closure by value; anyone holding `&self` may start sharing it.
const OWNED: usize = 0;
/// One `&self` holder is moving the closure into an `Arc`; others wait for `SHARED`.
const SHARING: usize = 1;
/// `slot` holds the `Arc`, and is never written again while `&self` is held.
const SHARED: usize = 2;

// SAFETY: `&SharedFn<F>` gives access to the `F` (by `&F`, in clones of the `Arc`) and, through
// `state`, lets exactly one thread at a time move it from `Owned` to `Shared`; that needs `F` to
// be `Send` (it may be moved by another thread than its owner) and `Sync` (shared by reference).
unsafe impl<F: Send + Sync> Sync for SharedFn<F> {}

impl<F> SharedFn<F> {
    /// Holds `f` by value.
    #[inline]
    pub(crate) fn new(f: F) -> Self {
        SharedFn {
            state: AtomicUsize::new(OWNED),
            slot: UnsafeCell::new(Slot::Owned(f)),
        }
    }

    /// The closure, for a call.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &F {
        match self.slot.get_mut() {
            Slot::Owned(f) => f,
            Slot::Shared(f) => f,
        }
    }

    /// Another holder of the same closure: it moves into an `Arc` the first time.
    pub(crate) fn share(&self) -> Self {
        let f = loop {
            match self.state.load(Ordering::Acquire) {
                SHARED => {
                    // SAFETY: once `SHARED` is published (Release, seen by the Acquire above), the
                    // slot holds `Shared` and nobody writes it while `&self` lives: a shared read.
                    match unsafe { &*self.slot.get() } {
                        Slot::Shared(f) => break f.clone(),
                        Slot::Owned(_) => unreachable!("a shared closure is held in an `Arc`"),
                    }
                }
                OWNED => {
                    if self
                        .state
                        .compare_exchange(OWNED, SHARING, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    let slot = self.slot.get();
                    // SAFETY: winning the exchange to `SHARING` gives this thread alone access to
                    // the slot: other `&self` holders wait for `SHARED` without touching it, and
                    // no `&mut self` exists while `&self` does. The slot is read out and written
                    // back with nothing in between that can unwind (`Arc::new` aborts when memory
                    // runs out), so the closure is never dropped twice.
                    let shared = unsafe {
                        let shared = match slot.read() {
                            Slot::Owned(f) => Arc::new(f),
                            Slot::Shared(f) => f,
                        };
                        slot.write(Slot::Shared(shared.clone()));
                        shared
                    };
                    self.state.store(SHARED, Ordering::Release);
                    break shared;
                }
                _ => std::hint::spin_loop(),
            }
        };
        SharedFn {
            state: AtomicUsize::new(SHARED),
            slot: UnsafeCell::new(Slot::Shared(f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Behaviors;
    use std::sync::atomic::AtomicUsize;

    /// A handler that counts its drops and clones, padded (in size or alignment) by a `P`.
    struct Probe<P: Send + Sync + 'static> {
        drops: Arc<AtomicUsize>,
        clones: Arc<AtomicUsize>,
        id: u64,
        _pad: P,
    }

    impl<P: Send + Sync + Default + 'static> Probe<P> {
        fn new(id: u64) -> (Self, Arc<AtomicUsize>, Arc<AtomicUsize>) {
            let drops = Arc::new(AtomicUsize::new(0));
            let clones = Arc::new(AtomicUsize::new(0));
            let p = Probe {
                drops: drops.clone(),
                clones: clones.clone(),
                id,
                _pad: P::default(),
            };
            (p, drops, clones)
        }
    }

    impl<P: Send + Sync + 'static> Drop for Probe<P> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl<P: Send + Sync + Default + 'static> Handler<u64> for Probe<P> {
        fn receive<'a>(
            &'a mut self,
            _ctx: &'a mut ActorContext<u64>,
            msg: u64,
        ) -> Outcome<'a, u64> {
            if msg == 0 {
                panic!("probe told to panic");
            }
            self.id += msg;
            Outcome::Ready(Ok(Behaviors::same()))
        }

        fn has_start(&self) -> bool {
            self.id == 7
        }

        fn clone_handler(&self) -> HandlerBox<u64> {
            self.clones.fetch_add(1, Ordering::SeqCst);
            HandlerBox::new(Probe {
                drops: self.drops.clone(),
                clones: self.clones.clone(),
                id: self.id,
                _pad: P::default(),
            })
        }

        fn clone_box(&self) -> Box<dyn Handler<u64>> {
            unreachable!("HandlerBox clones through clone_handler")
        }
    }

    /// A handler whose message says what to return: 1 `same()`, 2 a new `Stepper` with no start
    /// work, 3 a new one with start work, 4 `stopped()`, 5 a pending future, 6 a handler of
    /// another type, `Counted`.
    struct Stepper {
        id: u64,
        start: bool,
        drops: Arc<AtomicUsize>,
    }

    impl Drop for Stepper {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Handler<u64> for Stepper {
        fn receive<'a>(
            &'a mut self,
            _ctx: &'a mut ActorContext<u64>,
            msg: u64,
        ) -> Outcome<'a, u64> {
            let next = |start| {
                Behavior::handler(Stepper {
                    id: self.id + 1,
                    start,
                    drops: self.drops.clone(),
                })
            };
            match msg {
                1 => Outcome::Ready(Ok(Behaviors::same())),
                2 => Outcome::Ready(Ok(next(false))),
                3 => Outcome::Ready(Ok(next(true))),
                4 => Outcome::Ready(Ok(Behaviors::stopped())),
                6 => Outcome::Ready(Ok(Behavior::handler(Counted(self.drops.clone())))),
                _ => Outcome::Pending(Box::pin(async { Ok(Behaviors::same()) })),
            }
        }

        fn has_start(&self) -> bool {
            self.start
        }

        fn clone_box(&self) -> Box<dyn Handler<u64>> {
            unreachable!("not cloned here")
        }
    }

    /// A `Stepper` with no start work in a box, counting drops in `drops`.
    fn stepper(drops: &Arc<AtomicUsize>) -> HandlerBox<u64> {
        HandlerBox::new(Stepper {
            id: 0,
            start: false,
            drops: drops.clone(),
        })
    }

    /// Steps `b` with `msg` where the result is settled in place: nothing is handed back.
    fn step_in_place(b: &mut HandlerBox<u64>, ctx: &mut ActorContext<u64>, msg: u64) -> Step {
        let mut other = None;
        let step = crate::actor::mpsc::in_place(msg, |m| b.step(ctx, m, &mut other));
        assert!(other.is_none());
        step
    }

    #[tokio::test]
    async fn step_settles_same_and_a_new_handler_in_place_and_hands_back_the_rest() {
        use crate::actor::cell::test_context;
        let (system, mut ctx) = test_context::<u64>();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut b = stepper(&drops);
        assert_eq!(step_in_place(&mut b, &mut ctx, 1), Step::Same);
        assert_eq!(drops.load(Ordering::SeqCst), 0);

        // The functional transition: the old handler is dropped once, the new one runs in place.
        assert_eq!(step_in_place(&mut b, &mut ctx, 2), Step::Replaced);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(!b.get().has_start());

        // A new handler with start work is not installed here: the cell must run its start.
        {
            let mut other = None;
            assert_eq!(
                crate::actor::mpsc::in_place(3, |m| b.step(&mut ctx, m, &mut other)),
                Step::Other
            );
            match other.take() {
                Some(Outcome::Ready(Ok(Behavior {
                    kind: Kind::Receive(next),
                }))) => {
                    assert!(next.get().has_start());
                    drop(next);
                }
                _ => panic!("expected the new handler back"),
            }
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "the returned one, dropped above"
        );
        {
            let mut other = None;
            assert_eq!(
                crate::actor::mpsc::in_place(4, |m| b.step(&mut ctx, m, &mut other)),
                Step::Other
            );
            assert!(matches!(
                other,
                Some(Outcome::Ready(Ok(Behavior {
                    kind: Kind::Stopped
                })))
            ));
        }
        {
            let mut other = None;
            assert_eq!(
                crate::actor::mpsc::in_place(5, |m| b.step(&mut ctx, m, &mut other)),
                Step::Other
            );
            match other {
                Some(Outcome::Pending(fut)) => assert!(fut.await.is_ok()),
                _ => panic!("expected the pending future back"),
            }
        }
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        drop(ctx);
        system.shutdown().await;
    }

    /// Counts its drops in the same counter as `Stepper`; answers `same()`.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Handler<u64> for Counted {
        fn receive<'a>(
            &'a mut self,
            _ctx: &'a mut ActorContext<u64>,
            _msg: u64,
        ) -> Outcome<'a, u64> {
            Outcome::Ready(Ok(Behaviors::same()))
        }

        fn clone_box(&self) -> Box<dyn Handler<u64>> {
            unreachable!("not cloned here")
        }
    }

    /// Counts its drops in `drops`; the first one to be dropped with `panics` set panics there.
    /// Each message returns a new one that does not panic.
    struct PanicsOnDrop {
        panics: bool,
        drops: Arc<AtomicUsize>,
    }

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            if self.panics {
                panic!("dropping the old handler");
            }
        }
    }

    impl Handler<u64> for PanicsOnDrop {
        fn receive<'a>(
            &'a mut self,
            _ctx: &'a mut ActorContext<u64>,
            _msg: u64,
        ) -> Outcome<'a, u64> {
            Outcome::Ready(Ok(Behavior::handler(PanicsOnDrop {
                panics: false,
                drops: self.drops.clone(),
            })))
        }

        fn clone_box(&self) -> Box<dyn Handler<u64>> {
            unreachable!("not cloned here")
        }
    }

    // The old handler's drop panics while a new one of its type replaces it: the panic reaches
    // the caller, the new handler is in the box and works, and each handler is dropped once.
    #[tokio::test]
    async fn a_panic_dropping_the_old_handler_leaves_the_new_one_installed_and_dropped_once() {
        use crate::actor::cell::test_context;
        let (system, mut ctx) = test_context::<u64>();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut b = HandlerBox::new(PanicsOnDrop {
            panics: true,
            drops: drops.clone(),
        });
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut other = None;
            crate::actor::mpsc::in_place(1, |m| b.step(&mut ctx, m, &mut other))
        }));
        assert!(panicked.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the old handler only");
        assert_eq!(step_in_place(&mut b, &mut ctx, 2), Step::Replaced);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "each handler once");
        drop(ctx);
        system.shutdown().await;
    }

    // A returned handler of another type than the running one is installed in place as well:
    // the old one is dropped once, the new one answers the next message, and is dropped once.
    #[tokio::test]
    async fn a_new_handler_of_another_type_replaces_the_old_one_in_place() {
        use crate::actor::cell::test_context;
        let (system, mut ctx) = test_context::<u64>();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut b = stepper(&drops);
        for (msg, step, dropped) in [
            (2, Step::Replaced, 1),
            (6, Step::Replaced, 2),
            (6, Step::Same, 2),
        ] {
            assert_eq!(step_in_place(&mut b, &mut ctx, msg), step);
            assert_eq!(drops.load(Ordering::SeqCst), dropped);
        }
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        drop(ctx);
        system.shutdown().await;
    }

    #[derive(Default)]
    struct Big {
        _words: [u64; 16],
    }

    #[repr(align(64))]
    #[derive(Default)]
    struct OverAligned {
        _byte: u8,
    }

    #[test]
    fn a_closure_of_four_words_is_inline_and_one_of_five_is_boxed() {
        // What the docs of `Behaviors::receive` promise: a closure's handler is a `SharedFn`.
        assert!(HandlerBox::<u64>::fits::<SharedFn<[usize; 4]>>());
        assert!(!HandlerBox::<u64>::fits::<SharedFn<[usize; 5]>>());
    }

    #[test]
    fn small_handlers_are_inline_and_large_or_over_aligned_ones_are_boxed() {
        assert!(HandlerBox::<u64>::fits::<Probe<()>>());
        assert!(HandlerBox::<u64>::fits::<()>());
        assert!(!HandlerBox::<u64>::fits::<Probe<Big>>());
        assert!(!HandlerBox::<u64>::fits::<Probe<OverAligned>>());
        assert!(HandlerBox::<u64>::fits::<Box<dyn Handler<u64>>>());
    }

    fn drops_once_and_clones_independently<P: Send + Sync + Default + 'static>() {
        let (p, drops, clones) = Probe::<P>::new(7);
        let b = HandlerBox::new(p);
        assert!(b.get().has_start());
        let c = b.clone();
        assert_eq!(clones.load(Ordering::SeqCst), 1);
        assert!(c.get().has_start());
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(c);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_inline_handler_is_dropped_once_and_cloned_apart() {
        drops_once_and_clones_independently::<()>();
    }

    #[test]
    fn a_large_handler_is_boxed_dropped_once_and_cloned_apart() {
        drops_once_and_clones_independently::<Big>();
    }

    #[test]
    fn an_over_aligned_handler_is_boxed_dropped_once_and_cloned_apart() {
        drops_once_and_clones_independently::<OverAligned>();
        let (p, _, _) = Probe::<OverAligned>::new(1);
        let b = HandlerBox::new(p);
        let addr = b.get() as *const dyn Handler<u64> as *const u8 as usize;
        assert_eq!(addr % 64, 0, "the boxed handler keeps its alignment");
    }

    #[test]
    fn an_already_boxed_handler_is_kept_as_is_and_dropped_once() {
        let (p, drops, _) = Probe::<()>::new(7);
        let b = HandlerBox::from_box(Box::new(p));
        assert!(b.get().has_start());
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_zero_sized_handler_is_inline_and_works() {
        struct Nothing;
        impl Handler<u64> for Nothing {
            fn receive<'a>(
                &'a mut self,
                _ctx: &'a mut ActorContext<u64>,
                _msg: u64,
            ) -> Outcome<'a, u64> {
                Outcome::Ready(Ok(Behaviors::stopped()))
            }
            fn has_start(&self) -> bool {
                true
            }
            fn clone_box(&self) -> Box<dyn Handler<u64>> {
                Box::new(Nothing)
            }
        }
        assert!(HandlerBox::<u64>::fits::<Nothing>());
        let b = HandlerBox::new(Nothing);
        assert!(b.get().has_start());
        // The default `clone_handler` goes through `clone_box`.
        assert!(b.clone().get().has_start());
    }

    #[test]
    fn a_shared_fn_is_dropped_once_whether_or_not_it_was_shared() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let mut owned = SharedFn::new(Counted(drops.clone()));
        assert_eq!(owned.get_mut().0.load(Ordering::SeqCst), 0);
        drop(owned);
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        let drops = Arc::new(AtomicUsize::new(0));
        let original = SharedFn::new(Counted(drops.clone()));
        let mut a = original.share();
        let b = original.share();
        drop(original);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still held by the shares");
        assert!(Arc::ptr_eq(&a.get_mut().0, &drops));
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_shared_fn_shared_from_many_threads_at_once_holds_one_closure() {
        for _ in 0..50 {
            let drops = Arc::new(AtomicUsize::new(0));
            struct Counted(Arc<AtomicUsize>);
            impl Drop for Counted {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let f = SharedFn::new(Counted(drops.clone()));
            let shares: Vec<SharedFn<Counted>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4).map(|_| s.spawn(|| f.share())).collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut shares = shares;
            let first = shares[0].get_mut() as *const Counted;
            for s in &mut shares {
                assert_eq!(s.get_mut() as *const Counted, first, "one closure, shared");
            }
            drop(f);
            drop(shares);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    }
}
