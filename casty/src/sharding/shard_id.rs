//! Which shard an entity belongs to: a pure function of its id and the number of shards.
//!
//! The placement is the one Casty (Python) computes, so that nodes of either agree on where an
//! entity lives: the first four bytes of the MD5 digest of the id's UTF-8 bytes, read as a
//! big-endian `u32`, modulo the number of shards. MD5 serves here only as a well-spread hash that
//! both languages have; nothing depends on it being hard to invert.

use md5::{Digest, Md5};

/// A shard's number, from 0 to `num_shards - 1`.
pub type ShardId = u32;

/// The shard of the entity `entity_id` among `num_shards` shards.
///
/// It hashes the id's UTF-8 bytes with MD5 and takes the digest's first four bytes, read
/// big-endian, modulo `num_shards`: the same placement as Casty (Python). It allocates nothing.
///
/// `num_shards` is meant to be at least 1 (`ShardingSettings` and `casty.toml` keep it so). A
/// `num_shards` of 0 is read as 1: every entity is then in shard 0, and nothing panics.
///
/// # Examples
///
/// ```
/// use casty::sharding::shard_id;
///
/// assert_eq!(shard_id("user-42", 100), 87);
/// assert_eq!(shard_id("alice", 100), 70);
/// assert_eq!(shard_id("bob", 100), 20);
/// assert_eq!(shard_id("queue:emails", 256), 140);
/// assert_eq!(shard_id("", 256), 217);
/// assert_eq!(shard_id("user-42", 0), 0); // read as one shard
/// ```
pub fn shard_id(entity_id: &str, num_shards: u32) -> ShardId {
    let digest = Md5::digest(entity_id.as_bytes());
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    head % num_shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placement_matches_casty_python_on_the_pinned_vectors() {
        assert_eq!(shard_id("user-42", 100), 87);
        assert_eq!(shard_id("alice", 100), 70);
        assert_eq!(shard_id("bob", 100), 20);
        assert_eq!(shard_id("queue:emails", 256), 140);
        assert_eq!(shard_id("", 256), 217);
    }

    #[test]
    fn zero_shards_is_read_as_one_shard() {
        assert_eq!(shard_id("user-42", 0), 0);
        assert_eq!(shard_id("", 0), 0);
        assert_eq!(shard_id("user-42", 1), 0);
    }

    #[test]
    fn the_full_range_of_u32_is_used_for_u32_max_shards() {
        // The digest head of "" is 0xd41d8cd9: with u32::MAX shards it is kept whole.
        assert_eq!(shard_id("", u32::MAX), 0xd41d_8cd9);
    }

    #[test]
    fn ids_are_hashed_as_utf8_bytes() {
        // MD5 of the two UTF-8 bytes c3 a9 of "é" starts 66ddcd97.
        assert_eq!(shard_id("é", u32::MAX), 0x66dd_cd97);
    }

    proptest! {
        #[test]
        fn a_shard_is_always_below_the_number_of_shards(id in ".*", n in 1u32..) {
            prop_assert!(shard_id(&id, n) < n);
        }

        #[test]
        fn shards_are_one_hash_reduced_modulo_the_number_of_shards(
            id in ".*",
            n in 1u32..=u32::MAX / 2,
        ) {
            // h % 2n % n == h % n for one fixed h per id.
            prop_assert_eq!(shard_id(&id, 2 * n) % n, shard_id(&id, n));
        }
    }
}
