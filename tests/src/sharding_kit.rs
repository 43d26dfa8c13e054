//! What the sharding tests share: an entity that records its life and every message it
//! handles into one log that all nodes of a test write, in one order, and the checks on it.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use casty::{event_sourced, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors};

/// What the recording entity takes.
#[casty::message_enum]
pub enum Rec {
    /// The `seq`th message from sender `from`.
    Note { from: u32, seq: u64 },
    /// Every note handled by this incarnation, in order.
    Get { reply_to: ActorRef<Vec<(u32, u64)>> },
}

/// One entry of the shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An incarnation started on a node (its port).
    Started {
        node: u16,
        entity: String,
    },
    Stopped {
        node: u16,
        entity: String,
    },
    Handled {
        node: u16,
        entity: String,
        from: u32,
        seq: u64,
    },
}

/// The log every entity of every node writes to, in one order.
#[derive(Debug, Default, Clone)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    /// Adds an entry.
    pub fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }

    /// Every entry, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// No entity ever has two incarnations running at once: its starts and stops alternate.
    pub fn check_single_incarnation(&self) {
        let mut running: BTreeMap<String, u16> = BTreeMap::new();
        for e in self.events() {
            match e {
                Event::Started { node, entity } => {
                    if let Some(other) = running.insert(entity.clone(), node) {
                        panic!("{entity} started on {node} while running on {other}");
                    }
                }
                Event::Stopped { node, entity } => {
                    assert_eq!(
                        running.remove(&entity),
                        Some(node),
                        "{entity} stopped twice"
                    );
                }
                Event::Handled { node, entity, .. } => {
                    assert_eq!(
                        running.get(&entity),
                        Some(&node),
                        "{entity} handled a message on {node} while not running there"
                    );
                }
            }
        }
    }

    /// For each (sender, entity), the sequence numbers handled, in the order handled.
    pub fn handled(&self) -> BTreeMap<(u32, String), Vec<u64>> {
        let mut out: BTreeMap<(u32, String), Vec<u64>> = BTreeMap::new();
        for e in self.events() {
            if let Event::Handled {
                entity, from, seq, ..
            } = e
            {
                out.entry((from, entity)).or_default().push(seq);
            }
        }
        out
    }

    /// The node each entity runs on now.
    pub fn homes(&self) -> BTreeMap<String, u16> {
        let mut out = BTreeMap::new();
        for e in self.events() {
            match e {
                Event::Started { node, entity } => {
                    out.insert(entity, node);
                }
                Event::Stopped { entity, .. } => {
                    out.remove(&entity);
                }
                Event::Handled { .. } => {}
            }
        }
        out
    }
}

/// An entity that records its life and what it handles in `log`.
pub fn recorder(node: u16, log: Log) -> impl Fn(&str) -> Behavior<Rec> + Send + Sync + 'static {
    move |id: &str| {
        let id = id.to_owned();
        let log = log.clone();
        let (l1, l2, i1, i2) = (log.clone(), log.clone(), id.clone(), id.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        Behaviors::with_lifecycle(Behaviors::receive(move |_ctx, msg: Rec| {
            match msg {
                Rec::Note { from, seq } => {
                    log.push(Event::Handled {
                        node,
                        entity: id.clone(),
                        from,
                        seq,
                    });
                    seen.lock().unwrap().push((from, seq));
                }
                Rec::Get { reply_to } => reply_to.tell(seen.lock().unwrap().clone()),
            }
            Behaviors::same()
        }))
        .pre_start(move |_| {
            l1.push(Event::Started {
                node,
                entity: i1.clone(),
            })
        })
        .post_stop(move |_| {
            l2.push(Event::Stopped {
                node,
                entity: i2.clone(),
            })
        })
        .into()
    }
}

// An event-sourced bank account, sharded in the tests and in the `sharded_node` process.

/// What an account persists.
#[message_enum]
pub enum Deposited {
    Deposited { amount: i64 },
}

/// What an account takes.
#[message_enum]
pub enum Account {
    Deposit {
        amount: i64,
    },
    GetBalance {
        reply_to: ActorRef<i64>,
    },
    /// Stop after this one (passivation asked by the entity itself).
    DepositThenRest {
        amount: i64,
    },
}

/// An event-sourced account: its balance.
#[message]
#[derive(Clone, Default)]
pub struct Balance {
    pub total: i64,
}

#[event_sourced]
impl Balance {
    fn on_event(&self, event: &Deposited) -> Self {
        match event {
            Deposited::Deposited { amount } => Balance {
                total: self.total + amount,
            },
        }
    }

    async fn on_command(&self, ctx: &mut ActorContext<Account>, cmd: Account) -> Behavior<Account> {
        match cmd {
            Account::Deposit { amount } => Behaviors::persisted([Deposited::Deposited { amount }]),
            Account::DepositThenRest { amount } => {
                use casty::sharding::Passivate;
                ctx.passivate();
                Behaviors::persisted([Deposited::Deposited { amount }])
            }
            Account::GetBalance { reply_to } => {
                reply_to.tell(self.total);
                Behaviors::same()
            }
        }
    }
}
