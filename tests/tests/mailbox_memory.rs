//! What a bounded mailbox costs in memory. This file holds one test so that it has the process to
//! itself: it reads the resident set size (from `/proc`, so Linux only), which other tests running
//! in parallel would disturb.
#![cfg(target_os = "linux")]

use casty::testing::TestKit;
use casty::{Behaviors, Mailbox, Overflow, SpawnOptions};
use casty_tests::T;

/// Bytes of this process that are in RAM (`VmRSS`).
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap();
    kb * 1024
}

/// Spawns `n` actors with `mailbox`, sends each one message and waits until each has handled it,
/// so that every actor has started and allocated what a live actor holds.
async fn spawn_and_run(kit: &TestKit, prefix: &str, n: u32, mailbox: Mailbox) {
    let mut probe = kit.probe::<u32>();
    let mut refs = Vec::new();
    for i in 0..n {
        let to = probe.actor_ref();
        refs.push(kit.spawn_with(
            Behaviors::receive(move |_ctx, m: u32| {
                to.tell(m);
                Behaviors::same()
            }),
            &format!("{prefix}-{i}"),
            SpawnOptions::default().mailbox(mailbox),
        ));
    }
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(r.mailbox(), Some(mailbox));
        r.tell(i as u32);
    }
    let mut got: Vec<u32> = Vec::new();
    for _ in 0..n {
        got.push(probe.expect_message(T).await);
    }
    got.sort_unstable();
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn a_bounded_mailbox_allocates_for_what_it_holds_not_for_its_bound() {
    const N: u32 = 32;
    let kit = TestKit::new();
    // Warm up: the first actors grow the registry, the runtime and the allocator's arenas.
    spawn_and_run(&kit, "warm", N, Mailbox::unbounded()).await;
    let before = resident_bytes();
    // Preallocating 1,000,000 slots would cost at least 16 MB per actor (512 MB here).
    spawn_and_run(
        &kit,
        "big",
        N,
        Mailbox::bounded(1_000_000, Overflow::DropNew),
    )
    .await;
    let grown = resident_bytes().saturating_sub(before);
    // A live actor costs about 1 KB (W4 in BENCHMARKS.md); allow 64 KB each for page granularity.
    assert!(
        grown < N as usize * 64 * 1024,
        "{N} actors with a bound of 1,000,000 grew the resident set by {grown} bytes"
    );
    // The largest bound costs no more.
    let before = resident_bytes();
    spawn_and_run(
        &kit,
        "max",
        N,
        Mailbox::bounded(usize::MAX, Overflow::Reject),
    )
    .await;
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < N as usize * 64 * 1024,
        "{N} actors with the largest bound grew the resident set by {grown} bytes"
    );
    kit.shutdown().await;
}
