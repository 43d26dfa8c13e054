//! Ports the Casty (Python) example "Actor Runtime", with macros: lifecycle hooks, the event
//! stream, mailboxes and scheduling.
use std::time::Duration;

use casty::{
    behavior, message_enum, ActorContext, ActorStarted, ActorStopped, ActorSystem, Behavior,
    Behaviors, DeadLetter, Mailbox, Overflow, SpawnOptions,
};
use tokio::sync::mpsc;

// ANCHOR: lifecycle
#[behavior]
fn idle(_ctx: &mut ActorContext<String>, _msg: String) -> Behavior<String> {
    Behaviors::same()
}

fn my_actor() -> Behavior<String> {
    Behaviors::with_lifecycle(idle())
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

#[message_enum]
#[derive(Clone)]
enum Tick {
    #[unit]
    Report,
    #[unit]
    Timeout,
}

/// Forwards what it receives to a channel the example reads.
#[behavior]
fn forward(_ctx: &mut ActorContext<u32>, n: u32, out: mpsc::UnboundedSender<u32>) -> Behavior<u32> {
    let _ = out.send(n);
    Behaviors::same()
}

#[behavior]
fn ticks_to(
    _ctx: &mut ActorContext<Tick>,
    t: Tick,
    out: mpsc::UnboundedSender<&'static str>,
) -> Behavior<Tick> {
    let _ = out.send(match t {
        Tick::Report => "report",
        Tick::Timeout => "timeout",
    });
    Behaviors::same()
}

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
        .spawn_with(forward(got_tx), "bounded", opts)
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
    let account = system.spawn(ticks_to(tick_tx), "account").expect("spawn");
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
