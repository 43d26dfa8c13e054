//! Remoting across OS processes: a child node started by the test, tells and asks both ways,
//! SIGKILL (watch and asks fail), and a restart on the same port as a new incarnation (node
//! identity, R1).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use casty::remote::RemoteSettings;
use casty::testing::TestProbe;
use casty::{message_enum, ActorRef, ActorSystem, AskError, Behaviors};
use casty_tests::remote_proto::Account;
use casty_tests::T;

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

fn start_node(port: u16) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remote_node"))
        .args(["proc", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the node");
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
    let node = start_node(0);
    let system = local(Duration::from_secs(10)).await;
    let accounts = system
        .remote_ref::<Account>(&format!("{}/accounts", node.address))
        .unwrap();
    for amount in [100, 20, 3] {
        accounts.tell(Account::Deposit { amount });
    }
    assert_eq!(
        system.ask(&accounts, Account::balance, T).await.unwrap(),
        123
    );
    // The child sends to us: its reply names our address.
    let hello: String = system.ask(&accounts, Account::hello, T).await.unwrap();
    let ours = system.remote_address().unwrap().to_string();
    assert!(
        hello.starts_with(&format!("hello {ours}/_temp/ask-")),
        "{hello}"
    );
    assert!(hello.ends_with("from /accounts"), "{hello}");
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
    let mut node = start_node(0);
    let port: u16 = node.address.rsplit(':').next().unwrap().parse().unwrap();
    let system = local(Duration::from_millis(500)).await;
    let accounts = system
        .remote_ref::<Account>(&format!("{}/accounts", node.address))
        .unwrap();
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
    watcher.tell(Watching::Watch {
        target: old.clone(),
    });
    old.tell(Account::Deposit { amount: 5 });
    assert_eq!(system.ask(&old, Account::balance, T).await.unwrap(), 5);

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
    node.child.kill().expect("SIGKILL");
    let _ = node.child.wait();
    assert_eq!(report.expect_message(T).await, "terminated /accounts");
    // Watches crossed with the killed incarnation, so it is quarantined, and nothing is left
    // watched there.
    let c = system.remote_counters().unwrap();
    assert_eq!((c.quarantined, c.watching), (1, 0));
    let (r, took) = pending.await.unwrap();
    assert!(matches!(r, Err(AskError::Unreachable(_))), "{r:?}");
    assert!(
        took < Duration::from_secs(10),
        "the ask failed after {took:?}"
    );

    // Same port, new process: a new incarnation.
    let again = start_node(port);
    assert_eq!(again.address, node.address);
    let fresh = system
        .remote_ref::<Account>(&format!("{}/accounts", again.address))
        .unwrap();
    assert_eq!(system.ask(&fresh, Account::balance, T).await.unwrap(), 0);
    // The old incarnation's ref does not reach the new actor under the same name.
    old.tell(Account::Deposit { amount: 1000 });
    let r = system
        .ask(&old, Account::balance, Duration::from_millis(500))
        .await;
    assert!(r.is_err(), "the old ref reached the new incarnation: {r:?}");
    assert_eq!(system.ask(&fresh, Account::balance, T).await.unwrap(), 0);
    system.shutdown().await;
}
