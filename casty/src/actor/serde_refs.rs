//! Serde support for `ActorPath` and `ActorRef<M>`, so that refs can travel inside messages and
//! events (R4).
//!
//! A ref is written as its address and incarnation uid: `("casty://sys/path", uid)`. Reading one
//! back needs a system to resolve it against, which a deserializer cannot carry; as in Akka
//! (`Serialization.withTransportInformation`), the system is set for the duration of a closure with
//! [`ActorSystem::resolving_refs`]. A ref that names a live local actor of the same incarnation
//! resolves to that actor; any other ref resolves to a *dead* ref whose messages become dead
//! letters, so a stale ref can never reach a new incarnation under the same name. Outside a
//! `resolving_refs` scope, deserializing a ref is an error, never a silently broken ref.

use std::cell::RefCell;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::actor::actor_ref::{ActorRef, RefCount, RefTarget, TellError};
use crate::actor::path::ActorPath;
use crate::actor::system::{ActorSystem, SystemInner};

thread_local! {
    static RESOLVER: RefCell<Option<ActorSystem>> = const { RefCell::new(None) };
}

/// Runs `f` with `system` as the resolver for deserialized refs; restores the previous one after.
pub(crate) fn with_resolver<R>(system: &ActorSystem, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ActorSystem>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            RESOLVER.with(|r| *r.borrow_mut() = prev);
        }
    }
    let prev = RESOLVER.with(|r| r.borrow_mut().replace(system.clone()));
    let _restore = Restore(prev);
    f()
}

impl Serialize for ActorPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.address(), self.uid()).serialize(s)
    }
}

/// Splits `casty://system/path` into its system name and path.
fn split_address(address: &str) -> Option<(&str, &str)> {
    let rest = address.strip_prefix("casty://")?;
    let slash = rest.find('/')?;
    let (system, path) = rest.split_at(slash);
    (!system.is_empty()).then_some((system, path))
}

impl<'de> Deserialize<'de> for ActorPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (address, uid) = <(String, u64)>::deserialize(d)?;
        let (system, path) = split_address(&address).ok_or_else(|| {
            D::Error::custom(format!(
                "`{address}` is not an actor address (expected `casty://system/path`)"
            ))
        })?;
        Ok(ActorPath::new(system.into(), path.to_string(), uid))
    }
}

/// A ref that travels needs a message type that travels: reading replies for it needs
/// `M: Deserialize` here, and sending to it from the other side needs `M: Serialize` there.
impl<M> Serialize for ActorRef<M>
where
    M: serde::de::DeserializeOwned + Send + 'static,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match crate::actor::wire::wire_address(self) {
            // Encoding for the wire: the address names this node, and the ref is exported.
            Some(address) => (address, self.wire_uid()).serialize(s),
            None => self.path().serialize(s),
        }
    }
}

impl<'de, M: Serialize + Send + 'static> Deserialize<'de> for ActorRef<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (address, uid) = <(String, u64)>::deserialize(d)?;
        let (system_part, path) = split_address(&address).ok_or_else(|| {
            D::Error::custom(format!(
                "`{address}` is not an actor address (expected `casty://system/path`)"
            ))
        })?;
        let system = RESOLVER.with(|r| r.borrow().clone()).ok_or_else(|| {
            D::Error::custom(format!(
                "cannot deserialize a ref to {address} outside `ActorSystem::resolving_refs`: \
                 a ref needs a system to resolve against"
            ))
        })?;
        if system_part.contains('@') {
            // `system@host:port`: a node address, from the wire.
            return Ok(crate::actor::wire::resolve_node_ref(
                &system,
                system_part,
                path,
                uid,
            ));
        }
        Ok(system.resolve(ActorPath::new(system_part.into(), path.to_string(), uid)))
    }
}

/// A ref to an actor that is not (or no longer) there: every message becomes a dead letter.
pub(crate) struct DeadRef {
    path: ActorPath,
    system: Arc<SystemInner>,
}

impl DeadRef {
    pub(crate) fn new(path: ActorPath, system: Arc<SystemInner>) -> Self {
        DeadRef { path, system }
    }
}

impl RefCount for DeadRef {}

impl<M: Send + 'static> RefTarget<M> for DeadRef {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn system(&self) -> &Arc<SystemInner> {
        &self.system
    }

    fn deliver(&self, _msg: M) -> Result<(), TellError<M>> {
        self.system
            .dead_letter_typed::<M>(&self.path, crate::DeadLetterReason::RecipientGone);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split() {
        assert_eq!(split_address("casty://s/a/b"), Some(("s", "/a/b")));
        assert_eq!(split_address("casty://s/"), Some(("s", "/")));
        assert_eq!(split_address("casty:///a"), None);
        assert_eq!(split_address("http://s/a"), None);
        assert_eq!(split_address("casty://s"), None);
    }
}
