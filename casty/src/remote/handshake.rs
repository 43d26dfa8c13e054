//! The handshake (R1, R2), as two pure state machines with no I/O.
//!
//! ```text
//! connecting side (Initiator)                accepting side (Responder)
//!   Hello{version, system, address, uid,  ──▶  checks version, system name, frame limit
//!         max_frame, nonce_a}
//!                                         ◀──  Welcome{.., uid, max_frame, nonce_b,
//!                                                      proof_b = HMAC(secret, nonce_a ‖ nonce_b ‖ ..)}
//!   checks the same, and proof_b
//!   Confirm{proof_a = HMAC(secret, nonce_b ‖ nonce_a ‖ ..)}  ──▶  checks proof_a
//! ```
//!
//! Each side proves it knows the shared secret by a keyed hash of the *other* side's fresh random
//! challenge, so the secret never crosses the wire and a recorded handshake cannot be replayed.
//! A side that finds a mismatch answers `Refuse{reason}` and closes; both sides report the reason.
//! Each peer's frame limit is the smaller of the two announced limits, so no side ever sends a
//! frame the other would refuse.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::remote::frame::{Frame, Hello, Welcome, MIN_MAX_FRAME};

/// The wire protocol version this build speaks.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Bytes of a handshake challenge.
pub(crate) const NONCE_LEN: usize = 32;

/// What a node says about itself in a handshake.
#[derive(Clone)]
pub(crate) struct LocalNode {
    pub(crate) system: String,
    pub(crate) address: String,
    pub(crate) uid: u64,
    pub(crate) max_frame: u32,
    pub(crate) secret: Option<Vec<u8>>,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode")
            .field("address", &self.address)
            .field("uid", &self.uid)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The other side, once the handshake succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) address: String,
    pub(crate) uid: u64,
    /// The largest frame either side may send on this connection.
    pub(crate) max_frame: usize,
}

/// Why a handshake was refused. Its text is what both sides log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The peers speak different protocol versions.
    #[error("protocol version mismatch: this node speaks {ours}, the peer {theirs}")]
    Version {
        /// This node's version.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peers belong to different systems (clusters).
    #[error("system name mismatch: this node is `{ours}`, the peer is `{theirs}`")]
    SystemName {
        /// This node's system name.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// The peer's frame limit is below the minimum.
    #[error("the peer's frame limit of {theirs} bytes is below the minimum of {min}")]
    FrameLimit {
        /// The peer's limit.
        theirs: u32,
        /// The minimum.
        min: usize,
    },
    /// This node requires the shared secret and the peer did not prove it.
    #[error("authentication failed: the peer did not prove the shared secret")]
    BadSecret,
    /// The peer requires a secret this node does not have.
    #[error("authentication failed: the peer requires a shared secret, and this node has none")]
    NoSecret,
    /// This node quarantined that incarnation of the peer: it was declared gone while watches
    /// crossed between the two, so it may never talk to this node again (R1). A restart of the
    /// peer is a new incarnation and is welcome.
    #[error("the peer's incarnation {uid} is quarantined: it was declared gone")]
    Quarantined {
        /// The peer's incarnation uid.
        uid: u64,
    },
    /// The peer refused, with its reason.
    #[error("refused by the peer: {0}")]
    ByPeer(String),
    /// The peer sent something the handshake does not expect.
    #[error("handshake protocol error: {0}")]
    Protocol(String),
}

type HmacSha256 = Hmac<Sha256>;

/// The keyed hash of one side's proof: a label, both challenges, the prover's uid and system,
/// each length-prefixed so that no two inputs run together.
fn keyed(
    secret: &[u8],
    label: &[u8],
    theirs: &[u8],
    ours: &[u8],
    uid: u64,
    system: &str,
) -> HmacSha256 {
    // `new_from_slice` accepts keys of any length for HMAC.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
    for part in [label, theirs, ours, &uid.to_le_bytes(), system.as_bytes()] {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part);
    }
    mac
}

fn proof(
    secret: &[u8],
    label: &[u8],
    theirs: &[u8],
    ours: &[u8],
    uid: u64,
    system: &str,
) -> Vec<u8> {
    keyed(secret, label, theirs, ours, uid, system)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Checks a proof in constant time.
fn verify(
    secret: &[u8],
    label: &[u8],
    theirs: &[u8],
    ours: &[u8],
    uid: u64,
    system: &str,
    given: &[u8],
) -> bool {
    keyed(secret, label, theirs, ours, uid, system)
        .verify_slice(given)
        .is_ok()
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // HMAC takes keys of any length; `InvalidLength` cannot happen for it.
    panic!("HMAC-SHA256 rejected a key")
}

const WELCOME: &[u8] = b"casty-welcome";
const CONFIRM: &[u8] = b"casty-confirm";

/// Checks what both sides check of the other's announcement.
fn check_peer(
    local: &LocalNode,
    version: u32,
    system: &str,
    max_frame: u32,
) -> Result<(), Refusal> {
    if version != PROTOCOL_VERSION {
        return Err(Refusal::Version {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    if system != local.system {
        return Err(Refusal::SystemName {
            ours: local.system.clone(),
            theirs: system.to_string(),
        });
    }
    if (max_frame as usize) < MIN_MAX_FRAME {
        return Err(Refusal::FrameLimit {
            theirs: max_frame,
            min: MIN_MAX_FRAME,
        });
    }
    Ok(())
}

fn agreed_limit(a: u32, b: u32) -> usize {
    a.min(b) as usize
}

/// The connecting side.
#[derive(Debug)]
pub(crate) struct Initiator {
    local: LocalNode,
    nonce: Vec<u8>,
}

impl Initiator {
    /// Starts a handshake; returns the machine and the `Hello` to send.
    pub(crate) fn start(local: LocalNode, nonce: [u8; NONCE_LEN]) -> (Self, Frame) {
        let hello = Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            system: local.system.clone(),
            address: local.address.clone(),
            uid: local.uid,
            max_frame: local.max_frame,
            nonce: nonce.to_vec(),
        });
        (
            Initiator {
                local,
                nonce: nonce.to_vec(),
            },
            hello,
        )
    }

    /// Handles the answer. On success returns the `Confirm` to send and the peer; on failure the
    /// refusal, and the `Refuse` frame to send if the peer should hear it.
    pub(crate) fn on_frame(self, frame: Frame) -> Result<(Frame, Peer), Failed> {
        let w = match frame {
            Frame::Welcome(w) => w,
            Frame::Refuse { reason } => return Err(refused_by_peer(reason)),
            other => {
                let r = Refusal::Protocol(format!("expected Welcome, got {}", kind(&other)));
                return Err(refuse(r));
            }
        };
        check_peer(&self.local, w.version, &w.system, w.max_frame).map_err(refuse)?;
        let confirm = match (&self.local.secret, &w.proof) {
            (Some(secret), Some(p)) => {
                if !verify(secret, WELCOME, &self.nonce, &w.nonce, w.uid, &w.system, p) {
                    return Err(refuse(Refusal::BadSecret));
                }
                Some(proof(
                    secret,
                    CONFIRM,
                    &w.nonce,
                    &self.nonce,
                    self.local.uid,
                    &self.local.system,
                ))
            }
            (Some(_), None) => return Err(refuse(Refusal::BadSecret)),
            (None, Some(_)) => return Err(refuse(Refusal::NoSecret)),
            (None, None) => None,
        };
        let peer = Peer {
            address: w.address,
            uid: w.uid,
            max_frame: agreed_limit(self.local.max_frame, w.max_frame),
        };
        Ok((
            Frame::Confirm {
                proof: confirm.map(serde_bytes::ByteBuf::from),
            },
            peer,
        ))
    }
}

/// A failed handshake: why, and whether the peer should be sent a `Refuse` frame with the reason
/// (not when the peer refused first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) refusal: Refusal,
    pub(crate) tell_peer: bool,
}

impl Failed {
    /// The `Refuse` frame to send, if any.
    pub(crate) fn frame(&self) -> Option<Frame> {
        self.tell_peer.then(|| Frame::Refuse {
            reason: self.refusal.to_string(),
        })
    }
}

fn refuse(r: Refusal) -> Failed {
    Failed {
        refusal: r,
        tell_peer: true,
    }
}

/// Refuses a `Hello` or `Welcome` from a quarantined incarnation, before anything else is said:
/// the other side never counts the connection as up.
pub(crate) fn screen(frame: &Frame, quarantined: impl Fn(u64) -> bool) -> Result<(), Failed> {
    let uid = match frame {
        Frame::Hello(h) => h.uid,
        Frame::Welcome(w) => w.uid,
        _ => return Ok(()),
    };
    if quarantined(uid) {
        return Err(refuse(Refusal::Quarantined { uid }));
    }
    Ok(())
}

fn refused_by_peer(reason: String) -> Failed {
    Failed {
        refusal: Refusal::ByPeer(reason),
        tell_peer: false,
    }
}

fn kind(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "Hello",
        Frame::Welcome(_) => "Welcome",
        Frame::Confirm { .. } => "Confirm",
        Frame::Refuse { .. } => "Refuse",
        Frame::Envelope(_) => "Envelope",
        Frame::Watch { .. } => "Watch",
        Frame::Unwatch { .. } => "Unwatch",
        Frame::Terminated { .. } => "Terminated",
        Frame::Heartbeat => "Heartbeat",
        Frame::Define { .. } => "Define",
        Frame::Compact(_) => "Compact",
        Frame::Bye => "Bye",
    }
}

/// The accepting side.
#[derive(Debug)]
pub(crate) enum Responder {
    /// Waiting for `Hello`.
    Waiting { local: LocalNode, nonce: Vec<u8> },
    /// Sent `Welcome`, waiting for `Confirm`.
    Welcomed {
        local: LocalNode,
        nonce: Vec<u8>,
        peer_nonce: Vec<u8>,
        peer: Peer,
        peer_system: String,
    },
}

/// What the responder does next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send this and wait for the next frame.
    Send(Frame, Box<Responder>),
    /// The handshake succeeded.
    Done(Peer),
}

impl Responder {
    pub(crate) fn new(local: LocalNode, nonce: [u8; NONCE_LEN]) -> Self {
        Responder::Waiting {
            local,
            nonce: nonce.to_vec(),
        }
    }

    pub(crate) fn on_frame(self, frame: Frame) -> Result<Step, Failed> {
        match (self, frame) {
            (Responder::Waiting { local, nonce }, Frame::Hello(h)) => {
                check_peer(&local, h.version, &h.system, h.max_frame).map_err(refuse)?;
                let proof = local
                    .secret
                    .as_ref()
                    .map(|s| proof(s, WELCOME, &h.nonce, &nonce, local.uid, &local.system));
                let welcome = Frame::Welcome(Welcome {
                    version: PROTOCOL_VERSION,
                    system: local.system.clone(),
                    address: local.address.clone(),
                    uid: local.uid,
                    max_frame: local.max_frame,
                    nonce: nonce.clone(),
                    proof: proof.map(serde_bytes::ByteBuf::from),
                });
                let peer = Peer {
                    address: h.address,
                    uid: h.uid,
                    max_frame: agreed_limit(local.max_frame, h.max_frame),
                };
                Ok(Step::Send(
                    welcome,
                    Box::new(Responder::Welcomed {
                        local,
                        nonce,
                        peer_nonce: h.nonce,
                        peer,
                        peer_system: h.system,
                    }),
                ))
            }
            (
                Responder::Welcomed {
                    local,
                    nonce,
                    peer_nonce,
                    peer,
                    peer_system,
                },
                Frame::Confirm { proof },
            ) => match (&local.secret, proof) {
                (Some(secret), Some(p)) => {
                    if verify(
                        secret,
                        CONFIRM,
                        &nonce,
                        &peer_nonce,
                        peer.uid,
                        &peer_system,
                        &p,
                    ) {
                        Ok(Step::Done(peer))
                    } else {
                        Err(refuse(Refusal::BadSecret))
                    }
                }
                (Some(_), None) => Err(refuse(Refusal::BadSecret)),
                (None, _) => Ok(Step::Done(peer)),
            },
            (_, Frame::Refuse { reason }) => Err(refused_by_peer(reason)),
            (Responder::Waiting { .. }, other) => Err(refuse(Refusal::Protocol(format!(
                "expected Hello, got {}",
                kind(&other)
            )))),
            (Responder::Welcomed { .. }, other) => Err(refuse(Refusal::Protocol(format!(
                "expected Confirm, got {}",
                kind(&other)
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(system: &str, uid: u64, secret: Option<&str>) -> LocalNode {
        LocalNode {
            system: system.into(),
            address: format!("casty://{system}@127.0.0.1:{uid}"),
            uid,
            max_frame: 256 * 1024,
            secret: secret.map(|s| s.as_bytes().to_vec()),
        }
    }

    /// Runs both machines against each other. Returns what each side concluded.
    fn run(a: LocalNode, b: LocalNode) -> (Result<Peer, Refusal>, Result<Peer, Refusal>) {
        let (init, hello) = Initiator::start(a, [1; NONCE_LEN]);
        let resp = Responder::new(b, [2; NONCE_LEN]);
        let (welcome, resp) = match resp.on_frame(hello) {
            Ok(Step::Send(f, r)) => (f, r),
            Ok(Step::Done(_)) => panic!("done too early"),
            Err(failed) => {
                let f = failed.frame().expect("the peer is told");
                let a_side = init.on_frame(f).map(|(_, p)| p).map_err(|e| e.refusal);
                return (a_side, Err(failed.refusal));
            }
        };
        match init.on_frame(welcome) {
            Ok((confirm, peer_of_a)) => match resp.on_frame(confirm) {
                Ok(Step::Done(peer_of_b)) => (Ok(peer_of_a), Ok(peer_of_b)),
                Ok(Step::Send(..)) => panic!("responder wants more"),
                Err(failed) => {
                    // The initiator would read the Refuse frame after its Confirm.
                    let Some(Frame::Refuse { reason }) = failed.frame() else {
                        panic!()
                    };
                    (Err(Refusal::ByPeer(reason)), Err(failed.refusal))
                }
            },
            Err(failed) => {
                let f = failed.frame().expect("the peer is told");
                let b_side = match resp.on_frame(f) {
                    Ok(_) => panic!("the responder accepted a refusal"),
                    Err(e) => {
                        assert!(!e.tell_peer, "a refusal is not answered");
                        e.refusal
                    }
                };
                (Err(failed.refusal), Err(b_side))
            }
        }
    }

    #[test]
    fn a_quarantined_incarnation_is_screened_out_on_either_side() {
        let (_, hello) = Initiator::start(node("bank", 7, None), [1; NONCE_LEN]);
        let q = |uid| uid == 7;
        let failed = screen(&hello, q).unwrap_err();
        assert_eq!(failed.refusal, Refusal::Quarantined { uid: 7 });
        assert_eq!(
            failed.frame(),
            Some(Frame::Refuse {
                reason: "the peer's incarnation 7 is quarantined: it was declared gone".into()
            })
        );
        // A new incarnation of the same node passes, and so does anything that is not a greeting.
        let (_, hello) = Initiator::start(node("bank", 8, None), [1; NONCE_LEN]);
        assert!(screen(&hello, q).is_ok());
        let Ok(Step::Send(welcome, _)) =
            Responder::new(node("bank", 7, None), [2; NONCE_LEN]).on_frame(hello)
        else {
            panic!("welcomed")
        };
        assert!(matches!(
            screen(&welcome, q).unwrap_err().refusal,
            Refusal::Quarantined { uid: 7 }
        ));
        assert!(screen(&Frame::Confirm { proof: None }, |_| true).is_ok());
    }

    #[test]
    fn matching_nodes_agree_and_learn_each_other() {
        let (a, b) = run(node("bank", 1, None), node("bank", 2, None));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.uid, a.address.as_str()), (2, "casty://bank@127.0.0.1:2"));
        assert_eq!((b.uid, b.address.as_str()), (1, "casty://bank@127.0.0.1:1"));
    }

    #[test]
    fn the_smaller_frame_limit_wins_on_both_sides() {
        let mut small = node("bank", 1, None);
        small.max_frame = 8192;
        let (a, b) = run(small, node("bank", 2, None));
        assert_eq!((a.unwrap().max_frame, b.unwrap().max_frame), (8192, 8192));
        let mut tiny = node("bank", 1, None);
        tiny.max_frame = 100;
        let (a, b) = run(tiny, node("bank", 2, None));
        assert!(matches!(b, Err(Refusal::FrameLimit { theirs: 100, .. })));
        assert!(matches!(a, Err(Refusal::ByPeer(r)) if r.contains("below the minimum")));
    }

    #[test]
    fn a_wrong_system_name_is_refused_and_both_sides_know_why() {
        let (a, b) = run(node("bank", 1, None), node("shop", 2, None));
        let b = b.unwrap_err();
        assert_eq!(
            b.to_string(),
            "system name mismatch: this node is `shop`, the peer is `bank`"
        );
        assert_eq!(a.unwrap_err(), Refusal::ByPeer(b.to_string()));
    }

    #[test]
    fn the_same_secret_passes_and_never_travels() {
        let (a, b) = run(
            node("bank", 1, Some("s3cret")),
            node("bank", 2, Some("s3cret")),
        );
        assert!(a.is_ok() && b.is_ok());
        // No frame of a handshake contains the secret.
        let (init, hello) = Initiator::start(node("bank", 1, Some("s3cret")), [1; NONCE_LEN]);
        let Ok(Step::Send(welcome, _)) =
            Responder::new(node("bank", 2, Some("s3cret")), [2; NONCE_LEN]).on_frame(hello.clone())
        else {
            panic!()
        };
        let (confirm, _) = init.on_frame(welcome.clone()).unwrap();
        for f in [hello, welcome, confirm] {
            let mut bytes = Vec::new();
            ciborium::into_writer(&f, &mut bytes).unwrap();
            assert!(!bytes.windows(6).any(|w| w == b"s3cret"), "{f:?}");
        }
    }

    #[test]
    fn a_wrong_or_missing_secret_is_refused_on_both_sides() {
        // The accepting side checks the connecting side's proof last; the connecting side checks
        // the accepting side's proof first.
        let (a, b) = run(
            node("bank", 1, Some("right")),
            node("bank", 2, Some("wrong")),
        );
        assert_eq!(a.unwrap_err(), Refusal::BadSecret);
        assert!(
            matches!(b.unwrap_err(), Refusal::ByPeer(r) if r.contains("authentication failed"))
        );

        let (a, b) = run(node("bank", 1, None), node("bank", 2, Some("s")));
        assert_eq!(a.unwrap_err(), Refusal::NoSecret);
        assert!(b.is_err());

        let (a, b) = run(node("bank", 1, Some("s")), node("bank", 2, None));
        assert_eq!(a.unwrap_err(), Refusal::BadSecret);
        assert!(matches!(b.unwrap_err(), Refusal::ByPeer(_)));
    }

    #[test]
    fn a_replayed_confirm_is_refused() {
        // Record a good Confirm for one challenge, replay it against a fresh challenge.
        let (init, hello) = Initiator::start(node("bank", 1, Some("k")), [1; NONCE_LEN]);
        let Ok(Step::Send(welcome, _)) =
            Responder::new(node("bank", 2, Some("k")), [2; NONCE_LEN]).on_frame(hello.clone())
        else {
            panic!()
        };
        let (recorded, _) = init.on_frame(welcome).unwrap();
        let Ok(Step::Send(_, fresh)) =
            Responder::new(node("bank", 2, Some("k")), [3; NONCE_LEN]).on_frame(hello)
        else {
            panic!()
        };
        let failed = fresh.on_frame(recorded).unwrap_err();
        assert_eq!(failed.refusal, Refusal::BadSecret);
        assert!(failed.tell_peer);
    }

    #[test]
    fn versions_and_unexpected_frames_are_refused() {
        let resp = Responder::new(node("bank", 2, None), [2; NONCE_LEN]);
        let failed = resp.on_frame(Frame::Heartbeat).unwrap_err();
        assert!(matches!(failed.frame(), Some(Frame::Refuse { .. })));
        assert_eq!(
            failed.refusal,
            Refusal::Protocol("expected Hello, got Heartbeat".into())
        );

        let (_, hello) = Initiator::start(node("bank", 1, None), [1; NONCE_LEN]);
        let Frame::Hello(mut h) = hello else { panic!() };
        h.version = 99;
        let resp = Responder::new(node("bank", 2, None), [2; NONCE_LEN]);
        let failed = resp.on_frame(Frame::Hello(h)).unwrap_err();
        assert_eq!(
            failed.refusal,
            Refusal::Version {
                ours: 1,
                theirs: 99
            }
        );
    }
}
