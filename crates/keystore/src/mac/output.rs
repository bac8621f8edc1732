//! Parsers for what `/usr/bin/security` prints. They accept any bytes without panicking
//! (fuzz target `keystore_security_output`).

use crate::identity::{CertificateDer, Sha1Fingerprint};

/// One line of `security find-identity`: `  1) <40 hex> "label"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedIdentity {
    /// SHA-1 of the identity's certificate.
    pub sha1: Sha1Fingerprint,
    /// The label in quotes (usually the certificate's common name).
    pub label: String,
}

/// Parses `security find-identity [-v] -p ssl-client <keychain>` output. Lines that are not
/// identity lines (headers, counts) are skipped; duplicates (the same identity listed under
/// "Matching" and "Valid") are kept once.
pub fn parse_find_identity_output(text: &str) -> Vec<ListedIdentity> {
    let mut found: Vec<ListedIdentity> = Vec::new();
    for line in text.lines() {
        let Some(listed) = parse_identity_line(line) else {
            continue;
        };
        if !found.iter().any(|f| f.sha1 == listed.sha1) {
            found.push(listed);
        }
    }
    found
}

fn parse_identity_line(line: &str) -> Option<ListedIdentity> {
    let line = line.trim();
    let (index, rest) = line.split_once(") ")?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let hash = rest.get(..40)?;
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let sha1 = Sha1Fingerprint::from_hex(hash)?;
    let label = rest[40..].trim();
    let label = label
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(label);
    Some(ListedIdentity {
        sha1,
        label: label.to_owned(),
    })
}

/// Parses `security find-certificate -a -Z -p <keychain>` output: every PEM certificate, in
/// order. The printed hash lines are ignored; callers compute hashes from the DER themselves.
/// Blocks that do not parse (an exotic certificate someone else put in the System keychain,
/// a truncated last block) are skipped rather than failing the whole listing: one unreadable
/// foreign certificate must not make the device identity unreadable.
pub fn parse_find_certificate_output(text: &str) -> Vec<CertificateDer> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let Some(end) = after.find(END) else {
            break;
        };
        let block = &after[..end + END.len()];
        if let Ok(cert) = CertificateDer::from_pem(block.as_bytes()) {
            certs.push(cert);
        }
        rest = &after[end + END.len()..];
    }
    certs
}

/// Runs both parsers over arbitrary bytes; the fuzz target and the property test call this.
pub fn fuzz_security_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_find_identity_output(&text);
    let _ = parse_find_certificate_output(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::device_identity;
    use proptest::prelude::*;

    const FIND_IDENTITY: &str = "Policy: SSL (client)
  Matching identities
  1) 0123456789ABCDEF0123456789ABCDEF01234567 \"MAC01.local\"
  2) 89ABCDEF0123456789ABCDEF0123456789ABCDEF \"Other (expired)\"
     2 identities found

  Valid identities only
  1) 0123456789ABCDEF0123456789ABCDEF01234567 \"MAC01.local\"
     1 valid identities found
";

    #[test]
    fn find_identity_lists_each_hash_once_with_label() {
        let listed = parse_find_identity_output(FIND_IDENTITY);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].label, "MAC01.local");
        assert_eq!(
            listed[0].sha1.to_string(),
            "0123456789ABCDEF0123456789ABCDEF01234567"
        );
        assert_eq!(listed[1].label, "Other (expired)");
    }

    #[test]
    fn find_identity_ignores_malformed_lines() {
        for text in [
            "1) tooshort \"x\"",
            "a) 0123456789ABCDEF0123456789ABCDEF01234567",
            "0 valid identities found",
            ") 0123",
        ] {
            assert!(parse_find_identity_output(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn find_certificate_reads_pem_blocks_between_hash_lines() {
        let id = device_identity();
        let text = format!(
            "SHA-256 hash: {}\nSHA-1 hash: {}\n{}SHA-256 hash: x\nSHA-1 hash: y\n{}",
            id.leaf().sha256(),
            id.leaf().sha1(),
            id.leaf().to_pem(),
            id.chain()[0].to_pem()
        );
        let certs = parse_find_certificate_output(&text);
        assert_eq!(certs, vec![id.leaf().clone(), id.chain()[0].clone()]);
    }

    #[test]
    fn find_certificate_skips_garbage_and_truncated_blocks_but_keeps_good_ones() {
        let id = device_identity();
        let good = id.leaf().to_pem();
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let text = format!("{garbage}{good}{}", &good[..good.len() / 2]);
        assert_eq!(
            parse_find_certificate_output(&text),
            vec![id.leaf().clone()]
        );
        assert!(parse_find_certificate_output("no certificates").is_empty());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_security_output(&data);
        }

        #[test]
        fn parsers_never_panic_on_near_valid_text(
            prefix in "[0-9 )A-F\"a-z\n-]{0,80}",
            cut in 0usize..200,
        ) {
            let text = format!("{prefix}1) 0123456789ABCDEF0123456789ABCDEF01234567 \"x\"\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
            let cut = cut.min(text.len());
            fuzz_security_output(&text.as_bytes()[..cut]);
        }
    }
}
