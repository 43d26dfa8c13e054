//! The remoting layer's side of the actor core's [`WireRoute`]: the way to one actor on another
//! node, over that node's association ([`Route`]).
//!
//! The core hands a route the encoded message and nothing else; how it travels is decided here.
//! A ref to whichever actor is at a path (uid 0) is usually long-lived, so it gets a compact name
//! on the association (a number, defined once with a `Define` frame) and its messages travel as
//! compact envelopes. A ref to one incarnation of an actor (often a short-lived reply ref)
//! travels with its full path, and so does any recipient once the association's name table is
//! full. The name is looked up once per route and kept, so the hot path is one queue operation.
//! The association's failures ([`SendError`]) become the core's [`RouteError`], with the same text.

use std::sync::OnceLock;

use crate::actor::behavior::BoxFuture;
use crate::actor::wire::{RouteError, WireRoute};
use crate::remote::endpoint::{Route, SendError};
use crate::remote::frame::{CompactRef, EnvelopeRef, FrameError, FrameRef};

/// The way to one actor on another node.
pub(crate) struct ActorRoute {
    /// The association with the actor's node.
    route: Route,
    /// The actor's path under its node.
    path: Box<str>,
    /// Its incarnation, 0 for whichever actor is at the path.
    uid: u64,
    /// The type name of its messages.
    manifest: &'static str,
    /// Its compact name on the association once defined (`None`: the table had no room left, it
    /// travels with its full path). Only for a ref to a path (uid 0).
    name: OnceLock<Option<u32>>,
}

impl ActorRoute {
    pub(crate) fn new(route: Route, path: &str, uid: u64, manifest: &'static str) -> Self {
        ActorRoute {
            route,
            path: Box::from(path),
            uid,
            manifest,
            name: OnceLock::new(),
        }
    }

    /// The compact name of the recipient, defining it on first use; `None` when it travels with
    /// its full path.
    fn name(&self) -> Result<Option<u32>, SendError> {
        if self.uid != 0 {
            return Ok(None);
        }
        if let Some(name) = self.name.get() {
            return Ok(*name);
        }
        let name = self.route.define(&self.path, self.manifest)?;
        Ok(*self.name.get_or_init(|| name))
    }

    /// Queues the message; with `count_overflow`, a message refused because the queue is full
    /// is counted as dropped.
    fn send_frame(&self, payload: &[u8], count_overflow: bool) -> Result<(), SendError> {
        match self.name()? {
            Some(id) => self.route.send_counting(
                &FrameRef::Compact(CompactRef(id, self.uid, payload)),
                count_overflow,
            ),
            None => self.route.send_counting(
                &FrameRef::Envelope(EnvelopeRef(&self.path, self.uid, self.manifest, payload)),
                count_overflow,
            ),
        }
    }
}

impl WireRoute for ActorRoute {
    fn send(&self, payload: &[u8]) -> Result<(), RouteError> {
        self.send_frame(payload, true).map_err(RouteError::from)
    }

    fn offer(&self, payload: &[u8]) -> Result<(), RouteError> {
        self.send_frame(payload, false).map_err(RouteError::from)
    }

    fn room(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.route.room())
    }

    fn has_room(&self) -> bool {
        self.route.has_room()
    }

    fn incarnation(&self) -> u64 {
        self.route.incarnation()
    }
}

impl From<SendError> for RouteError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Frame(FrameError::Oversize { size, max }) => {
                RouteError::TooLarge { size, max }
            }
            SendError::Frame(e) => RouteError::Unencodable(e.to_string()),
            SendError::Overflow(node) => RouteError::Full(node),
            SendError::Closed => RouteError::Closed,
            SendError::Refused(why) => RouteError::Refused(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each failure of the association reads the same once it is the core's error, since the dead
    // letter for the message shows that text.
    #[test]
    fn send_errors_keep_their_text_as_route_errors() {
        let cases = [
            SendError::Frame(FrameError::Oversize { size: 10, max: 4 }),
            SendError::Frame(FrameError::Encode("boom".into())),
            SendError::Overflow("casty://a@h:1".into()),
            SendError::Closed,
            SendError::Refused("casty://a@h:1 refused the handshake: wrong secret".into()),
        ];
        for e in cases {
            assert_eq!(RouteError::from(e.clone()).to_string(), e.to_string());
        }
        assert_eq!(
            RouteError::from(SendError::Frame(FrameError::Oversize { size: 10, max: 4 })),
            RouteError::TooLarge { size: 10, max: 4 }
        );
        assert_eq!(
            RouteError::from(SendError::Overflow("casty://a@h:1".into())),
            RouteError::Full("casty://a@h:1".into())
        );
        assert_eq!(RouteError::from(SendError::Closed), RouteError::Closed);
    }

    // An ask whose request was not sent names the failure of this node's remoting, never the
    // remote actor's mailbox.
    #[test]
    fn route_errors_become_precise_ask_errors() {
        use crate::actor::path::ActorPath;
        use crate::AskError;
        let target = ActorPath::new("a@h:1".into(), "/accounts".to_string(), 7);
        let node = "casty://a@h:1".to_string();
        let ask = |e: RouteError| e.ask_error(&target);
        assert_eq!(
            ask(RouteError::Full(node.clone())),
            AskError::OutboundFull { node: node.clone() }
        );
        assert_eq!(
            ask(RouteError::TooLarge { size: 10, max: 4 }),
            AskError::TooLarge { size: 10, max: 4 }
        );
        assert_eq!(
            ask(RouteError::Refused("no".into())),
            AskError::Refused {
                node: node.clone(),
                reason: "no".into()
            }
        );
        for e in [
            RouteError::Closed,
            RouteError::NotStarted,
            RouteError::Unencodable("boom".into()),
            RouteError::BadAddress("bad".into()),
        ] {
            let reason = e.to_string();
            assert_eq!(
                ask(e),
                AskError::NotSent {
                    node: node.clone(),
                    reason
                }
            );
        }
    }
}
