//! [`ShardEnvelope`]: a message for one entity, by id, and everything else a region actor
//! receives.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use super::entity_id::EntityId;
use super::wire::ShardingWire;
use crate::actor::message::{cbor_decoder, Message, WireDecoder};

/// A message for the entity with id `entity_id`, to tell a sharded type's region: it finds the
/// entity, on this node or another, and starts it if needed.
///
/// The region's own protocol travels in the same type, hidden: only
/// [`ShardEnvelope::new`] makes one from outside.
///
/// # Examples
///
/// ```
/// use casty::sharding::ShardEnvelope;
/// let e = ShardEnvelope::new("alice", 100u64);
/// assert_eq!(e.entity_id(), Some("alice"));
/// assert_eq!(e.message(), Some(&100));
/// ```
pub struct ShardEnvelope<M> {
    pub(crate) kind: Kind<M>,
}

pub(crate) enum Kind<M> {
    /// For an entity, told on this node. `counted`: the region's direct routes counted it as
    /// waiting in the region's mailbox (see `Direct`).
    Entity { id: EntityId, msg: M, counted: bool },
    /// For an entity, forwarded by another region.
    Forwarded { id: EntityId, msg: M, counted: bool },
    /// The sharding protocol.
    Control(Box<ShardingWire>),
    /// Signals from this node to its own region.
    Local(LocalSignal),
}

/// What a region hears from its own node.
pub(crate) enum LocalSignal {
    /// The membership view changed.
    ViewChanged,
    /// Time to retry, rebalance and passivate idle entities.
    Tick,
    /// The entity asked to be stopped when idle.
    Passivate(EntityId),
    /// This node is leaving: hand every shard off, then answer.
    Leave(tokio::sync::oneshot::Sender<()>),
    /// What the region hosts now.
    State(tokio::sync::oneshot::Sender<super::api::RegionState>),
}

impl<M> ShardEnvelope<M> {
    /// A message for the entity `entity_id`.
    #[inline(always)]
    pub fn new(entity_id: impl Into<EntityId>, message: M) -> Self {
        ShardEnvelope {
            kind: Kind::Entity {
                id: entity_id.into(),
                msg: message,
                counted: false,
            },
        }
    }

    pub(crate) fn control(msg: ShardingWire) -> Self {
        ShardEnvelope {
            kind: Kind::Control(Box::new(msg)),
        }
    }

    pub(crate) fn local(signal: LocalSignal) -> Self {
        ShardEnvelope {
            kind: Kind::Local(signal),
        }
    }

    /// Whether the region's direct routes counted it into the region's mailbox.
    pub(crate) fn is_counted(&self) -> bool {
        matches!(
            self.kind,
            Kind::Entity { counted: true, .. } | Kind::Forwarded { counted: true, .. }
        )
    }

    /// The entity it is for (`None` for the region's own messages).
    pub fn entity_id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Entity { id, .. } | Kind::Forwarded { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The message for the entity (`None` for the region's own messages).
    pub fn message(&self) -> Option<&M> {
        match &self.kind {
            Kind::Entity { msg, .. } | Kind::Forwarded { msg, .. } => Some(msg),
            _ => None,
        }
    }
}

impl<M: fmt::Debug> fmt::Debug for ShardEnvelope<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Entity { id, msg, .. } | Kind::Forwarded { id, msg, .. } => f
                .debug_struct("ShardEnvelope")
                .field("entity_id", id)
                .field("message", msg)
                .finish(),
            Kind::Control(c) => f.debug_tuple("ShardEnvelope").field(c).finish(),
            Kind::Local(LocalSignal::ViewChanged) => f.write_str("ShardEnvelope(ViewChanged)"),
            Kind::Local(LocalSignal::Tick) => f.write_str("ShardEnvelope(Tick)"),
            Kind::Local(LocalSignal::Passivate(id)) => {
                write!(f, "ShardEnvelope(Passivate({id:?}))")
            }
            Kind::Local(LocalSignal::Leave(_)) => f.write_str("ShardEnvelope(Leave)"),
            Kind::Local(LocalSignal::State(_)) => f.write_str("ShardEnvelope(State)"),
        }
    }
}

/// The wire form: a forwarded entity message (a pair, the id first, under a one-letter tag:
/// it is the per-message path), or the protocol.
#[derive(Serialize)]
enum WireRef<'a, M> {
    #[serde(rename = "F")]
    Forwarded(&'a str, &'a M),
    Control(&'a ShardingWire),
}

#[derive(Deserialize)]
enum WireOwned<M> {
    #[serde(rename = "F")]
    Forwarded(EntityId, M),
    Control(ShardingWire),
}

impl<M: Serialize> Serialize for ShardEnvelope<M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.kind {
            Kind::Entity { id, msg, .. } | Kind::Forwarded { id, msg, .. } => {
                WireRef::Forwarded(id, msg).serialize(s)
            }
            Kind::Control(c) => WireRef::<M>::Control(c).serialize(s),
            Kind::Local(_) => Err(serde::ser::Error::custom(
                "a region's signal from its own node never leaves the node",
            )),
        }
    }
}

impl<'de, M: DeserializeOwned> Deserialize<'de> for ShardEnvelope<M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WireOwned::<M>::deserialize(d)? {
            WireOwned::Forwarded(id, msg) => ShardEnvelope {
                kind: Kind::Forwarded {
                    id,
                    msg,
                    counted: false,
                },
            },
            WireOwned::Control(c) => ShardEnvelope::control(c),
        })
    }
}

impl<M> Message for ShardEnvelope<M>
where
    M: Message + Serialize + DeserializeOwned,
{
    fn wire_decoder() -> Option<WireDecoder<Self>> {
        Some(cbor_decoder::<Self>)
    }
}

/// The actor name of an entity: its id, with `%`, `/`, `#`, whitespace and control characters
/// (and a leading `_` or `$`) written as `%XX` bytes, so that any id is a valid name; the empty
/// id is `%`.
pub(crate) fn entity_name(id: &str) -> String {
    if id.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(id.len());
    for (i, c) in id.char_indices() {
        let escape = matches!(c, '%' | '/' | '#')
            || c.is_whitespace()
            || c.is_control()
            || (i == 0 && matches!(c, '_' | '$'));
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The id of an entity from its actor name (see [`entity_name`]); `None` if the name is not one.
pub(crate) fn entity_id_of(name: &str) -> Option<String> {
    if name == "%" {
        return Some(String::new());
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn awkward_ids_make_valid_names_that_read_back() {
        for id in [
            "",
            "alice",
            "a/b",
            "#1",
            "50%",
            "_x",
            "$y",
            "x_y",
            "tab\there",
            "ü/€",
        ] {
            let name = entity_name(id);
            assert!(
                crate::actor::path::validate_name(&name, false).is_ok(),
                "{id:?} gave {name:?}"
            );
            assert_eq!(entity_id_of(&name).as_deref(), Some(id));
        }
        assert_eq!(entity_name("alice"), "alice");
        assert_eq!(entity_name("a/b"), "a%2Fb");
    }

    #[test]
    fn a_region_signal_cannot_be_sent_over_the_wire() {
        let e: ShardEnvelope<u64> = ShardEnvelope::local(LocalSignal::Tick);
        let mut bytes = Vec::new();
        assert!(ciborium::into_writer(&e, &mut bytes).is_err());
    }

    #[test]
    fn an_entity_message_arrives_as_forwarded() {
        let e = ShardEnvelope::new("bob", 7u64);
        let mut bytes = Vec::new();
        ciborium::into_writer(&e, &mut bytes).unwrap();
        let back: ShardEnvelope<u64> = ciborium::from_reader(&bytes[..]).unwrap();
        assert!(matches!(&back.kind, Kind::Forwarded { id, msg: 7, .. } if &**id == "bob"));
    }

    proptest! {
        #[test]
        fn every_id_round_trips_through_its_name(id in ".*") {
            let name = entity_name(&id);
            prop_assert!(crate::actor::path::validate_name(&name, false).is_ok());
            prop_assert_eq!(entity_id_of(&name), Some(id));
        }
    }
}
