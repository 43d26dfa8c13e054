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

/// The wire form. A forwarded entity message, the per-message path, is a bare pair, `[id,
/// msg]`: a CBOR array of two, with no tag and no field names, so that the receiver reads two
/// headers more than the message itself needs (the pair's and the id's). The protocol is a map
/// of one entry, `{"Control": ..}`. The two are told apart by the first header (an array or a
/// map), so that neither form carries a tag for the other.
const CONTROL: &str = "Control";

impl<M: Serialize> Serialize for ShardEnvelope<M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match &self.kind {
            Kind::Entity { id, msg, .. } | Kind::Forwarded { id, msg, .. } => {
                (id.as_str(), msg).serialize(s)
            }
            Kind::Control(c) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(CONTROL, &**c)?;
                map.end()
            }
            Kind::Local(_) => Err(serde::ser::Error::custom(
                "a region's signal from its own node never leaves the node",
            )),
        }
    }
}

impl<'de, M: DeserializeOwned> Deserialize<'de> for ShardEnvelope<M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<M>(std::marker::PhantomData<M>);
        impl<'de, M: DeserializeOwned> serde::de::Visitor<'de> for V<M> {
            type Value = ShardEnvelope<M>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shard envelope: [entity id, message] or {\"Control\": ..}")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let id: EntityId = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let msg: M = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if a.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(ShardEnvelope {
                    kind: Kind::Forwarded {
                        id,
                        msg,
                        counted: false,
                    },
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let Some(key) = a.next_key::<std::borrow::Cow<'de, str>>()? else {
                    return Err(A::Error::invalid_length(0, &self));
                };
                if key != CONTROL {
                    return Err(A::Error::unknown_field(&key, &[CONTROL]));
                }
                let control: ShardingWire = a.next_value()?;
                if a.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(2, &self));
                }
                Ok(ShardEnvelope::control(control))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
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
        let back = decode(&encode(&ShardEnvelope::new("bob", 7u64))).unwrap();
        assert!(matches!(&back.kind, Kind::Forwarded { id, msg: 7, .. } if &**id == "bob"));
    }

    fn encode<T: Serialize>(t: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::into_writer(t, &mut bytes).unwrap();
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<ShardEnvelope<u64>, String> {
        crate::actor::message::cbor_decoder(bytes)
    }

    #[test]
    fn an_entity_message_is_a_bare_pair_on_the_wire() {
        // An array of two (0x82), the id as text ("bob"), the message (7).
        assert_eq!(
            encode(&ShardEnvelope::new("bob", 7u64)),
            [0x82, 0x63, b'b', b'o', b'b', 0x07]
        );
        // A long id, too.
        let long = "an-id-longer-than-twenty-four-bytes";
        let back = decode(&encode(&ShardEnvelope::new(long, 9u64))).unwrap();
        assert!(matches!(&back.kind, Kind::Forwarded { id, msg: 9, .. } if &**id == long));
    }

    #[test]
    fn the_protocol_round_trips_as_a_map_of_one() {
        use crate::cluster::UniqueAddress;
        use crate::remote::NodeAddress;
        let region = UniqueAddress::new(NodeAddress::new("bank", "127.0.0.1", 2551), 7);
        let control = ShardingWire::GetShardHome { region, shard: 70 };
        let bytes = encode(&ShardEnvelope::<u64>::control(control.clone()));
        // A map of one entry (0xa1) under the key "Control".
        assert_eq!(
            &bytes[..9],
            &[0xa1, 0x67, b'C', b'o', b'n', b't', b'r', b'o', b'l']
        );
        let back = decode(&bytes).unwrap();
        assert!(matches!(&back.kind, Kind::Control(c) if **c == control));
    }

    #[test]
    fn a_malformed_envelope_is_an_error() {
        let bad: [(&str, Vec<u8>); 7] = [
            ("a bare number", encode(&7u64)),
            ("a pair short of its message", encode(&("bob",))),
            ("a pair with a third element", encode(&("bob", 7u64, 8u64))),
            ("an id that is not text", encode(&(5u64, 7u64))),
            ("a message of the wrong type", encode(&("bob", "seven"))),
            (
                "a map under another key",
                encode(
                    &[("Other", 1u64)]
                        .into_iter()
                        .collect::<std::collections::BTreeMap<_, _>>(),
                ),
            ),
            (
                "a truncated frame",
                encode(&ShardEnvelope::new("bob", 7u64))[..3].to_vec(),
            ),
        ];
        for (what, bytes) in bad {
            assert!(decode(&bytes).is_err(), "{what} was accepted");
        }
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
