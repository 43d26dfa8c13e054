//! A remoting node in its own process, for the multi-process tests: binds `127.0.0.1:<port>`
//! (0 for any), spawns `/accounts`, prints `READY <address>`, and runs until killed.
//! Usage: `remote_node <system> <port>`.

use std::io::Write;

use casty::remote::RemoteSettings;
use casty::ActorSystem;
use casty_tests::remote_proto::account;
use casty_tests::{step, Steps};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "proc".into());
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let steps = Steps::in_process("remote_node");
    step!(
        steps,
        "start the system {name:?} with remoting on 127.0.0.1:{port}"
    );
    let system = ActorSystem::new(name);
    let address = system
        .start_remote(RemoteSettings::new("127.0.0.1", port))
        .await
        .expect("bind");
    step!(steps, "bound {address}; spawn /accounts");
    system.spawn(account(0), "accounts").expect("spawn");
    step!(steps, "ready at {address}; running until killed");
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {address}").expect("stdout");
    out.flush().expect("flush");
    drop(out);
    std::future::pending::<()>().await;
}
