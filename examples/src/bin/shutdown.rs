//! Shutdown: children stop before their parents and every `post_stop` runs, within a timeout that
//! bounds the wait for an actor that never finishes.
use std::time::Duration;

use casty::{ActorSystem, Behavior, Behaviors, ShutdownTimedOut};
use tokio::sync::mpsc;

// ANCHOR: tree
/// An actor that says when it stops, with `depth` more levels of children under it.
fn service(depth: u32) -> Behavior<String> {
    Behaviors::with_lifecycle(Behaviors::setup(move |ctx| {
        if depth > 0 {
            ctx.spawn(service(depth - 1), "child").expect("spawn");
        }
        Behaviors::ignore()
    }))
    .post_stop(|ctx| println!("post_stop {}", ctx.path()))
    .into()
}

/// A handler that never completes once it has a message (it says so on `entered` first): only
/// the shutdown timeout ends it.
fn stuck(entered: mpsc::UnboundedSender<()>) -> Behavior<u8> {
    Behaviors::receive_async(move |_ctx, _m: u8| {
        let _ = entered.send(());
        Box::pin(async {
            std::future::pending::<()>().await;
            Behaviors::same()
        })
    })
}
// ANCHOR_END: tree

#[tokio::main]
async fn main() {
    // ANCHOR: main
    let system = ActorSystem::builder()
        .name("shutdown")
        .shutdown_timeout(Duration::from_millis(300)) // the default is 10 s
        .build();
    let (tx, mut timed_out) = mpsc::unbounded_channel();
    system
        .event_stream()
        .subscribe(move |e: &ShutdownTimedOut| {
            let _ = tx.send(e.aborted.len());
        })
        .detach();

    system.spawn(service(2), "app").expect("spawn");
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let stuck = system.spawn(stuck(entered_tx), "stuck").expect("spawn");
    stuck.tell(1);
    entered
        .recv()
        .await
        .expect("the stuck actor is in its handler");
    while system.lookup::<String>("/app/child/child").is_none() {
        tokio::task::yield_now().await; // until the whole tree is up
    }

    let outcome = system.shutdown().await;
    println!("complete: {}", outcome.is_complete());
    for path in outcome.aborted() {
        println!("aborted: {path}");
    }
    let n = tokio::time::timeout(Duration::from_secs(5), timed_out.recv())
        .await
        .expect("the event in time")
        .expect("the event");
    println!("ShutdownTimedOut event: {n} actor(s) aborted");
    // ANCHOR_END: main
}
