//! When an event-sourced entity saves a snapshot of its state, and how many it keeps.
//!
//! A snapshot lets recovery start from a saved state and replay only the newer events (P5). The
//! policy is checked after every successful write: if any event of the batch triggers it, the state
//! after the batch is saved at the batch's last sequence number. `keep_last(k)` then deletes all
//! but the newest `k` snapshots.
//!
//! Both decisions are pure: [`SnapshotPolicy::apply_batch`] folds a written batch and says at which
//! sequence number to snapshot, and [`KnownSnapshots::saved`] says which older snapshots to delete.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

type Predicate<S, E> = dyn Fn(&S, &E, u64) -> bool + Send + Sync;

enum Rule<S, E> {
    Never,
    Every(u64),
    Predicate(Arc<Predicate<S, E>>),
}

/// When to save snapshots. The default is never.
///
/// # Examples
///
/// ```
/// use casty::SnapshotPolicy;
///
/// // After events 100, 200, 300, …; keep only the newest two snapshots.
/// let p: SnapshotPolicy<u64, u64> = SnapshotPolicy::every(100).keep_last(2);
/// assert!(p.triggers(&0, &1, 200));
/// assert!(!p.triggers(&0, &1, 201));
///
/// // After any event that makes the state a multiple of 10.
/// let q: SnapshotPolicy<u64, u64> = SnapshotPolicy::predicate(|state: &u64, _e: &u64, _seq| state % 10 == 0);
/// assert!(q.triggers(&20, &5, 7));
/// ```
pub struct SnapshotPolicy<S, E> {
    rule: Rule<S, E>,
    keep_last: Option<usize>,
}

impl<S, E> SnapshotPolicy<S, E> {
    /// Never snapshot: recovery replays the whole log.
    pub fn never() -> Self {
        SnapshotPolicy {
            rule: Rule::Never,
            keep_last: None,
        }
    }

    /// Snapshot after every `n` events: when a sequence number that is a multiple of `n` is
    /// written. `every(0)` never snapshots.
    pub fn every(n: u64) -> Self {
        SnapshotPolicy {
            rule: if n == 0 { Rule::Never } else { Rule::Every(n) },
            keep_last: None,
        }
    }

    /// Snapshot when `f(new_state, event, seq)` is true for an event just written.
    pub fn predicate(f: impl Fn(&S, &E, u64) -> bool + Send + Sync + 'static) -> Self {
        SnapshotPolicy {
            rule: Rule::Predicate(Arc::new(f)),
            keep_last: None,
        }
    }

    /// After each snapshot, delete all but the newest `k` (at least 1).
    pub fn keep_last(mut self, k: usize) -> Self {
        self.keep_last = Some(k.max(1));
        self
    }

    /// How many snapshots are kept, if limited.
    pub fn kept(&self) -> Option<usize> {
        self.keep_last
    }

    /// Whether writing `event` as `seq`, giving `state`, calls for a snapshot.
    pub fn triggers(&self, state: &S, event: &E, seq: u64) -> bool {
        match &self.rule {
            Rule::Never => false,
            Rule::Every(n) => seq.is_multiple_of(*n),
            Rule::Predicate(f) => f(state, event, seq),
        }
    }

    /// Whether this policy can ever snapshot.
    pub fn is_never(&self) -> bool {
        matches!(self.rule, Rule::Never)
    }

    /// Applies a batch written after `*seq`: folds each event into `state` with `on_event`,
    /// advancing `seq`, and asks the policy about each event (every one, even after one has
    /// triggered). Returns the sequence number to snapshot at: the batch's last, if any event
    /// triggered the policy.
    pub(crate) fn apply_batch<'e>(
        &self,
        state: &mut S,
        seq: &mut u64,
        events: impl IntoIterator<Item = &'e E>,
        on_event: impl Fn(&S, &E) -> S,
    ) -> Option<u64>
    where
        E: 'e,
    {
        let mut snapshot = false;
        for e in events {
            *seq += 1;
            *state = on_event(state, e);
            snapshot |= self.triggers(state, e, *seq);
        }
        snapshot.then_some(*seq)
    }
}

/// The snapshots an entity knows it has, oldest first: the one recovery started from and those
/// saved since. With `keep_last(k)` it says which older snapshots to delete.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KnownSnapshots(VecDeque<u64>);

impl KnownSnapshots {
    /// Forgets every snapshot (recovery starts over).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// Records the snapshot recovery started from.
    pub(crate) fn recovered(&mut self, seq: u64) {
        self.0.push_back(seq);
    }

    /// Records a snapshot just saved at `seq` (saving again at the newest one replaces it). With
    /// `keep_last` = `Some(k)` and more than `k` known, forgets all but the newest `k` and returns
    /// the oldest kept one: the journal deletes the snapshots before it.
    pub(crate) fn saved(&mut self, seq: u64, keep_last: Option<usize>) -> Option<u64> {
        if self.0.back() != Some(&seq) {
            self.0.push_back(seq);
        }
        let k = keep_last?;
        if self.0.len() <= k {
            return None;
        }
        while self.0.len() > k {
            self.0.pop_front();
        }
        self.0.front().copied()
    }
}

impl<S, E> Default for SnapshotPolicy<S, E> {
    fn default() -> Self {
        Self::never()
    }
}

impl<S, E> Clone for SnapshotPolicy<S, E> {
    fn clone(&self) -> Self {
        SnapshotPolicy {
            rule: match &self.rule {
                Rule::Never => Rule::Never,
                Rule::Every(n) => Rule::Every(*n),
                Rule::Predicate(f) => Rule::Predicate(f.clone()),
            },
            keep_last: self.keep_last,
        }
    }
}

impl<S, E> fmt::Debug for SnapshotPolicy<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match &self.rule {
            Rule::Never => "never".to_string(),
            Rule::Every(n) => format!("every({n})"),
            Rule::Predicate(_) => "predicate".to_string(),
        };
        f.debug_struct("SnapshotPolicy")
            .field("rule", &rule)
            .field("keep_last", &self.keep_last)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(total: &u64, e: &u64) -> u64 {
        total + e
    }

    #[test]
    fn every_n_snapshots_at_the_last_seq_of_a_batch_that_crosses_a_multiple_of_n() {
        let p: SnapshotPolicy<u64, u64> = SnapshotPolicy::every(3);
        let (mut state, mut seq) = (0, 0);
        assert_eq!(p.apply_batch(&mut state, &mut seq, &[1, 2], add), None);
        assert_eq!((state, seq), (3, 2));
        // Seqs 3, 4 and 5: 3 triggers, the snapshot is of the state after 5.
        assert_eq!(
            p.apply_batch(&mut state, &mut seq, &[3, 4, 5], add),
            Some(5)
        );
        assert_eq!((state, seq), (15, 5));
        assert_eq!(p.apply_batch(&mut state, &mut seq, &[6], add), Some(6));
        assert_eq!(p.apply_batch(&mut state, &mut seq, &[], add), None);
        assert_eq!((state, seq), (21, 6));
    }

    #[test]
    fn never_and_every_zero_never_snapshot() {
        for p in [SnapshotPolicy::never(), SnapshotPolicy::every(0)] {
            let (mut state, mut seq) = (0u64, 0u64);
            let events: Vec<u64> = (1..=10).collect();
            assert_eq!(p.apply_batch(&mut state, &mut seq, &events, add), None);
            assert_eq!((state, seq), (55, 10));
        }
    }

    #[test]
    fn a_predicate_sees_each_new_state_event_and_seq() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let p = SnapshotPolicy::predicate(move |state: &u64, e: &u64, seq| {
            s.lock().unwrap().push((*state, *e, seq));
            *state == 3
        });
        let (mut state, mut seq) = (0, 10);
        assert_eq!(
            p.apply_batch(&mut state, &mut seq, &[1, 2, 4], add),
            Some(13)
        );
        // Every event is shown to the predicate, also after it triggered.
        assert_eq!(*seen.lock().unwrap(), [(1, 1, 11), (3, 2, 12), (7, 4, 13)]);
    }

    #[test]
    fn keep_last_deletes_all_but_the_newest_k() {
        let mut known = KnownSnapshots::default();
        known.recovered(100);
        assert_eq!(known.saved(200, Some(2)), None);
        assert_eq!(known.saved(300, Some(2)), Some(200));
        assert_eq!(known.saved(400, Some(2)), Some(300));
        // Saving again at the newest seq replaces it: nothing more to delete.
        assert_eq!(known.saved(400, Some(2)), None);
        assert_eq!(known, KnownSnapshots(VecDeque::from([300, 400])));
    }

    #[test]
    fn keep_last_one_keeps_only_the_newest() {
        let mut known = KnownSnapshots::default();
        assert_eq!(known.saved(5, Some(1)), None);
        assert_eq!(known.saved(10, Some(1)), Some(10));
        assert_eq!(known, KnownSnapshots(VecDeque::from([10])));
    }

    #[test]
    fn without_keep_last_nothing_is_deleted() {
        let mut known = KnownSnapshots::default();
        for seq in [1, 2, 3, 4] {
            assert_eq!(known.saved(seq, None), None);
        }
        assert_eq!(known, KnownSnapshots(VecDeque::from([1, 2, 3, 4])));
        known.clear();
        assert_eq!(known, KnownSnapshots::default());
    }
}
