//! Cluster sharding across OS processes: three `sharded_node` processes on 127.0.0.1 run an
//! event-sourced, sharded bank on one SQLite file; one is killed with SIGKILL, and its accounts
//! come back on the others with every deposit they had persisted.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

struct Node {
    child: Child,
    stdin: ChildStdin,
    address: String,
    lines: Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(seed: &str, journal: &std::path::Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sharded_node"))
            .args(["0", seed, journal.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a node process");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(WAIT).expect("a READY line");
        let address = ready
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("{ready}"))
            .to_string();
        Node {
            child,
            stdin,
            address,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a command and returns the reply line.
    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no answer to {line}"))
    }

    fn balance(&mut self, id: &str) -> i64 {
        let reply = self.ask(&format!("BALANCE {id}"));
        let parts: Vec<&str> = reply.split_whitespace().collect();
        assert_eq!(parts[..2], ["BALANCE", id], "{reply}");
        parts[2].parse().unwrap()
    }

    fn hosts(&mut self) -> Vec<String> {
        let reply = self.ask("HOSTS");
        reply
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn a_killed_nodes_accounts_come_back_on_the_others_with_their_deposits() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("bank.db");
    let mut a = Node::start("self", &journal);
    let mut b = Node::start(&a.address.clone(), &journal);
    let mut c = Node::start(&a.address.clone(), &journal);
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(n.ask("UP 3"), "UP");
    }
    let ids: Vec<String> = (0..30).map(|i| format!("acct-{i}")).collect();
    for (k, id) in ids.iter().enumerate() {
        for _ in 0..3 {
            a.send(&format!("DEPOSIT {id} {}", k + 1));
        }
    }
    // Asked through the node that deposited: each account has all three deposits.
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(a.balance(id), 3 * (k as i64 + 1), "{id}");
    }
    let on_c = c.hosts();
    assert!(!on_c.is_empty(), "the third node hosts accounts");

    // SIGKILL: no leave, no handoff.
    drop(c);
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(b.balance(id), 3 * (k as i64 + 1), "{id} after the kill");
    }
    let mut now: Vec<String> = a.hosts();
    now.extend(b.hosts());
    for id in &on_c {
        assert!(now.contains(id), "{id} runs on a survivor: {now:?}");
    }
}
