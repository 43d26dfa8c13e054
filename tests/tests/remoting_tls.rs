//! TLS with mutual authentication: nodes under the same CA talk; a node under another CA is
//! refused both ways. Certificates are generated at run time (rcgen).

use std::sync::Arc;
use std::time::Duration;

use casty::remote::{RemoteSettings, TlsConfig, TlsTransport};
use casty::{message_enum, ActorRef, ActorSystem, Behaviors};
use casty_tests::T;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn node_tls(ca: &Ca) -> TlsConfig {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    TlsConfig {
        ca_pem: ca.cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

async fn tls_node(tls: &TlsConfig) -> ActorSystem {
    let system = ActorSystem::new("tls");
    let transport = Arc::new(TlsTransport::tcp(tls).unwrap());
    system
        .start_remote(RemoteSettings::new("127.0.0.1", 0).transport(transport))
        .await
        .unwrap();
    system
}

#[message_enum]
enum Counter {
    Add { n: u64 },
    Get { reply_to: ActorRef<u64> },
}

fn counter(total: u64) -> casty::Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add { n } => counter(total + n),
        Counter::Get { reply_to } => {
            reply_to.tell(total);
            Behaviors::same()
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_under_one_ca_talk_and_another_ca_is_refused() {
    let ours = ca("casty test CA");
    let theirs = ca("another CA");
    let a = tls_node(&node_tls(&ours)).await;
    let b = tls_node(&node_tls(&ours)).await;
    let stranger = tls_node(&node_tls(&theirs)).await;
    b.spawn(counter(0), "counter").unwrap();
    let address = format!("{}/counter", b.remote_address().unwrap());

    let c = a.remote_ref::<Counter>(&address).unwrap();
    c.tell(Counter::Add { n: 40 });
    c.tell(Counter::Add { n: 2 });
    assert_eq!(
        a.ask(&c, Counter::get, T).await.unwrap(),
        42,
        "A and B share a CA"
    );

    // The stranger's certificate is not signed by B's CA (and B's is not by the stranger's).
    let s = stranger.remote_ref::<Counter>(&address).unwrap();
    s.tell(Counter::Add { n: 1000 });
    let r = stranger
        .ask(&s, Counter::get, Duration::from_millis(500))
        .await;
    assert!(r.is_err(), "a node under another CA got through: {r:?}");
    assert_eq!(
        a.ask(&c, Counter::get, T).await.unwrap(),
        42,
        "nothing from the stranger arrived"
    );
    assert_eq!(stranger.remote_counters().unwrap().frames_out, 0);

    // Nor can B reach the stranger.
    stranger.spawn(counter(7), "counter").unwrap();
    let back = b
        .remote_ref::<Counter>(&format!("{}/counter", stranger.remote_address().unwrap()))
        .unwrap();
    assert!(b
        .ask(&back, Counter::get, Duration::from_millis(500))
        .await
        .is_err());
    for s in [a, b, stranger] {
        s.shutdown().await;
    }
}

// The TLS handshake of an accepted connection runs in that connection's own task: ten TCP
// connections that never speak hold up no one, and a real peer's first ask is answered at once,
// long before their handshake deadline (5 s) has passed even once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_delay_a_tls_peer() {
    let ours = ca("casty test CA");
    let a = tls_node(&node_tls(&ours)).await;
    let b = tls_node(&node_tls(&ours)).await;
    b.spawn(counter(42), "counter").unwrap();
    let b_addr = b.remote_address().unwrap();
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(
            tokio::net::TcpStream::connect(b_addr.socket_addr())
                .await
                .unwrap(),
        );
    }
    let c = a
        .remote_ref::<Counter>(&format!("{b_addr}/counter"))
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(a.ask(&c, Counter::get, T).await.unwrap(), 42);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    drop(silent);
    for s in [a, b] {
        s.shutdown().await;
    }
}

#[test]
fn bad_pem_is_a_clear_error() {
    let ours = ca("casty test CA");
    let mut cfg = node_tls(&ours);
    cfg.key_pem = "not a key".into();
    let e = TlsTransport::tcp(&cfg).unwrap_err();
    assert!(e.to_string().contains("the node key"), "{e}");
}
