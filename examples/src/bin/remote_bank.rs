//! Remoting: a "bank" node and a client node in two processes. The client starts the bank node
//! (this same binary, with `--bank`), then deposits, withdraws and queries over TCP.
// ANCHOR: all
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use casty::remote::RemoteSettings;
use casty::{message_enum, ActorRef, ActorSystem, Behavior, Behaviors};

// ANCHOR: protocol
/// The bank's protocol. `#[message_enum]` makes it serializable, so it can cross the wire, and
/// the `reply_to` refs travel with it and lead back to the caller.
#[message_enum]
enum Account {
    Deposit {
        amount: i64,
    },
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    Balance {
        reply_to: ActorRef<i64>,
    },
}
// ANCHOR_END: protocol

fn account(balance: i64) -> Behavior<Account> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Account::Deposit { amount } => account(balance + amount),
        Account::Withdraw { amount, reply_to } if amount <= balance => {
            reply_to.tell("ok".to_string());
            account(balance - amount)
        }
        Account::Withdraw { reply_to, .. } => {
            reply_to.tell(format!("insufficient funds (balance={balance})"));
            Behaviors::same()
        }
        Account::Balance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
}

// ANCHOR: bank
/// The bank node: binds a free port, spawns `/accounts`, and tells its parent where it is.
async fn bank_node() {
    let system = ActorSystem::new("bank");
    let address = system
        .start_remote(RemoteSettings::new("127.0.0.1", 0).secret("bank-secret"))
        .await
        .expect("bind");
    system.spawn(account(0), "accounts").expect("spawn");
    println!("{address}");
    std::io::stdout().flush().expect("flush");
    // Serve until the client closes our stdin.
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
        .await
        .expect("stdin");
    system.shutdown().await;
}
// ANCHOR_END: bank

// ANCHOR: client
#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--bank") {
        return bank_node().await;
    }
    let mut bank = Command::new(std::env::current_exe().expect("exe"))
        .arg("--bank")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bank node");
    let mut line = String::new();
    BufReader::new(bank.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the bank's address");
    let bank_address = line.trim().to_string();
    println!("bank node is up");

    // The client is a node of the same system ("bank") with the same secret.
    let client = ActorSystem::new("bank");
    client
        .start_remote(RemoteSettings::new("127.0.0.1", 0).secret("bank-secret"))
        .await
        .expect("bind");
    let accounts = client
        .remote_ref::<Account>(&format!("{bank_address}/accounts"))
        .expect("a remote ref");
    let t = Duration::from_secs(5);

    accounts.tell(Account::Deposit { amount: 100 });
    accounts.tell(Account::Deposit { amount: 50 });
    println!("client: deposited 100 and 50");
    let balance = client
        .ask(&accounts, Account::balance, t)
        .await
        .expect("balance");
    println!("client: balance is {balance}");
    let r = client
        .ask(&accounts, Account::withdraw(500), t)
        .await
        .expect("withdraw");
    println!("client: withdraw 500 -> {r}");
    let r = client
        .ask(&accounts, Account::withdraw(30), t)
        .await
        .expect("withdraw");
    println!("client: withdraw 30 -> {r}");
    let balance = client
        .ask(&accounts, Account::balance, t)
        .await
        .expect("balance");
    println!("client: balance is {balance}");

    client.shutdown().await;
    drop(bank.stdin.take()); // the bank node stops when its stdin closes
    let status = bank.wait().expect("the bank node exits");
    println!(
        "bank node stopped: {}",
        if status.success() { "ok" } else { "failed" }
    );
}
// ANCHOR_END: client
// ANCHOR_END: all
