//! A cluster node in its own process, for the multi-process tests: binds `127.0.0.1:<port>` (0
//! for any) with test timings, joins through `<seed>` (or forms a cluster when the seed is `self`),
//! prints `READY <address> <uid>`, then one line per membership event about a member,
//! `EVENT <kind> <port> <uid>`, and runs until killed.
//! Usage: `cluster_node <port> <seed address | self>`.

use std::io::Write;

use casty_tests::cluster_kit::{event_line, fast_node};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let seed = args.next().unwrap_or_else(|| "self".into());
    let mut builder = fast_node().port(port);
    if seed != "self" {
        builder = builder.seed_nodes([seed.clone()]);
    }
    let node = builder.start().await.expect("start the node");
    if seed == "self" {
        node.cluster().join(node.address().clone());
    }
    let print = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").expect("stdout");
        out.flush().expect("flush");
    };
    print(format!(
        "READY {} {}",
        node.address(),
        node.cluster().self_node().uid
    ));
    node.cluster().subscribe(move |e| {
        if let Some((kind, port, uid)) = event_line(e) {
            print(format!("EVENT {kind} {port} {uid}"));
        }
    });
    std::future::pending::<()>().await;
}
