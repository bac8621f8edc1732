//! Reassembly on the agent: verified fragments are appended in order, then the whole
//! payload is checked against `info` before anything runs.

use std::io::Write;

use sha2::{Digest as _, Sha256};

use crate::digest::{OcsDigest, Sha256Digest};
use crate::error::{Error, Result};
use crate::fragment::FragmentPlan;
use crate::info::{Integrity, PackageInfo};
use crate::md5_engine::Md5Hasher;

/// Checks one fragment against `info` on arrival, before it is stored: length and SHA-256
/// when `info` carries Tessera data (an OCS console `info` has nothing per fragment).
pub fn verify_fragment(info: &PackageInfo, n: u32, data: &[u8]) -> Result<()> {
    let Some(integrity) = &info.integrity else {
        return if n >= 1 && n <= info.fragment_count {
            Ok(())
        } else {
            Err(Error::FragmentOrder {
                expected: 1,
                got: n,
                count: info.fragment_count,
            })
        };
    };
    check_fragment(integrity, n, data)
}

fn check_fragment(integrity: &Integrity, n: u32, data: &[u8]) -> Result<()> {
    let plan: &FragmentPlan = integrity.plan();
    let fragment = plan.fragment(n).ok_or(Error::FragmentOrder {
        expected: 1,
        got: n,
        count: plan.count(),
    })?;
    if fragment.length != data.len() as u64 {
        return Err(Error::FragmentLength {
            fragment: fragment.number,
            expected: fragment.length,
            actual: data.len() as u64,
        });
    }
    let actual = Sha256Digest::from_bytes(Sha256::digest(data).into());
    match integrity.fragment_sha256(fragment.number) {
        Some(expected) if *expected == actual => Ok(()),
        Some(expected) => Err(Error::FragmentDigestMismatch {
            fragment: fragment.number,
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        }),
        None => Err(Error::FragmentOrder {
            expected: 1,
            got: n,
            count: plan.count(),
        }),
    }
}

/// Appends fragments 1…N to `sink` in order, each verified before it is written, and
/// checks the whole payload's MD5 (OCS) and SHA-256 (Tessera) at the end.
pub struct Assembler<W: Write> {
    sink: W,
    digest: Option<OcsDigest>,
    integrity: Option<Integrity>,
    count: u32,
    next: u32,
    md5: Md5Hasher,
    sha256: Sha256,
}

impl<W: Write> Assembler<W> {
    /// Starts reassembly of the package `info` describes.
    pub fn new(info: &PackageInfo, sink: W) -> Self {
        Self {
            sink,
            digest: info.digest.clone(),
            integrity: info.integrity.clone(),
            count: info.fragment_count,
            next: 1,
            md5: Md5Hasher::new(),
            sha256: Sha256::new(),
        }
    }

    /// The fragment expected next (1-based).
    pub fn next_fragment(&self) -> u32 {
        self.next
    }

    /// Verifies fragment `n` and appends it. A bad fragment is not written, so the caller
    /// can fetch it again and retry.
    pub fn append(&mut self, n: u32, data: &[u8]) -> Result<()> {
        if n != self.next || n > self.count {
            return Err(Error::FragmentOrder {
                expected: self.next,
                got: n,
                count: self.count,
            });
        }
        if let Some(integrity) = &self.integrity {
            check_fragment(integrity, n, data)?;
        }
        self.sink
            .write_all(data)
            .map_err(|e| Error::io("writing", "the reassembled payload", e))?;
        self.md5.update(data);
        self.sha256.update(data);
        self.next += 1;
        Ok(())
    }

    /// Checks that every fragment arrived and that the whole digests match; returns the sink.
    pub fn finish(mut self) -> Result<W> {
        let received = self.next - 1;
        if received != self.count {
            return Err(Error::Incomplete {
                received,
                count: self.count,
            });
        }
        self.sink
            .flush()
            .map_err(|e| Error::io("writing", "the reassembled payload", e))?;
        if let Some(digest) = &self.digest {
            digest.verify_md5(&self.md5.finalize())?;
        }
        if let Some(integrity) = &self.integrity {
            let actual = Sha256Digest::from_bytes(self.sha256.finalize().into());
            if actual != *integrity.sha256() {
                return Err(Error::PayloadDigestMismatch {
                    algorithm: "SHA-256",
                    expected: integrity.sha256().to_hex(),
                    actual: actual.to_hex(),
                });
            }
        }
        Ok(self.sink)
    }
}
