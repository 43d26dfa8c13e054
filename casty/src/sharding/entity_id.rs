//! [`EntityId`]: the id of a sharded entity, made on every `ShardEnvelope::new(id, ..)`, so
//! making one must cost next to nothing.
//!
//! An id of up to 24 bytes is kept inline, in three words built in registers from (possibly
//! overlapping) loads of the source string. Copying it byte by byte into a buffer and reading
//! the buffer back as words, as general-purpose small-string types do, makes the processor wait
//! for the narrow stores before it can forward them to the wide loads; on a sharded tell that
//! wait was the largest single cost of making an id. A longer id is shared (`Arc<str>`), so
//! copies of it are cheap.
//!
//! The id is a union of the inline words and the shared string, tagged by a length word; each
//! `unsafe` block says why it reads the right field.

#![allow(unsafe_code)]

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::sync::Arc;

use serde::Deserialize;

/// The longest id kept inline.
const INLINE: usize = 24;

/// The id of a sharded entity: a string, kept inline when it is short (up to 24 bytes), so that
/// making a [`ShardEnvelope`](super::ShardEnvelope) for it allocates nothing; a longer one is
/// shared, so copies are cheap. Made from `&str`, `String` or `Arc<str>`.
///
/// # Examples
///
/// ```
/// use casty::sharding::EntityId;
/// let id = EntityId::from("alice");
/// assert_eq!(&*id, "alice");
/// assert_eq!(id, EntityId::from(String::from("alice")));
/// ```
#[repr(C)]
pub struct EntityId {
    data: Data,
    /// An inline id's length (up to 24); [`SHARED`] and the length for a shared one.
    meta: u64,
}

/// Marks a shared id in `EntityId::meta`.
const SHARED: u64 = 1 << 63;

/// Four whole words, with no padding and no byte-wide fields: a move of an id copies words that
/// were written as words, so the processor can forward them.
#[repr(C)]
union Data {
    /// An inline id's bytes in memory order (little-endian words), zero after its length.
    words: [u64; 3],
    /// A shared id.
    shared: ManuallyDrop<Arc<str>>,
}

impl EntityId {
    #[inline]
    fn is_shared(&self) -> bool {
        self.meta & SHARED != 0
    }

    /// A long id, shared (kept out of line, so that making a short id stays small enough to
    /// inline where the envelope is made).
    #[cold]
    #[inline(never)]
    fn share(s: &str) -> Self {
        EntityId::shared(Arc::from(s))
    }

    #[inline]
    fn shared(s: Arc<str>) -> Self {
        let meta = SHARED | s.len() as u64;
        EntityId {
            data: Data {
                shared: ManuallyDrop::new(s),
            },
            meta,
        }
    }

    /// The inline words, or `None` for a shared id.
    #[inline]
    fn words(&self) -> Option<&[u64; 3]> {
        // SAFETY: `meta` says which field of `data` was written, and neither is written again.
        if self.is_shared() {
            None
        } else {
            Some(unsafe { &self.data.words })
        }
    }

    /// The id as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self.words() {
            // SAFETY: `words` holds the `meta` bytes of a `str` in memory order (see `inline`),
            // and `meta <= 24`, the size of `words`.
            Some(words) => unsafe {
                let bytes =
                    std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), self.meta as usize);
                std::str::from_utf8_unchecked(bytes)
            },
            // SAFETY: a shared id was made with `shared`.
            None => unsafe { &self.data.shared },
        }
    }

    /// A hash of an inline id, from its words (the cache of direct routes indexes by it); `None`
    /// for a longer id.
    #[inline]
    pub(crate) fn inline_hash(&self) -> Option<u64> {
        let [a, b, c] = *self.words()?;
        // Two independent folded multiplies (the full 128-bit product, its halves xored), as
        // foldhash combines words, then a finalizer that spreads every bit over the whole word
        // (MurmurHash3's): ids that differ only in a few bytes anywhere (`user-1`, `user-2`,
        // ..) land on slots as random ones would.
        let h = fold_mul(a ^ 0x243f_6a88_85a3_08d3, b ^ 0x1319_8a2e_0370_7344)
            ^ fold_mul(c ^ 0xa409_3822_299f_31d0, self.meta ^ 0x082e_fa98_ec4e_6c89);
        let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        let h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        Some(h ^ (h >> 33))
    }

    #[inline(always)]
    fn inline(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let n = b.len();
        if n > INLINE {
            return None;
        }
        // Each word from one or two loads of the source, kept in registers: no byte is stored
        // and read back. A last partial word is the 8 bytes that end the id, shifted down.
        let tail = |full: usize| word(&b[n - 8..]) >> (8 * (full - n));
        let words = if n > 16 {
            [word(&b[..8]), word(&b[8..16]), tail(24)]
        } else if n > 8 {
            [word(&b[..8]), tail(16), 0]
        } else {
            [load_le(b), 0, 0]
        };
        Some(EntityId {
            data: Data {
                words: words.map(u64::to_le),
            },
            meta: n as u64,
        })
    }
}

impl Clone for EntityId {
    #[inline]
    fn clone(&self) -> Self {
        match self.words() {
            Some(words) => EntityId {
                data: Data { words: *words },
                meta: self.meta,
            },
            // SAFETY: a shared id was made with `shared`.
            None => EntityId::shared(Arc::clone(unsafe { &self.data.shared })),
        }
    }
}

impl Drop for EntityId {
    #[inline]
    fn drop(&mut self) {
        if self.is_shared() {
            // SAFETY: a shared id was made with `shared`, and is dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.data.shared) }
        }
    }
}

/// The 128-bit product of `a` and `b`, its two halves xored.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// 8 bytes as a little-endian number.
#[inline(always)]
fn word(p: &[u8]) -> u64 {
    u64::from_le_bytes(p.try_into().expect("8 bytes"))
}

/// Up to 8 bytes as a little-endian number, from at most two loads of the source (which
/// overlap when the length is not a power of two; the overlapping bytes are the same, so or-ing
/// them is exact).
#[inline(always)]
fn load_le(p: &[u8]) -> u64 {
    let n = p.len();
    debug_assert!(n <= 8);
    if n == 8 {
        u64::from_le_bytes(p.try_into().expect("8 bytes"))
    } else if n >= 4 {
        let lo = u32::from_le_bytes(p[..4].try_into().expect("4 bytes")) as u64;
        let hi = u32::from_le_bytes(p[n - 4..].try_into().expect("4 bytes")) as u64;
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        p[0] as u64 | (p[n / 2] as u64) << (8 * (n / 2)) | (p[n - 1] as u64) << (8 * (n - 1))
    } else {
        0
    }
}

impl Default for EntityId {
    fn default() -> Self {
        EntityId {
            data: Data { words: [0; 3] },
            meta: 0,
        }
    }
}

impl PartialEq for EntityId {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self.words(), other.words()) {
            // Zero after the length, so equal ids have equal words.
            (Some(x), Some(y)) => self.meta == other.meta && x == y,
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for EntityId {}

impl PartialOrd for EntityId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntityId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// As the `str` hashes, so that a table keyed by ids is searched by `&str`.
impl Hash for EntityId {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::ops::Deref for EntityId {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for EntityId {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for EntityId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl From<&str> for EntityId {
    #[inline(always)]
    fn from(s: &str) -> Self {
        match EntityId::inline(s) {
            Some(id) => id,
            None => EntityId::share(s),
        }
    }
}

impl From<&String> for EntityId {
    #[inline]
    fn from(s: &String) -> Self {
        EntityId::from(s.as_str())
    }
}

impl From<String> for EntityId {
    fn from(s: String) -> Self {
        EntityId::inline(&s).unwrap_or_else(|| EntityId::shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for EntityId {
    fn from(s: Arc<str>) -> Self {
        EntityId::inline(&s).unwrap_or_else(|| EntityId::shared(s))
    }
}

impl From<&EntityId> for EntityId {
    fn from(s: &EntityId) -> Self {
        s.clone()
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EntityId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entity id (a string)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EntityId, E> {
                Ok(EntityId::from(s))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<EntityId, E> {
                Ok(EntityId::from(s))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn every_length_round_trips_and_hashes_as_its_str() {
        let text = "aé0123456789abcdefghijklmnopqrstuvwxyz-ü-Ω".repeat(2);
        let mut ends: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        ends.truncate(60);
        for end in ends {
            let s = &text[..end];
            for id in [
                EntityId::from(s),
                EntityId::from(s.to_string()),
                EntityId::from(Arc::<str>::from(s)),
            ] {
                assert_eq!(id.as_str(), s, "length {end}");
                assert_eq!(hash_of(&id), hash_of(s), "length {end}");
                assert_eq!(id, EntityId::from(s));
                assert_eq!(id.clone(), id);
            }
            assert_eq!(!EntityId::from(s).is_shared(), s.len() <= INLINE);
        }
    }

    #[test]
    fn ids_differ_and_order_as_their_strs() {
        let ids = [
            "",
            "a",
            "b",
            "ab",
            "abc\0",
            "abc",
            "x".repeat(24).as_str(),
            "x".repeat(25).as_str(),
        ]
        .map(|s| s.to_string());
        for a in &ids {
            for b in &ids {
                let (x, y) = (EntityId::from(a), EntityId::from(b));
                assert_eq!(x == y, a == b, "{a:?} {b:?}");
                assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} {b:?}");
            }
        }
        // An inline id equals the same text held on the heap.
        let heap = EntityId::shared(Arc::from("abc"));
        assert_eq!(heap, EntityId::from("abc"));
    }

    #[test]
    fn default_is_the_empty_id() {
        assert_eq!(EntityId::default().as_str(), "");
    }
}
