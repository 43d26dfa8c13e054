//! Cluster membership across OS processes: three `cluster_node` processes on 127.0.0.1 form a
//! cluster; one is killed with SIGKILL and the others remove it; it is restarted on the same port
//! and joins again as a new incarnation.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A node process, and the lines it prints.
struct Node {
    child: Child,
    address: String,
    port: u16,
    uid: u64,
    lines: Receiver<String>,
    /// Every event line read so far, as (kind, port, uid).
    events: Vec<(String, u16, u64)>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(port: u16, seed: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cluster_node"))
            .args([port.to_string().as_str(), seed])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a node process");
        let stdout = child.stdout.take().unwrap();
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
        let mut parts = ready.split_whitespace();
        assert_eq!(parts.next(), Some("READY"), "{ready}");
        let address = parts.next().unwrap().to_string();
        let uid = parts.next().unwrap().parse().unwrap();
        let port = address.rsplit(':').next().unwrap().parse().unwrap();
        Node {
            child,
            address,
            port,
            uid,
            lines,
            events: Vec::new(),
        }
    }

    /// Reads event lines until `(kind, port, uid)` is among them.
    fn wait_for(&mut self, kind: &str, port: u16, uid: u64) {
        let deadline = Instant::now() + WAIT;
        while !self
            .events
            .iter()
            .any(|(k, p, u)| k == kind && *p == port && *u == uid)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "node {} did not see {kind} {port} {uid}; it saw {:?}",
                    self.port, self.events
                )
            });
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["EVENT", kind, port, uid] = parts[..] {
                self.events.push((
                    kind.to_string(),
                    port.parse().unwrap(),
                    uid.parse().unwrap(),
                ));
            }
        }
    }

    /// The kinds of the events seen about incarnation `uid`, in order.
    fn about(&self, uid: u64) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(_, _, u)| *u == uid)
            .map(|(k, _, _)| k.as_str())
            .collect()
    }
}

#[test]
fn a_killed_node_is_removed_and_its_restart_joins_as_a_new_incarnation() {
    let mut a = Node::start(0, "self");
    let mut b = Node::start(0, &a.address.clone());
    let c = Node::start(0, &a.address.clone());
    for n in [&mut a, &mut b] {
        n.wait_for("up", c.port, c.uid);
    }
    b.wait_for("up", a.port, a.uid);

    // SIGKILL: no leave, no goodbye.
    let (c_port, c_uid) = (c.port, c.uid);
    drop(c);
    for n in [&mut a, &mut b] {
        n.wait_for("removed", c_port, c_uid);
    }
    assert_eq!(
        a.about(c_uid),
        ["joined", "up", "unreachable", "downed", "removed"]
    );

    // The same port again: a new incarnation, Up once the old one is gone.
    let c2 = Node::start(c_port, &a.address.clone());
    assert_ne!(c2.uid, c_uid);
    for n in [&mut a, &mut b] {
        n.wait_for("up", c_port, c2.uid);
    }
    assert_eq!(a.about(c_uid).last(), Some(&"removed"));
}
