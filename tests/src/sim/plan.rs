//! A random history for a simulated cluster, decided by one seed.
//!
//! A [`Plan`] is made before the run, from the seed alone: how many nodes, which start at once and
//! which join later, and a timed list of faults — crashes, restarts, graceful leaves, partitions
//! that hold messages back (as TCP over a flaky network does) or lose them (connections cut, frames
//! dropped), and lossy links. It ends with [`Action::Finish`]: every fault heals and every node that
//! is not running is started again, after which the cluster must settle into one view.
//!
//! The plan is made against a model of which hosts run, so that every action makes sense when it
//! comes (a crash hits a running host, a restart a crashed one). A long partition is the only thing
//! happening while it lasts, so that the split-brain resolver's decision can be checked when it
//! heals.

use std::time::Duration;

/// How long a partition lasts for the split-brain resolver to decide it: well beyond the failure
/// detector's delay plus `stable_after` (see [`super::runner`]'s timings).
pub const LONG_PARTITION: Duration = Duration::from_secs(8);

/// The seeded source of the plan's choices: SplitMix64, small and good enough for choosing.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// `true` with probability `pct` %.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next_u64() % from.len() as u64) as usize]
    }
}

/// What happens at one step. Hosts are numbered from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The host boots for the first time and joins through the seed nodes.
    Start(usize),
    /// The host's process dies at once, as with SIGKILL.
    Crash(usize),
    /// A crashed host starts again: a new incarnation at the same address.
    Restart(usize),
    /// The node leaves the cluster gracefully.
    Leave(usize),
    /// `side` is cut off from every other host, both ways. `lossy`: what is in flight is lost and
    /// connections fail; otherwise messages are held back and delivered at the heal.
    Isolate {
        /// The hosts on one side.
        side: Vec<usize>,
        /// Whether messages are lost rather than held.
        lossy: bool,
    },
    /// The partition ends.
    Heal,
    /// The link between two hosts drops this percentage of frames each way (0 ends it).
    Lossy {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// Frames dropped, in percent.
        percent: u8,
    },
    /// Every fault heals, and every host that is not running starts.
    Finish,
}

/// An action at a time from the start of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When, from the start of the run.
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// A whole history: the number of hosts and the steps, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The seed the plan was made from; it also seeds the network and the nodes.
    pub seed: u64,
    /// How many hosts, 3 to 9.
    pub hosts: usize,
    /// The steps, in time order; the last is [`Action::Finish`].
    pub steps: Vec<Step>,
}

/// What the planner knows of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    NotStarted,
    Running,
    Crashed,
    /// Left the cluster (its system stops).
    Gone,
}

impl Plan {
    /// The plan for `seed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty_tests::sim::{Action, Plan};
    ///
    /// let plan = Plan::random(7);
    /// assert_eq!(plan, Plan::random(7));
    /// assert!((3..=9).contains(&plan.hosts));
    /// assert_eq!(plan.steps.last().unwrap().action, Action::Finish);
    /// ```
    pub fn random(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let n = rng.between(3, 9) as usize;
        let mut hosts = vec![Host::NotStarted; n];
        let mut steps = Vec::new();
        let at = |ms: u64| Duration::from_millis(ms);

        // At least two hosts start within the first second; the others join later.
        let first = rng.between(2, n as u64) as usize;
        for (i, h) in hosts.iter_mut().enumerate().take(first) {
            steps.push(Step {
                at: at(rng.between(0, 1_000)),
                action: Action::Start(i),
            });
            *h = Host::Running;
        }
        let mut late: Vec<usize> = (first..n).collect();

        let mut t = 4_000;
        let faults = rng.between(3, 8);
        let mut lossy_link: Option<(usize, usize)> = None;
        for _ in 0..faults {
            t += rng.between(500, 4_000);
            let running: Vec<usize> = (0..n).filter(|&i| hosts[i] == Host::Running).collect();
            let down: Vec<usize> = (0..n)
                .filter(|&i| matches!(hosts[i], Host::Crashed | Host::Gone))
                .collect();
            let roll = rng.between(0, 99);
            let action = match roll {
                0..=14 if !late.is_empty() => {
                    let i = late.remove(0);
                    hosts[i] = Host::Running;
                    Action::Start(i)
                }
                15..=34 if running.len() > 1 => {
                    let i = rng.pick(&running);
                    hosts[i] = Host::Crashed;
                    Action::Crash(i)
                }
                35..=49 if !down.is_empty() => {
                    let i = rng.pick(&down);
                    hosts[i] = Host::Running;
                    Action::Restart(i)
                }
                50..=59 if running.len() > 1 => {
                    let i = rng.pick(&running);
                    hosts[i] = Host::Gone;
                    Action::Leave(i)
                }
                60..=84 if running.len() > 1 => {
                    // One side of at most half of all hosts, chosen among the running ones.
                    let k = rng.between(1, (running.len() as u64 / 2).max(1)) as usize;
                    let mut pool = running.clone();
                    let mut side = Vec::new();
                    for _ in 0..k {
                        let j = (rng.next_u64() % pool.len() as u64) as usize;
                        side.push(pool.remove(j));
                    }
                    side.sort_unstable();
                    let lossy = rng.chance(50);
                    let long = rng.chance(35);
                    steps.push(Step {
                        at: at(t),
                        action: Action::Isolate { side, lossy },
                    });
                    t += if long {
                        LONG_PARTITION.as_millis() as u64
                    } else {
                        rng.between(200, 1_500)
                    };
                    Action::Heal
                }
                _ => {
                    if let Some((a, b)) = lossy_link.take() {
                        Action::Lossy { a, b, percent: 0 }
                    } else {
                        let a = rng.between(0, n as u64 - 1) as usize;
                        let b = (a + rng.between(1, n as u64 - 1) as usize) % n;
                        lossy_link = Some((a, b));
                        Action::Lossy {
                            a,
                            b,
                            percent: rng.between(5, 40) as u8,
                        }
                    }
                }
            };
            steps.push(Step { at: at(t), action });
        }
        steps.push(Step {
            at: at(t + rng.between(500, 3_000)),
            action: Action::Finish,
        });
        steps.sort_by_key(|s| s.at);
        Plan {
            seed,
            hosts: n,
            steps,
        }
    }

    /// The plan as one line per step, for a failure message.
    pub fn describe(&self) -> String {
        let mut out = format!("{} hosts\n", self.hosts);
        for s in &self.steps {
            out.push_str(&format!("  {:>6} ms  {:?}\n", s.at.as_millis(), s.action));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_decided_by_its_seed_alone() {
        for seed in 0..50 {
            assert_eq!(Plan::random(seed), Plan::random(seed));
        }
        assert_ne!(Plan::random(1), Plan::random(2));
    }

    /// Replays the plan against the model of hosts: each action fits the state it meets.
    #[test]
    fn every_action_fits_the_state_of_its_host() {
        for seed in 0..500 {
            let plan = Plan::random(seed);
            let mut hosts = vec![Host::NotStarted; plan.hosts];
            let mut partitioned = false;
            for w in plan.steps.windows(2) {
                assert!(w[0].at <= w[1].at, "seed {seed}: steps out of order");
            }
            for s in &plan.steps {
                match &s.action {
                    Action::Start(i) => {
                        assert_eq!(hosts[*i], Host::NotStarted, "seed {seed}");
                        hosts[*i] = Host::Running;
                    }
                    Action::Crash(i) => {
                        assert_eq!(hosts[*i], Host::Running, "seed {seed}");
                        hosts[*i] = Host::Crashed;
                    }
                    Action::Restart(i) => {
                        assert!(
                            matches!(hosts[*i], Host::Crashed | Host::Gone),
                            "seed {seed}"
                        );
                        hosts[*i] = Host::Running;
                    }
                    Action::Leave(i) => {
                        assert_eq!(hosts[*i], Host::Running, "seed {seed}");
                        hosts[*i] = Host::Gone;
                    }
                    Action::Isolate { side, .. } => {
                        assert!(!partitioned, "seed {seed}: partitions overlap");
                        assert!(
                            !side.is_empty() && side.len() * 2 <= plan.hosts,
                            "seed {seed}"
                        );
                        partitioned = true;
                    }
                    Action::Heal => {
                        assert!(partitioned, "seed {seed}: a heal without a partition");
                        partitioned = false;
                    }
                    Action::Lossy { a, b, .. } => assert_ne!(a, b, "seed {seed}"),
                    Action::Finish => assert!(!partitioned, "seed {seed}"),
                }
            }
            assert_eq!(plan.steps.last().unwrap().action, Action::Finish);
        }
    }

    #[test]
    fn the_plans_cover_every_kind_of_fault_and_every_size() {
        let mut sizes = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let plan = Plan::random(seed);
            sizes.insert(plan.hosts);
            for s in &plan.steps {
                kinds.insert(match &s.action {
                    Action::Start(_) => "start",
                    Action::Crash(_) => "crash",
                    Action::Restart(_) => "restart",
                    Action::Leave(_) => "leave",
                    Action::Isolate { lossy: true, .. } => "lossy partition",
                    Action::Isolate { lossy: false, .. } => "held partition",
                    Action::Heal => "heal",
                    Action::Lossy { .. } => "lossy link",
                    Action::Finish => "finish",
                });
            }
        }
        assert_eq!(
            sizes.into_iter().collect::<Vec<_>>(),
            (3..=9).collect::<Vec<_>>()
        );
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }
}
