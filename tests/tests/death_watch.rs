//! Death watch: `Terminated` exactly once, also for an actor already dead when watched;
//! `watch_with` and `unwatch` (L8); a parent replacing a terminated child under its name.

use std::time::Duration;

use casty::testing::TestKit;
use casty::{ActorRef, Behavior, Behaviors, Terminated};
use casty_tests::{QUIET, T};

#[derive(Debug)]
enum W {
    Watch(ActorRef<u8>),
    WatchWith(ActorRef<u8>),
    Unwatch(ActorRef<u8>),
    Terminated(Terminated),
    Custom(String),
}
impl casty::Message for W {}
impl From<Terminated> for W {
    fn from(t: Terminated) -> Self {
        W::Terminated(t)
    }
}

fn watcher(report: ActorRef<String>) -> Behavior<W> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            W::Watch(r) => ctx.watch(&r),
            W::WatchWith(r) => ctx.watch_with(&r, W::Custom(format!("custom {}", r.path()))),
            W::Unwatch(r) => ctx.unwatch(&r),
            W::Terminated(t) => report.tell(format!("terminated {}", t.path)),
            W::Custom(s) => report.tell(s),
        }
        Behaviors::same()
    })
}

// A watcher gets Terminated exactly once, also when it watched twice, and also when the actor was
// already dead when it watched (L8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_arrives_exactly_once_even_if_already_dead() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let w = kit.spawn(watcher(report.actor_ref()), "watcher");
    let target = kit.spawn(Behaviors::ignore::<u8>(), "target");
    w.tell(W::Watch(target.clone()));
    w.tell(W::Watch(target.clone())); // watching twice still yields one Terminated
    w.tell(W::Custom("both watches registered".into()));
    assert_eq!(report.expect_message(T).await, "both watches registered");
    kit.system().stop(&target);
    assert_eq!(report.expect_message(T).await, "terminated /target");
    report.expect_no_message(QUIET).await;

    w.tell(W::Watch(target.clone())); // already dead
    assert_eq!(report.expect_message(T).await, "terminated /target");
    report.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// watch_with delivers the given message instead of Terminated; unwatch suppresses delivery (L8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_delivers_its_message_and_unwatch_suppresses_delivery() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let w = kit.spawn(watcher(report.actor_ref()), "watcher");
    let a = kit.spawn(Behaviors::ignore::<u8>(), "a");
    let b = kit.spawn(Behaviors::ignore::<u8>(), "b");
    w.tell(W::WatchWith(a.clone()));
    w.tell(W::Watch(b.clone()));
    w.tell(W::Unwatch(b.clone()));
    w.tell(W::Custom("synced".into()));
    assert_eq!(report.expect_message(T).await, "synced");
    kit.system().stop(&a);
    kit.system().stop(&b);
    assert_eq!(report.expect_message(T).await, "custom /a");
    report.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// Unwatch suppresses a Terminated that is already queued (L8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwatch_suppresses_an_already_queued_terminated() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let target = kit.spawn(Behaviors::ignore::<u8>(), "target");
    let mut w8 = kit.probe::<()>();
    let sys = kit.system().clone();
    let r = report.actor_ref();
    // On "go": watch, stop the target, wait until it is gone (its Terminated is queued behind this
    // handler), then unwatch before returning.
    let w = kit.spawn(
        Behaviors::receive_async(move |ctx, msg: W| {
            let (sys, r) = (sys.clone(), r.clone());
            Box::pin(async move {
                match msg {
                    W::Watch(t) => {
                        ctx.watch(&t);
                        sys.stop(&t);
                        while sys.lookup::<u8>("/target").is_some() {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        ctx.unwatch(&t);
                        r.tell("unwatched".to_string());
                    }
                    W::Terminated(t) => r.tell(format!("terminated {}", t.path)),
                    _ => {}
                }
                Behaviors::same()
            })
        }),
        "w",
    );
    w.tell(W::Watch(target.clone()));
    assert_eq!(report.expect_message(T).await, "unwatched");
    report.expect_no_message(QUIET).await;
    w8.expect_terminated(&target, T).await;
    kit.shutdown().await;
}

#[derive(Debug)]
enum Parent {
    StopWorker,
    Terminated(Terminated),
}
impl casty::Message for Parent {}
impl From<Terminated> for Parent {
    fn from(t: Terminated) -> Self {
        Parent::Terminated(t)
    }
}

/// Watches its child "worker" and, when it terminates, reports its children and starts a
/// replacement under the same name.
fn replacing_parent(report: ActorRef<String>) -> Behavior<Parent> {
    Behaviors::setup(move |ctx| {
        let worker = ctx.spawn(Behaviors::ignore::<u8>(), "worker").unwrap();
        ctx.watch(&worker);
        let report = report.clone();
        Behaviors::receive(move |ctx, msg| {
            match msg {
                Parent::StopWorker => {
                    if let Some(w) = ctx.child::<u8>("worker") {
                        ctx.stop(&w);
                    }
                }
                Parent::Terminated(t) => {
                    let children: Vec<String> =
                        ctx.children().iter().map(|p| p.to_string()).collect();
                    let spawned = ctx.spawn(Behaviors::ignore::<u8>(), "worker");
                    let uid_changed = spawned.as_ref().is_ok_and(|n| n.path() != &t.path);
                    report.tell(format!(
                        "terminated {}; children {children:?}; replacement {}; new uid {uid_changed}",
                        t.path,
                        if spawned.is_ok() { "started" } else { "refused" },
                    ));
                    if let Ok(n) = spawned {
                        ctx.watch(&n);
                    }
                }
            }
            Behaviors::same()
        })
    })
}

// By the time a parent handles Terminated for its child, the child is gone from children() and
// its name is free, so "on Terminated, start a replacement" works, again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_child_is_gone_and_its_name_free_for_a_replacement() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let p = kit.spawn(replacing_parent(report.actor_ref()), "parent");
    for _ in 0..3 {
        p.tell(Parent::StopWorker);
        assert_eq!(
            report.expect_message(T).await,
            "terminated /parent/worker; children []; replacement started; new uid true"
        );
    }
    kit.shutdown().await;
}
