//! The raw tokio baseline: tasks, unbounded `mpsc` channels and `oneshot` replies, no framework.
//! W3 and W6 use `common::bounce_tokio`.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::common::{produce, Done};

/// The counter task's messages.
enum CounterMsg {
    Add(u64),
    Get(oneshot::Sender<u64>),
}

/// W1 and W5 as in `guide::count`: a counter task, `producers` producer tasks, one request for the
/// total. Returns millions of messages per second.
pub(crate) fn count(rt: &tokio::runtime::Runtime, producers: u64, each: u64) -> f64 {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<CounterMsg>();
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(msg) = rx.recv().await {
                match msg {
                    CounterMsg::Add(x) => count += x,
                    CounterMsg::Get(reply) => {
                        let _ = reply.send(count);
                    }
                }
            }
        });
        tokio::spawn(async move {
            let t = Instant::now();
            produce(
                &tx,
                producers,
                each,
                |tx: &mpsc::UnboundedSender<CounterMsg>| tx.send(CounterMsg::Add(1)).unwrap(),
            )
            .await;
            let (reply, total) = oneshot::channel();
            tx.send(CounterMsg::Get(reply)).unwrap();
            let total = total.await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(total, producers * each);
            total as f64 / secs / 1e6
        })
        .await
        .unwrap()
    })
}

/// W2: one task sends `n` requests in sequence, each a plain `oneshot` round trip (no timeout).
/// Returns (mean, p50) latency in µs.
pub(crate) fn ask_echo(rt: &tokio::runtime::Runtime, n: u64) -> (f64, f64) {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, oneshot::Sender<u64>)>();
        tokio::spawn(async move {
            while let Some((i, reply)) = rx.recv().await {
                let _ = reply.send(i + 1);
            }
        });
        let lat = tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n as usize);
            for i in 0..n {
                let t = Instant::now();
                let (reply, answer) = oneshot::channel();
                tx.send((i, reply)).unwrap();
                let v = answer.await.unwrap();
                lat.push(t.elapsed());
                assert_eq!(v, i + 1);
            }
            lat
        })
        .await
        .unwrap();
        crate::mean_p50(lat)
    })
}

/// W4 as in `guide::spawn_many`: `n` tasks, each with its own channel; one message each; then each
/// is stopped by dropping its sender, and its last act is counted as its `post_stop`.
pub(crate) fn spawn_many(rt: &tokio::runtime::Runtime, n: usize) -> (f64, f64) {
    rt.block_on(async {
        let handled = Done::new(n);
        let stopped = Done::new(n);
        let before = crate::rss_bytes();
        let t = Instant::now();
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
            let (h, s): (Arc<Done>, Arc<Done>) = (handled.clone(), stopped.clone());
            tokio::spawn(async move {
                while rx.recv().await.is_some() {
                    h.finish_one();
                }
                s.finish_one();
            });
            tx.send(1).unwrap();
            txs.push(tx);
        }
        handled.notify.notified().await;
        let up = t.elapsed();
        let per_task = crate::rss_bytes().saturating_sub(before) as f64 / n as f64;
        let t = Instant::now();
        drop(txs);
        stopped.notify.notified().await;
        ((up + t.elapsed()).as_secs_f64(), per_task)
    })
}
