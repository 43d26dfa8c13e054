//! The child process of the crash test: writes acknowledged deposits as fast as it can and prints
//! `<persistence id> <seq>` for each one, after its `persisted` acknowledgement. The test kills it
//! with SIGKILL mid-stream. Usage: `journal_writer <file> <entities>`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use casty::{ActorSystem, EventJournal, SnapshotPolicy, SqliteJournal};
use casty_tests::bank::{account, AccountCmd, AccountState};
use casty_tests::{step, Steps};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: journal_writer <file> <entities>");
    let entities: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let steps = Steps::in_process("journal_writer");
    step!(steps, "open the journal {path}");
    let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).expect("open"));
    step!(
        steps,
        "spawn {entities} accounts, each writing acknowledged deposits until killed"
    );
    let system = ActorSystem::new("writer");
    let mut tasks = Vec::new();
    for i in 0..entities {
        let id = format!("acc-{i}");
        let a = system
            .spawn(
                account(&id, journal.clone(), SnapshotPolicy::every(50)),
                &id,
            )
            .expect("spawn");
        let system = system.clone();
        tasks.push(tokio::spawn(async move {
            let start: AccountState = system
                .ask(&a, AccountCmd::get_balance, Duration::from_secs(30))
                .await
                .expect("recovered");
            let mut seq = start.tx_count as i64;
            loop {
                seq += 1;
                let amount = seq;
                let s: AccountState = system
                    .ask(
                        &a,
                        move |r| AccountCmd::DepositAck {
                            amount,
                            reply_to: r,
                        },
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("acknowledged");
                assert_eq!(s.tx_count as i64, seq);
                let mut out = std::io::stdout().lock();
                writeln!(out, "{id} {seq}").expect("stdout");
                out.flush().expect("flush");
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
