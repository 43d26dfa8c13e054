//! Blocking and slow work in actors: `spawn_blocking` piped back to the actor, an async handler,
//! and a runtime of its own for heavy work.
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

/// Slow, CPU-bound work that never awaits: it stands for hashing, compression, a blocking
/// database driver or file I/O.
fn count_primes(below: u64) -> usize {
    (2..below)
        .filter(|n| (2..).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .count()
}

// ANCHOR: spawn_blocking
#[derive(Debug)]
enum PrimesMsg {
    Count {
        below: u64,
        reply_to: ActorRef<String>,
    },
    /// The result of a count, sent back to the actor by `pipe_to_self`.
    Counted {
        below: u64,
        result: Result<usize, String>,
        reply_to: ActorRef<String>,
    },
    Ping(ActorRef<&'static str>),
}
impl Message for PrimesMsg {}

fn primes() -> Behavior<PrimesMsg> {
    Behaviors::receive(|ctx, msg| {
        match msg {
            PrimesMsg::Count { below, reply_to } => {
                // The work runs on tokio's blocking pool; the actor returns at once and goes on
                // with its mailbox. The result comes back as a message.
                let work = tokio::task::spawn_blocking(move || count_primes(below));
                ctx.pipe_to_self(work, move |joined| PrimesMsg::Counted {
                    below,
                    result: joined.map_err(|e| e.to_string()), // Err if the work panicked
                    reply_to,
                });
            }
            PrimesMsg::Counted {
                below,
                result,
                reply_to,
            } => match result {
                Ok(n) => reply_to.tell(format!("{n} primes below {below}")),
                Err(e) => reply_to.tell(format!("counting failed: {e}")),
            },
            PrimesMsg::Ping(reply_to) => reply_to.tell("pong"),
        }
        Behaviors::same()
    })
}
// ANCHOR_END: spawn_blocking

// ANCHOR: receive_async
#[derive(Debug)]
struct Fetch {
    url: String,
    reply_to: ActorRef<String>,
}
impl Message for Fetch {}

/// Stands for an async client call (HTTP, a database): it awaits without blocking a thread.
async fn fetch(url: &str) -> String {
    tokio::time::sleep(Duration::from_millis(10)).await;
    format!("<contents of {url}>")
}

fn fetcher() -> Behavior<Fetch> {
    Behaviors::receive_async(|_ctx, msg: Fetch| {
        Box::pin(async move {
            let body = fetch(&msg.url).await;
            msg.reply_to.tell(body);
            Behaviors::same()
        })
    })
}
// ANCHOR_END: receive_async

// ANCHOR: dedicated_runtime
#[derive(Debug)]
enum ReportMsg {
    Build {
        below: u64,
        reply_to: ActorRef<String>,
    },
    Built {
        text: String,
        reply_to: ActorRef<String>,
    },
}
impl Message for ReportMsg {}

/// Heavy jobs run on `heavy`, another tokio runtime with its own threads, so they never take the
/// threads the actors run on.
fn reports(heavy: tokio::runtime::Handle) -> Behavior<ReportMsg> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            ReportMsg::Build { below, reply_to } => {
                let job = heavy.spawn(async move {
                    let n = count_primes(below);
                    format!("report: {n} primes below {below}")
                });
                ctx.pipe_to_self(job, move |joined| ReportMsg::Built {
                    text: joined.unwrap_or_else(|e| format!("report failed: {e}")),
                    reply_to,
                });
            }
            ReportMsg::Built { text, reply_to } => reply_to.tell(text),
        }
        Behaviors::same()
    })
}
// ANCHOR_END: dedicated_runtime

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("blocking");
    let timeout = Duration::from_secs(10);

    // ANCHOR: spawn_blocking_main
    let primes = system.spawn(primes(), "primes").expect("spawn");
    let (count, pong) = tokio::join!(
        system.ask(
            &primes,
            |reply_to| PrimesMsg::Count {
                below: 20_000,
                reply_to
            },
            timeout
        ),
        // Asked while the count runs: the actor is free to answer.
        system.ask(&primes, PrimesMsg::Ping, timeout),
    );
    println!("{}", pong.expect("pong"));
    println!("{}", count.expect("count"));
    // ANCHOR_END: spawn_blocking_main

    let fetcher = system.spawn(fetcher(), "fetcher").expect("spawn");
    let body = system
        .ask(
            &fetcher,
            |reply_to| Fetch {
                url: "https://example.com/".into(),
                reply_to,
            },
            timeout,
        )
        .await
        .expect("fetch");
    println!("{body}");

    // ANCHOR: dedicated_runtime_main
    let heavy = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("heavy")
        .build()
        .expect("a runtime for heavy work");
    let reports = system
        .spawn(reports(heavy.handle().clone()), "reports")
        .expect("spawn");
    let report = system
        .ask(
            &reports,
            |reply_to| ReportMsg::Build {
                below: 10_000,
                reply_to,
            },
            timeout,
        )
        .await
        .expect("report");
    println!("{report}");
    system.shutdown().await;
    // A runtime may not be dropped from async code: let its threads finish in the background.
    heavy.shutdown_background();
    // ANCHOR_END: dedicated_runtime_main
}
