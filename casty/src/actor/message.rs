//! The `Message` trait: what an actor may receive.
//!
//! Every actor's protocol type implements [`Message`]. The trait is deliberately small: a message must
//! be `Send + Debug + 'static` (so it can cross tasks and be rendered in dead letters) and it names a
//! stable *manifest*, the string that identifies its type on the wire and in a journal. The remoting
//! and persistence layers build on the manifest; the local runtime only needs the bounds.
//!
//! `#[message_enum]` (in `casty-macros`) implements the trait for protocol enums. Hand-written code
//! implements it with one line, and the common std types implement it already.

use std::borrow::Cow;
use std::fmt::Debug;

/// A type an actor can receive.
///
/// Spawning a `Behavior<M>` requires `M: Message`. Replies sent to an `ask` need no `Message` bound:
/// only actors' own protocols do.
///
/// # Examples
///
/// ```
/// use casty::Message;
///
/// #[derive(Debug)]
/// struct Greet {
///     name: String,
/// }
/// impl Message for Greet {}
///
/// assert!(Greet::manifest().ends_with("Greet"));
/// # let _ = Greet { name: String::new() }.name;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a casty message",
    label = "this type is used as an actor's message",
    note = "add `impl casty::Message for {Self} {{}}` (it also needs `Debug + Send + 'static`), or use `#[message_enum]`"
)]
pub trait Message: Debug + Send + 'static {
    /// The stable name of this type on the wire and in journals.
    ///
    /// Defaults to the Rust type name. Override it to keep old journals readable after a rename.
    fn manifest() -> Cow<'static, str>
    where
        Self: Sized,
    {
        Cow::Borrowed(std::any::type_name::<Self>())
    }

    /// How this type is read from the wire, if it can be: what lets a remote node send it to an
    /// actor here. `None` (the default) makes the actor local-only; a message for it from another
    /// node becomes a dead letter. `#[message_enum]` and `#[message]` fill it in (unless `local`);
    /// by hand, return `Some(casty::wire::cbor_decoder::<Self>)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::wire::WireDecoder;
    /// use casty::Message;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Debug, Serialize, Deserialize)]
    /// struct Ping(u32);
    /// impl Message for Ping {
    ///     fn wire_decoder() -> Option<WireDecoder<Self>> {
    ///         Some(casty::wire::cbor_decoder::<Self>)
    ///     }
    /// }
    /// assert!(Ping::wire_decoder().is_some());
    /// ```
    fn wire_decoder() -> Option<WireDecoder<Self>>
    where
        Self: Sized,
    {
        None
    }
}

/// Reads a message from its wire bytes (CBOR), with refs inside it resolved by the caller's
/// context. See [`Message::wire_decoder`].
pub type WireDecoder<M> = fn(&[u8]) -> Result<M, String>;

/// The CBOR [`WireDecoder`] of any serde type.
///
/// # Errors
///
/// The deserializer's message, if `bytes` is not a CBOR `M`.
pub fn cbor_decoder<M: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<M, String> {
    cbor_decode(bytes).map_err(|e| e.to_string())
}

/// The size of the decoder's scratch buffer, as `ciborium::from_reader` has it (a string
/// decoded in place may be at most this long).
const CBOR_SCRATCH: usize = 4096;

thread_local! {
    /// The decoder's scratch buffer, kept per thread: `ciborium::from_reader` zeroes a fresh
    /// 4 KiB one for every value, which costs more than decoding a small message.
    static CBOR_SCRATCH_BUF: std::cell::RefCell<Box<[u8; CBOR_SCRATCH]>> =
        std::cell::RefCell::new(Box::new([0; CBOR_SCRATCH]));
}

/// Decodes a CBOR `M` from `bytes` exactly as `ciborium::from_reader` does, with a reused
/// scratch buffer.
pub(crate) fn cbor_decode<M: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<M, ciborium::de::Error<std::io::Error>> {
    CBOR_SCRATCH_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => ciborium::de::from_reader_with_buffer(bytes, &mut scratch[..]),
        // Re-entered (a value decoded while decoding another): a buffer of its own.
        Err(_) => ciborium::from_reader(bytes),
    })
}

macro_rules! std_messages {
    ($($t:ty),* $(,)?) => { $(
        impl Message for $t {
            fn wire_decoder() -> Option<WireDecoder<Self>> {
                Some(cbor_decoder::<Self>)
            }
        }
    )* };
}

std_messages!(
    (),
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    String,
    std::time::Duration,
);

impl Message for &'static str {}

impl<T: Message> Message for Vec<T> {}
impl<T: Message> Message for Option<T> {}
impl<T: Message> Message for Box<T> {}
impl<A: Message, B: Message> Message for (A, B) {}
impl<A: Message, B: Message, C: Message> Message for (A, B, C) {}

impl<M: Send + 'static> Message for crate::ActorRef<M> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let mut buf = Vec::new();
        ciborium::into_writer(v, &mut buf).unwrap();
        buf
    }

    // The reused scratch buffer decodes what a fresh one does: strings shorter than it, as long
    // as it, and longer than it.
    #[test]
    fn the_reused_decoder_buffer_decodes_strings_of_any_length() {
        for len in [0, 5, CBOR_SCRATCH, CBOR_SCRATCH + 1, 3 * CBOR_SCRATCH] {
            let v = (len as u64, "é".repeat(len / 2), vec![7u8; len]);
            let bytes = cbor(&v);
            let decoded: (u64, String, Vec<u8>) = cbor_decode(&bytes).unwrap();
            assert_eq!(decoded, v);
            let fresh: (u64, String, Vec<u8>) = ciborium::from_reader(&bytes[..]).unwrap();
            assert_eq!(decoded, fresh);
        }
        assert!(cbor_decoder::<u64>(&cbor(&"not a number")).is_err());
    }

    /// A value whose own decoding decodes another value from the wire (as a ref resolver may).
    #[derive(Debug, PartialEq)]
    struct Nested(String);

    impl<'de> serde::Deserialize<'de> for Nested {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let inner: Vec<u8> = serde::Deserialize::deserialize(d)?;
            cbor_decode::<String>(&inner)
                .map(Nested)
                .map_err(serde::de::Error::custom)
        }
    }

    // A decode inside a decode on the same thread gets a buffer of its own.
    #[test]
    fn a_decode_inside_a_decode_works() {
        let inner = cbor(&"inner".to_string());
        let outer = cbor(&(1u8, inner));
        let (n, nested): (u8, Nested) = cbor_decode(&outer).unwrap();
        assert_eq!((n, nested), (1, Nested("inner".into())));
    }
}
