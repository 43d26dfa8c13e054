//! When an event-sourced entity saves a snapshot of its state, and how many it keeps.
//!
//! A snapshot lets recovery start from a saved state and replay only the newer events (P5). The
//! policy is checked after every successful write: if any event of the batch triggers it, the state
//! after the batch is saved at the batch's last sequence number. `keep_last(k)` then deletes all
//! but the newest `k` snapshots.

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
            Rule::Every(n) => seq % n == 0,
            Rule::Predicate(f) => f(state, event, seq),
        }
    }

    /// Whether this policy can ever snapshot.
    pub fn is_never(&self) -> bool {
        matches!(self.rule, Rule::Never)
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
