//! The entry point shared by the `certpolicy_evaluate` fuzz target and the crate's
//! "never panics on arbitrary bytes" property test.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};

use crate::load;
use crate::policy::{Evidence, Policy};
use crate::report::Report;

/// Splits `data` into length-prefixed pieces (a big-endian `u16` length, then that many
/// bytes; the last piece takes what is left): leaf, intermediate, trust anchor, CRL,
/// private key, computer name. Every piece also goes through the PEM/DER loaders. The
/// evaluation runs at a fixed time so a crash reproduces.
pub fn evaluate_arbitrary_bytes(data: &[u8]) -> Report {
    let mut pieces = Vec::with_capacity(6);
    let mut rest = data;
    while pieces.len() < 5 {
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let take = len.min(tail.len());
        pieces.push(&tail[..take]);
        rest = &tail[take..];
    }
    pieces.push(rest);

    for piece in &pieces {
        let _ = load::certificates_from_bytes(piece, "fuzz");
        let _ = load::crls_from_bytes(piece, "fuzz");
        let _ = load::private_key_from_bytes(piece, "fuzz");
    }
    let leaf = CertificateDer::from(pieces[0]);
    let intermediates = [CertificateDer::from(pieces[1])];
    let anchors = [CertificateDer::from(pieces[2])];
    let crls = [CertificateRevocationListDer::from(pieces[3])];
    let key = PrivateKeyDer::try_from(pieces[4]).ok();
    let name = String::from_utf8_lossy(pieces[5]);
    Policy::default().evaluate_evidence(&Evidence {
        leaf: &leaf,
        intermediates: &intermediates,
        trust_anchors: &anchors,
        crls: &crls,
        private_key: key.as_ref(),
        computer_name: &name,
        now: UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let report = evaluate_arbitrary_bytes(&data);
            // Garbage is never an acceptable device certificate.
            prop_assert!(!report.passed());
        }
    }

    fn piece(bytes: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random bytes rarely get past the outer SEQUENCE; flipping bytes of a real
        /// certificate reaches the extension, name and key parsers.
        #[test]
        fn never_panics_on_a_mutated_certificate(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            as_anchor_too in any::<bool>(),
        ) {
            let mut der = crate::rules::testcert::TestCert::device().der();
            for (index, byte) in flips {
                let i = index.index(der.len());
                der[i] ^= byte | 1;
            }
            let mut data = piece(&der);
            data.extend(piece(&[]));
            data.extend(piece(if as_anchor_too { &der } else { &[] }));
            data.extend(piece(&[]));
            data.extend(piece(&[]));
            data.extend_from_slice(b"MAC01.local");
            let report = evaluate_arbitrary_bytes(&data);
            prop_assert!(!report.passed());
        }
    }

    #[test]
    fn empty_input_fails_structure() {
        let report = evaluate_arbitrary_bytes(&[]);
        assert!(report.failed_rules().contains(&crate::RuleId::Structure));
    }
}
