//! MD5 (RFC 1321) in safe Rust, with the steps arranged for the CPU's critical path.
//!
//! MD5 is one long dependency chain (each step needs the previous step's result), so its
//! speed is the latency of one step × 64 per block, not throughput. Two things keep that
//! latency down; with them this engine reads and hashes 1 GiB slightly faster than GNU
//! `md5sum`, where the `md-5` crate (0.10, with or without its `asm` feature) was ~1.2×
//! slower (measurements in `docs/packages.md`):
//! - the round constants are hidden from the optimiser: as immediates, LLVM's
//!   reassociation adds them *after* the round function, i.e. on the critical path;
//!   loaded from memory they are summed with the message word and `a` off the path;
//! - the `G` function is `(b & d) + (c & !d)` (the terms share no bits, so `+` equals `|`),
//!   so the `c`-term is added before `b` is known and only one `and` waits for `b`.

use crate::digest::Md5Digest;

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// `floor(abs(sin(i + 1)) × 2^32)`, RFC 1321 §3.4.
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// One step: `a = b + ((a + f(b, c, d) + m + k) <<< s)`, with everything that does not
/// depend on `b` added first.
macro_rules! step {
    (F, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        $a = $a.wrapping_add($m.wrapping_add($k));
        $a = $a.wrapping_add((($c ^ $d) & $b) ^ $d);
        $a = $a.rotate_left($s).wrapping_add($b);
    };
    (G, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        $a = $a.wrapping_add($m.wrapping_add($k)).wrapping_add($c & !$d);
        $a = $a.wrapping_add($b & $d);
        $a = $a.rotate_left($s).wrapping_add($b);
    };
    (H, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        $a = $a.wrapping_add($m.wrapping_add($k));
        $a = $a.wrapping_add(($c ^ $d) ^ $b);
        $a = $a.rotate_left($s).wrapping_add($b);
    };
    (I, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        $a = $a.wrapping_add($m.wrapping_add($k));
        $a = $a.wrapping_add(($b | !$d) ^ $c);
        $a = $a.rotate_left($s).wrapping_add($b);
    };
}

/// Sixteen steps of one round: message word `(first + stride·i) mod 16`, shifts `s`.
macro_rules! round {
    ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:ident, $base:expr,
     $first:expr, $stride:expr, $s:expr) => {
        let mut i = 0;
        while i < 16 {
            step!(
                $f,
                $a,
                $b,
                $c,
                $d,
                $m[($first + $stride * i) % 16],
                $k[$base + i],
                $s[0]
            );
            step!(
                $f,
                $d,
                $a,
                $b,
                $c,
                $m[($first + $stride * (i + 1)) % 16],
                $k[$base + i + 1],
                $s[1]
            );
            step!(
                $f,
                $c,
                $d,
                $a,
                $b,
                $m[($first + $stride * (i + 2)) % 16],
                $k[$base + i + 2],
                $s[2]
            );
            step!(
                $f,
                $b,
                $c,
                $d,
                $a,
                $m[($first + $stride * (i + 3)) % 16],
                $k[$base + i + 3],
                $s[3]
            );
            i += 4;
        }
    };
}

// The names are RFC 1321's.
#[allow(clippy::many_single_char_names)]
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut m = [0u32; 16];
    for (word, bytes) in m.iter_mut().zip(block.as_chunks::<4>().0) {
        *word = u32::from_le_bytes(*bytes);
    }
    // Opaque to the optimiser (see the module comment). `black_box` is only a hint: if it
    // were ignored the result would be the same, only slower.
    let k: &[u32; 64] = std::hint::black_box(&K);
    let [mut a, mut b, mut c, mut d] = *state;
    round!(F, a, b, c, d, m, k, 0, 0, 1, [7, 12, 17, 22]);
    round!(G, a, b, c, d, m, k, 16, 1, 5, [5, 9, 14, 20]);
    round!(H, a, b, c, d, m, k, 32, 5, 3, [4, 11, 16, 23]);
    round!(I, a, b, c, d, m, k, 48, 0, 7, [6, 10, 15, 21]);
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

/// An incremental MD5 hasher.
#[derive(Clone)]
pub struct Md5Hasher {
    state: [u32; 4],
    /// Bytes seen so far (the length field wraps modulo 2^64 bits, as RFC 1321 says).
    length: u64,
    /// A partial block waiting for more input.
    pending: [u8; 64],
    pending_len: usize,
}

impl Default for Md5Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Md5Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5Hasher")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Md5Hasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Self {
            state: INIT,
            length: 0,
            pending: [0; 64],
            pending_len: 0,
        }
    }

    /// The MD5 of `data`.
    pub fn digest(data: &[u8]) -> Md5Digest {
        let mut hasher = Self::new();
        hasher.update(data);
        hasher.finalize()
    }

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (64 - self.pending_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(head);
            self.pending_len += take;
            data = rest;
            if self.pending_len < 64 {
                return;
            }
            compress(&mut self.state, &self.pending);
            self.pending_len = 0;
        }
        let (blocks, tail) = data.as_chunks::<64>();
        for block in blocks {
            compress(&mut self.state, block);
        }
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    /// The digest of everything fed.
    pub fn finalize(mut self) -> Md5Digest {
        let bits = self.length.wrapping_mul(8);
        // Padding: 0x80, zeros up to 56 mod 64, then the bit length, little-endian.
        let mut tail = [0u8; 128];
        tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        tail[self.pending_len] = 0x80;
        let end = if self.pending_len < 56 { 64 } else { 128 };
        tail[end - 8..end].copy_from_slice(&bits.to_le_bytes());
        for block in tail[..end].as_chunks::<64>().0 {
            compress(&mut self.state, block);
        }
        let mut out = [0u8; 16];
        for (bytes, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(self.state) {
            *bytes = word.to_le_bytes();
        }
        Md5Digest::from_bytes(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest as _, Md5};
    use proptest::prelude::*;

    #[test]
    fn rfc_1321_test_suite() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Md5Hasher::digest(input).to_hex(), expected, "{input:?}");
        }
    }

    /// GNU `md5sum` as the oracle, on lengths around every padding boundary.
    #[test]
    fn agrees_with_md5sum() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 4096, 300_000,
        ] {
            let path = dir.path().join("data");
            std::fs::write(&path, &data[..len]).unwrap();
            let out = std::process::Command::new("md5sum")
                .arg(&path)
                .output()
                .expect("GNU md5sum is the oracle of this test: install coreutils");
            assert!(out.status.success(), "md5sum failed");
            let text = String::from_utf8(out.stdout).unwrap();
            let expected = text.split_whitespace().next().unwrap();
            assert_eq!(
                Md5Hasher::digest(&data[..len]).to_hex(),
                expected,
                "length {len}"
            );
        }
    }

    proptest! {
        /// Any split of the input into `update` calls gives the `md-5` crate's digest.
        #[test]
        fn matches_md5_crate_in_any_pieces(data in proptest::collection::vec(any::<u8>(), 0..1000), cuts in proptest::collection::vec(0usize..1000, 0..6)) {
            let mut hasher = Md5Hasher::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                hasher.update(&data[from..cut]);
                from = cut;
            }
            let expected: [u8; 16] = Md5::digest(&data).into();
            prop_assert_eq!(*hasher.finalize().as_bytes(), expected);
        }
    }
}
