//! The process facts the stores depend on, injected so tests are deterministic:
//! the effective uid and a source of secure randomness.

/// Where the effective uid comes from.
pub trait EffectiveUid: Send + Sync + std::fmt::Debug {
    /// The uid permission checks compare owners with, and the runner compares with root.
    fn effective_uid(&self) -> u32;
}

/// The real effective uid of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUid;

impl EffectiveUid for ProcessUid {
    fn effective_uid(&self) -> u32 {
        rustix::process::geteuid().as_raw()
    }
}

/// A fixed uid, for tests and for callers that already dropped privileges.
#[derive(Debug, Clone, Copy)]
pub struct FixedUid(pub u32);

impl EffectiveUid for FixedUid {
    fn effective_uid(&self) -> u32 {
        self.0
    }
}

/// Secure randomness for one-time passwords and unique file names.
pub trait Randomness: Send + Sync + std::fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// `n` random bytes as lower-case hex (2n characters).
    fn hex(&self, n: usize) -> String {
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        hex::encode(buf)
    }
}

/// The operating system's CSPRNG (through `rand::rng()`, a ChaCha generator seeded by the OS).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandomness;

impl Randomness for OsRandomness {
    fn fill(&self, buf: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), buf);
    }
}

/// A deterministic counter-based generator **for tests only** (predictable: never use it for
/// real passwords): byte i of call n is `seed + n + i`.
#[derive(Debug, Default)]
pub struct SequenceRandomness {
    seed: u8,
    calls: std::sync::atomic::AtomicU8,
}

impl SequenceRandomness {
    /// A generator starting at `seed`.
    pub fn new(seed: u8) -> Self {
        Self {
            seed,
            calls: std::sync::atomic::AtomicU8::new(0),
        }
    }
}

impl Randomness for SequenceRandomness {
    fn fill(&self, buf: &mut [u8]) {
        let call = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.seed.wrapping_add(call).wrapping_add(i as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_randomness_is_deterministic_and_changes_per_call() {
        let r = SequenceRandomness::new(1);
        assert_eq!(r.hex(3), "010203");
        assert_eq!(r.hex(3), "020304");
    }

    #[test]
    fn os_randomness_differs_between_calls() {
        let r = OsRandomness;
        assert_ne!(r.hex(16), r.hex(16));
    }

    #[test]
    fn process_uid_is_the_real_one() {
        // Compared with the owner of a file this process just created.
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        assert_eq!(
            ProcessUid.effective_uid(),
            std::os::unix::fs::MetadataExt::uid(&meta)
        );
    }
}
