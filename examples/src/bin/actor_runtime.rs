//! Ports the Casty (Python) example "Actor Runtime": lifecycle hooks, the event stream, mailboxes
//! and scheduling.
use std::time::Duration;

use casty::{
    ActorStarted, ActorStopped, ActorSystem, Behavior, Behaviors, DeadLetter, Mailbox, Message,
    Overflow, SpawnOptions,
};
use tokio::sync::mpsc;

// ANCHOR: lifecycle
fn my_actor() -> Behavior<String> {
    Behaviors::with_lifecycle(Behaviors::receive(|_ctx, _msg: String| Behaviors::same()))
        .pre_start(|ctx| {
            ctx.log().in_scope(|| tracing::info!("Actor starting"));
            println!("{}: pre_start", ctx.path());
        })
        .post_stop(|ctx| {
            ctx.log().in_scope(|| tracing::info!("Actor stopped"));
            println!("{}: post_stop", ctx.path());
        })
        .into()
}
// ANCHOR_END: lifecycle

#[derive(Debug, Clone)]
enum Tick {
    Report,
    Timeout,
}
impl Message for Tick {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let system = ActorSystem::new("runtime");
    let t = Duration::from_secs(5);

    // Lifecycle hooks.
    let a = system.spawn(my_actor(), "my-actor").expect("spawn");
    tokio::time::sleep(Duration::from_millis(20)).await;
    system.stop(&a);
    tokio::time::sleep(Duration::from_millis(20)).await;

    // ANCHOR: events
    let (tx, mut events) = mpsc::unbounded_channel::<String>();
    let (t1, t2, t3) = (tx.clone(), tx.clone(), tx);
    let stream = system.event_stream();
    // Each subscription lasts as long as its handle (`.detach()` keeps one for good).
    let _started =
        stream.subscribe(move |e: &ActorStarted| drop(t1.send(format!("Started: {}", e.path))));
    let _stopped =
        stream.subscribe(move |e: &ActorStopped| drop(t2.send(format!("Stopped: {}", e.path))));
    let _dead = stream.subscribe(move |e: &DeadLetter| {
        drop(t3.send(format!("Dead letter: {} to {}", e.message, e.recipient)))
    });
    // ANCHOR_END: events

    let temp = system
        .spawn(Behaviors::ignore::<String>(), "temp")
        .expect("spawn");
    println!("{}", events.recv().await.expect("started"));
    system.stop(&temp);
    println!("{}", events.recv().await.expect("stopped"));
    temp.tell("hello?"); // the actor has stopped: this becomes a dead letter
    println!("{}", events.recv().await.expect("dead letter"));

    // ANCHOR: mailbox
    let opts = SpawnOptions::default().mailbox(Mailbox::bounded(2, Overflow::DropOldest));
    let (got_tx, mut got) = mpsc::unbounded_channel::<u32>();
    let bounded = system
        .spawn_with(
            Behaviors::receive(move |_ctx, n: u32| {
                let _ = got_tx.send(n);
                Behaviors::same()
            }),
            "bounded",
            opts,
        )
        .expect("spawn");
    println!("{}", events.recv().await.expect("started"));
    for n in 1..=4u32 {
        bounded.tell(n); // the actor has not run yet: 1 and 2 are dropped for 3 and 4
    }
    println!("{}", events.recv().await.expect("dead letter 1"));
    println!("{}", events.recv().await.expect("dead letter 2"));
    println!("bounded got: {}", got.recv().await.expect("3"));
    println!("bounded got: {}", got.recv().await.expect("4"));
    // ANCHOR_END: mailbox

    // ANCHOR: scheduling
    let (tick_tx, mut ticks) = mpsc::unbounded_channel::<&'static str>();
    let account = system
        .spawn(
            Behaviors::receive(move |_ctx, t: Tick| {
                let _ = tick_tx.send(match t {
                    Tick::Report => "report",
                    Tick::Timeout => "timeout",
                });
                Behaviors::same()
            }),
            "account",
        )
        .expect("spawn");
    println!("{}", events.recv().await.expect("started"));
    let scheduler = system.scheduler();
    scheduler.tick("report", &account, Tick::Report, Duration::from_millis(20));
    for i in 1..=3 {
        println!(
            "{} #{i}",
            tokio::time::timeout(t, ticks.recv())
                .await
                .expect("tick")
                .expect("tick")
        );
    }
    scheduler.cancel("report");
    scheduler.schedule(
        "timeout",
        &account,
        Tick::Timeout,
        Duration::from_millis(30),
    );
    loop {
        // A report tick may already have been queued before the cancel.
        let m = tokio::time::timeout(t, ticks.recv())
            .await
            .expect("timeout")
            .expect("timeout");
        if m == "timeout" {
            println!("{m}");
            break;
        }
    }
    // ANCHOR_END: scheduling
    system.shutdown().await;
}
