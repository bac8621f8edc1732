//! One pass over a payload on two cores: this thread reads and computes MD5 while a worker
//! writes the bytes to the archive file and computes the whole and per-fragment SHA-256.
//!
//! Buffers circulate between the two threads through a fixed pool, so memory stays at
//! `POOL × CHUNK` whatever the payload size, and no buffer is allocated per chunk.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use crate::digest::{Md5Digest, Sha256Digest};
use crate::fragment::FragmentPlan;
use crate::md5_engine::Md5Hasher;

/// Bytes per buffer handed between the threads.
const CHUNK: usize = 1024 * 1024;
/// Buffers in circulation: enough to keep both cores busy, few enough to bound memory.
const POOL: usize = 4;
/// Bytes each pass (read + MD5, write + two SHA-256) handles at once: small enough that
/// the bytes a pass just copied are still in the core's L2 cache when the next pass reads
/// them. Whole 1 MiB chunks fell out of cache between passes: the read copy alone cost
/// ~18% of the MD5 thread (perf), where `md5sum`'s 32 KiB reads cost almost nothing.
const PIECE: usize = 64 * 1024;

/// Every digest of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadDigests {
    /// Bytes seen.
    pub size: u64,
    /// MD5 of the whole payload (for OCS agents).
    pub md5: Md5Digest,
    /// SHA-256 of the whole payload.
    pub sha256: Sha256Digest,
    /// SHA-256 of each fragment in order.
    pub fragment_sha256: Vec<Sha256Digest>,
}

/// SHA-256 of consecutive fixed-size fragments, fed in arbitrary pieces; the last of
/// `max_fragments` takes everything that follows (the OCS console's split).
struct FragmentHasher {
    fragment_size: u64,
    max_fragments: usize,
    current: Sha256,
    in_current: u64,
    done: Vec<Sha256Digest>,
}

impl FragmentHasher {
    fn new(fragment_size: u64, max_fragments: usize) -> Self {
        Self {
            fragment_size: fragment_size.max(1),
            max_fragments,
            current: Sha256::new(),
            in_current: 0,
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.done.len() + 1 >= self.max_fragments {
                self.current.update(data);
                self.in_current += data.len() as u64;
                return;
            }
            let room = self.fragment_size - self.in_current;
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            let (head, tail) = data.split_at(take);
            self.current.update(head);
            self.in_current += take as u64;
            data = tail;
            if self.in_current == self.fragment_size {
                let finished = std::mem::replace(&mut self.current, Sha256::new());
                self.done
                    .push(Sha256Digest::from_bytes(finished.finalize().into()));
                self.in_current = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<Sha256Digest> {
        if self.in_current > 0 {
            self.done
                .push(Sha256Digest::from_bytes(self.current.finalize().into()));
        }
        self.done
    }
}

struct WorkerOutput<W> {
    sink: W,
    sha256: Sha256Digest,
    fragment_sha256: Vec<Sha256Digest>,
}

/// A `Write` (and a reader-driven pump) that digests everything passing through and
/// forwards it to `sink` on the worker thread.
pub struct Digester<W: Write + Send + 'static> {
    md5: Md5Hasher,
    size: u64,
    /// Always `CHUNK` long; `filled` bytes of it are payload.
    buffer: Vec<u8>,
    filled: usize,
    /// How much of `filled` MD5 has already seen.
    hashed: usize,
    to_worker: Option<SyncSender<(Vec<u8>, usize)>>,
    free: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<WorkerOutput<W>>>>,
}

impl<W: Write + Send + 'static> Digester<W> {
    /// Starts the worker thread that writes to `sink`.
    pub fn new(sink: W, fragment_size: u64) -> io::Result<Self> {
        Self::start(sink, fragment_size, usize::MAX)
    }

    /// Like [`new`](Self::new), hashing fragments as `plan` cuts them: also the OCS
    /// console's split, whose last fragment is longer than the others.
    pub fn for_plan(sink: W, plan: &FragmentPlan) -> io::Result<Self> {
        Self::start(sink, plan.fragment_size(), plan.count() as usize)
    }

    fn start(sink: W, fragment_size: u64, max_fragments: usize) -> io::Result<Self> {
        let (to_worker, from_main) = sync_channel::<(Vec<u8>, usize)>(POOL);
        let (give_back, free) = sync_channel::<Vec<u8>>(POOL);
        for _ in 0..POOL - 1 {
            // Cannot fail: the channel has room for POOL buffers and its receiver is alive.
            let _ = give_back.send(vec![0; CHUNK]);
        }
        let worker = std::thread::Builder::new()
            .name("tessera-sha256".into())
            .spawn(move || {
                worker(
                    sink,
                    FragmentHasher::new(fragment_size, max_fragments),
                    &from_main,
                    &give_back,
                )
            })?;
        Ok(Self {
            md5: Md5Hasher::new(),
            size: 0,
            buffer: vec![0; CHUNK],
            filled: 0,
            hashed: 0,
            to_worker: Some(to_worker),
            free,
            worker: Some(worker),
        })
    }

    /// Reads `reader` to its end through the digester, calling `progress` with the running
    /// byte count after each read.
    pub fn pump(
        &mut self,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<u64> {
        let start = self.size;
        loop {
            if self.filled == CHUNK {
                self.hand_off()?;
            }
            // Reading straight into the pooled buffer (no intermediate copy), a piece at a
            // time so that MD5 reads the bytes while they are still in cache.
            let end = CHUNK.min(self.filled + PIECE);
            let n = match reader.read(&mut self.buffer[self.filled..end]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += n;
            self.size += n as u64;
            self.md5.update(&self.buffer[self.hashed..self.filled]);
            self.hashed = self.filled;
            progress(self.size);
        }
        Ok(self.size - start)
    }

    /// MD5 here, then the buffer goes to the worker and an empty one comes back.
    fn hand_off(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        self.md5.update(&self.buffer[self.hashed..self.filled]);
        let Ok(next) = self.free.recv() else {
            return Err(self.worker_failure());
        };
        let full = (std::mem::replace(&mut self.buffer, next), self.filled);
        self.filled = 0;
        self.hashed = 0;
        let sent = self.to_worker.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.worker_failure()),
        }
    }

    /// The worker stopped early: its error says why.
    fn worker_failure(&mut self) -> io::Error {
        self.to_worker = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the SHA-256 worker thread stopped unexpectedly"),
        }
    }

    /// Flushes the last chunk, waits for the worker and returns the digests and the sink.
    pub fn finish(mut self) -> io::Result<(PayloadDigests, W)> {
        self.hand_off()?;
        self.to_worker = None;
        let output = match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result?,
            _ => return Err(io::Error::other("the SHA-256 worker thread panicked")),
        };
        let md5 = std::mem::take(&mut self.md5).finalize();
        Ok((
            PayloadDigests {
                size: self.size,
                md5,
                sha256: output.sha256,
                fragment_sha256: output.fragment_sha256,
            },
            output.sink,
        ))
    }
}

impl<W: Write + Send + 'static> Write for Digester<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.filled == CHUNK {
            self.hand_off()?;
        }
        let take = (CHUNK - self.filled).min(data.len());
        self.buffer[self.filled..self.filled + take].copy_from_slice(&data[..take]);
        self.filled += take;
        self.size += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn worker<W: Write>(
    mut sink: W,
    mut fragments: FragmentHasher,
    from_main: &Receiver<(Vec<u8>, usize)>,
    give_back: &SyncSender<Vec<u8>>,
) -> io::Result<WorkerOutput<W>> {
    let mut whole = Sha256::new();
    for (chunk, len) in from_main {
        // Piece by piece: both hashes read what `write` has just pulled into cache.
        for piece in chunk[..len].chunks(PIECE) {
            sink.write_all(piece)?;
            whole.update(piece);
            fragments.update(piece);
        }
        // The main thread may already have finished; a lost buffer is then harmless.
        let _ = give_back.send(chunk);
    }
    sink.flush()?;
    Ok(WorkerOutput {
        sink,
        sha256: Sha256Digest::from_bytes(whole.finalize().into()),
        fragment_sha256: fragments.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Md5;
    use proptest::prelude::*;

    fn reference(data: &[u8], fragment_size: usize) -> PayloadDigests {
        PayloadDigests {
            size: data.len() as u64,
            md5: Md5Digest::from_bytes(Md5::digest(data).into()),
            sha256: Sha256Digest::from_bytes(Sha256::digest(data).into()),
            fragment_sha256: data
                .chunks(fragment_size)
                .map(|c| Sha256Digest::from_bytes(Sha256::digest(c).into()))
                .collect(),
        }
    }

    #[test]
    fn known_md5_and_copy() {
        let mut d = Digester::new(Vec::new(), 10).unwrap();
        let data = b"The quick brown fox jumps over the lazy dog";
        let mut progress = Vec::new();
        d.pump(&mut &data[..], &mut |n| progress.push(n)).unwrap();
        let (digests, sink) = d.finish().unwrap();
        assert_eq!(digests.md5.to_hex(), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(sink, data);
        assert_eq!(digests.fragment_sha256.len(), 5);
        assert_eq!(progress.last(), Some(&(data.len() as u64)));
    }

    #[test]
    fn sink_errors_are_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut d = Digester::new(Full, 1024).unwrap();
        let data = vec![7u8; CHUNK * 6];
        let pumped = d.pump(&mut &data[..], &mut |_| {});
        let result = pumped.and_then(|_| d.finish().map(|_| ()));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::StorageFull);
    }

    /// A reader that returns at most `step` bytes per call, as pipes and sockets do.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn console_plan_hashes_the_long_last_fragment_whole() {
        let data: Vec<u8> = (0..10u8).collect();
        let plan = FragmentPlan::console_split(10, 3).unwrap();
        let mut d = Digester::for_plan(Vec::new(), &plan).unwrap();
        d.write_all(&data).unwrap();
        let (digests, _) = d.finish().unwrap();
        let expected: Vec<_> = [&data[0..3], &data[3..6], &data[6..10]]
            .iter()
            .map(|c| Sha256Digest::from_bytes(Sha256::digest(c).into()))
            .collect();
        assert_eq!(digests.fragment_sha256, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn short_reads_give_the_same_digests(len in 0usize..3 * CHUNK, step in 1usize..3 * PIECE, fragment in 1usize..2 * CHUNK) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(3)).collect();
            let mut d = Digester::new(Vec::new(), fragment as u64).unwrap();
            d.pump(&mut Trickle { data: &data, step }, &mut |_| {}).unwrap();
            let (digests, sink) = d.finish().unwrap();
            prop_assert_eq!(digests, reference(&data, fragment));
            prop_assert_eq!(sink, data);
        }

        #[test]
        fn matches_single_threaded_digests(len in 0usize..3 * CHUNK, fragment in 1usize..2 * CHUNK, seed: u8, via_write: bool) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let mut d = Digester::new(Vec::new(), fragment as u64).unwrap();
            if via_write {
                for piece in data.chunks(7919) {
                    d.write_all(piece).unwrap();
                }
            } else {
                d.pump(&mut &data[..], &mut |_| {}).unwrap();
            }
            let (digests, sink) = d.finish().unwrap();
            prop_assert_eq!(digests, reference(&data, fragment));
            prop_assert_eq!(sink, data);
        }
    }
}
