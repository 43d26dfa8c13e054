//! Remoting across OS processes: a child node started by the test, tells and asks both ways,
//! SIGKILL (watch and asks fail), and a restart on the same port as a new incarnation (node
//! identity, R1).
//! Each test prints its steps (`step 3: SIGKILL node B (pid 1234)`), so a failing run's output
//! shows how far it got.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use casty::remote::RemoteSettings;
use casty::testing::TestProbe;
use casty::{message_enum, ActorRef, ActorSystem, AskError, Behaviors};
use casty_tests::remote_proto::Account;
use casty_tests::{step, Steps, T};

struct Node {
    child: Child,
    address: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts node B (the `remote_node` binary) on `port` (0 for any) and waits for its `READY` line;
/// `start` says which start this is in the steps ("start", "restart").
fn start_node(steps: &Steps, start: &str, port: u16) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remote_node"))
        .args(["proc", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the node");
    step!(
        steps,
        "{start} node B as a process on port {port} (pid {}); wait until it is ready",
        child.id()
    );
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("READY line");
    let address = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    step!(steps, "node B is ready at {address}");
    Node { child, address }
}

async fn local(unreachable_after: Duration) -> ActorSystem {
    let system = ActorSystem::new("proc");
    system
        .start_remote(RemoteSettings::new("127.0.0.1", 0).unreachable_after(unreachable_after))
        .await
        .unwrap();
    system
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_and_asks_between_processes_both_ways() {
    let steps = Steps::new();
    let node = start_node(&steps, "start", 0);
    step!(steps, "start the local system A with remoting");
    let system = local(Duration::from_secs(10)).await;
    let accounts = system
        .remote_ref::<Account>(&format!("{}/accounts", node.address))
        .unwrap();
    step!(
        steps,
        "tell B's /accounts three deposits (100, 20, 3), then ask its balance: expect 123"
    );
    for amount in [100, 20, 3] {
        accounts.tell(Account::Deposit { amount });
    }
    assert_eq!(
        system.ask(&accounts, Account::balance, T).await.unwrap(),
        123
    );
    // The child sends to us: its reply names our address.
    let ours = system.remote_address().unwrap().to_string();
    step!(
        steps,
        "ask B for a hello, which B sends to A: expect it to name A's address {ours}"
    );
    let hello: String = system.ask(&accounts, Account::hello, T).await.unwrap();
    assert!(
        hello.starts_with(&format!("hello {ours}/_temp/ask-")),
        "{hello}"
    );
    assert!(hello.ends_with("from /accounts"), "{hello}");
    step!(steps, "shut down A; node B is killed when the test ends");
    system.shutdown().await;
}

#[message_enum(terminated)]
enum Watching {
    Watch { target: ActorRef<Account> },
}

// SIGKILL: the watcher gets `Terminated`; a pending ask fails before its timeout. A restart on
// the same port is a new incarnation: the old actor's ref reaches nothing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_terminates_and_a_restart_is_a_new_incarnation() {
    let steps = Steps::new();
    let mut node = start_node(&steps, "start", 0);
    let port: u16 = node.address.rsplit(':').next().unwrap().parse().unwrap();
    step!(
        steps,
        "start the local system A with remoting (unreachable after 500 ms)"
    );
    let system = local(Duration::from_millis(500)).await;
    let accounts = system
        .remote_ref::<Account>(&format!("{}/accounts", node.address))
        .unwrap();
    step!(
        steps,
        "ask B's /accounts for its ref: expect the path /accounts"
    );
    let old: ActorRef<Account> = system.ask(&accounts, Account::identify, T).await.unwrap();
    assert_eq!(old.path().as_str(), "/accounts");

    let mut report = TestProbe::<String>::new(&system);
    let r = report.actor_ref();
    let watcher = system
        .spawn(
            Behaviors::receive(move |ctx, msg: Watching| {
                match msg {
                    Watching::Watch { target } => ctx.watch(&target),
                    Watching::Terminated(t) => r.tell(format!("terminated {}", t.path.as_str())),
                }
                Behaviors::same()
            }),
            "watcher",
        )
        .unwrap();
    step!(
        steps,
        "watch B's /accounts from A; deposit 5 and ask the balance: expect 5"
    );
    watcher.tell(Watching::Watch {
        target: old.clone(),
    });
    old.tell(Account::Deposit { amount: 5 });
    assert_eq!(system.ask(&old, Account::balance, T).await.unwrap(), 5);

    step!(
        steps,
        "ask B's /accounts a question it never answers (60 s timeout), in the background"
    );
    let pending = {
        let system = system.clone();
        let old = old.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = system
                .ask(&old, Account::ignore, Duration::from_secs(60))
                .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    step!(steps, "SIGKILL node B (pid {})", node.child.id());
    node.child.kill().expect("SIGKILL");
    let _ = node.child.wait();
    step!(steps, "expect A's watcher to get Terminated for /accounts");
    assert_eq!(report.expect_message(T).await, "terminated /accounts");
    // Watches crossed with the killed incarnation, so it is quarantined, and nothing is left
    // watched there.
    step!(
        steps,
        "expect B's killed incarnation quarantined and nothing watched there"
    );
    let c = system.remote_counters().unwrap();
    assert_eq!((c.quarantined, c.watching), (1, 0));
    step!(
        steps,
        "expect the pending ask to fail as unreachable well before its timeout"
    );
    let (r, took) = pending.await.unwrap();
    assert!(matches!(r, Err(AskError::Unreachable(_))), "{r:?}");
    assert!(
        took < Duration::from_secs(10),
        "the ask failed after {took:?}"
    );

    // Same port, new process: a new incarnation.
    let again = start_node(&steps, "restart", port);
    assert_eq!(again.address, node.address);
    let fresh = system
        .remote_ref::<Account>(&format!("{}/accounts", again.address))
        .unwrap();
    step!(
        steps,
        "ask the restarted node's /accounts its balance: expect 0 (a new actor)"
    );
    assert_eq!(system.ask(&fresh, Account::balance, T).await.unwrap(), 0);
    // The old incarnation's ref does not reach the new actor under the same name.
    step!(
        steps,
        "deposit 1000 through the old incarnation's ref: expect it to reach nothing (balance stays 0)"
    );
    old.tell(Account::Deposit { amount: 1000 });
    let r = system
        .ask(&old, Account::balance, Duration::from_millis(500))
        .await;
    assert!(r.is_err(), "the old ref reached the new incarnation: {r:?}");
    assert_eq!(system.ask(&fresh, Account::balance, T).await.unwrap(), 0);
    system.shutdown().await;
}
