//! A fast, non-keyed hasher for the short item and catalog names resolution looks up tens of
//! times per device (SipHash was a sixth of the resolution time).
//!
//! Only for tables whose keys the repository administrator writes (manifest entries, pkginfo
//! names, catalog names): with no secret key, a table filled with crafted colliding names
//! would be slow, and nothing a device sends is inserted into these tables.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// `HashSet` with [`FastHasher`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<FastHasher>>;

/// The multiply-rotate hash rustc uses for its own tables (`FxHasher`), eight bytes at a time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_names_hash_equal_and_near_names_differ() {
        let build = BuildHasherDefault::<FastHasher>::default();
        assert_eq!(build.hash_one("Firefox"), build.hash_one("Firefox"));
        let names = [
            "",
            "a",
            "a\0",
            "b",
            "Firefox",
            "Firefox1",
            "Firefox-120.0",
            "App0001",
        ];
        let hashes: FastSet<u64> = names.iter().map(|n| build.hash_one(n)).collect();
        assert_eq!(hashes.len(), names.len());
    }
}
