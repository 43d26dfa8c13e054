//! Tracing and observability: logs through `tracing` with the actor's path, the event stream, and
//! the remoting counters.
use std::time::Duration;

use casty::{
    ActorRestarted, ActorStarted, ActorStopped, ActorSystem, Behavior, Behaviors, DeadLetter,
    Directive, SupervisorStrategy, UnhandledMessage,
};
use tokio::sync::mpsc;

// ANCHOR: logging
fn greeter() -> Behavior<String> {
    Behaviors::receive(|ctx, name: String| {
        if name.is_empty() {
            return Ok(Behaviors::unhandled()); // published as an `UnhandledMessage`
        }
        if name == "crash" {
            return Err(std::io::Error::other("asked to crash"));
        }
        // Logged inside the actor's span: the line carries `actor{path=/greeter}`.
        ctx.log().in_scope(|| tracing::info!(%name, "greeting"));
        Ok(Behaviors::same())
    })
}
// ANCHOR_END: logging

#[tokio::main]
async fn main() {
    // ANCHOR: subscriber
    // An application installs a subscriber once, at start. This one prints INFO and above to
    // standard error, without timestamps.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    // ANCHOR_END: subscriber

    let system = ActorSystem::new("observability");
    let t = Duration::from_secs(5);

    // ANCHOR: events
    let (tx, mut events) = mpsc::unbounded_channel::<String>();
    let stream = system.event_stream();
    let tx1 = tx.clone();
    stream
        .subscribe(move |e: &ActorStarted| drop(tx1.send(format!("started {}", e.path))))
        .detach(); // kept for the life of the system
    let tx2 = tx.clone();
    stream
        .subscribe(move |e: &ActorRestarted| {
            drop(tx2.send(format!("restarted {} after: {}", e.path, e.failure)))
        })
        .detach();
    let tx3 = tx.clone();
    stream
        .subscribe(move |e: &UnhandledMessage| {
            drop(tx3.send(format!("unhandled {} by {}", e.message, e.recipient)))
        })
        .detach();
    let tx4 = tx.clone();
    stream
        .subscribe(move |e: &ActorStopped| drop(tx4.send(format!("stopped {}", e.path))))
        .detach();
    stream
        .subscribe(move |e: &DeadLetter| {
            drop(tx.send(format!(
                "dead letter {} to {} ({}, {} message(s))",
                e.message, e.recipient, e.reason, e.count
            )))
        })
        .detach();
    // ANCHOR_END: events

    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let greeter = system
        .spawn(Behaviors::supervise(greeter(), strategy), "greeter")
        .expect("spawn");
    let mut next = async || {
        tokio::time::timeout(t, events.recv())
            .await
            .expect("an event in time")
            .expect("an event")
    };
    println!("{}", next().await);
    greeter.tell("Alice"); // logged, no event
    greeter.tell("crash");
    println!("{}", next().await);
    greeter.tell("");
    println!("{}", next().await);
    system.stop(&greeter);
    println!("{}", next().await);
    greeter.tell("Bob");
    println!("{}", next().await);

    // ANCHOR: counters
    assert!(
        system.remote_counters().is_none(),
        "remoting is not started"
    );
    system
        .start_remote(casty::remote::RemoteSettings::new("127.0.0.1", 0))
        .await
        .expect("remoting starts");
    let c = system.remote_counters().expect("remoting is started");
    println!(
        "remote: {} frames out, {} in, {} dropped, {} refused, {} quarantined",
        c.frames_out, c.frames_in, c.dropped, c.refused, c.quarantined
    );
    // ANCHOR_END: counters
    system.shutdown().await;
}
