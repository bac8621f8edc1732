//! Entry points of the fuzz targets. Each is also run over random bytes by a property test,
//! so "never panics" is checked by `cargo test` as well.

use crate::identity::{CertificateDer, Identity, PrivateKeyDer};

/// Target `keystore_security_output`: what `security find-identity` / `find-certificate`
/// print, parsed as the `MacKeystore` parses it.
pub fn security_output(data: &[u8]) {
    crate::mac::fuzz_security_output(data);
}

/// Target `keystore_identity_material`: bytes read back from the file store. The input is
/// split at the first two NUL bytes into leaf PEM, chain PEM and key PEM; the whole input is
/// also tried as certificate DER, PKCS#8 DER and a PEM bundle.
pub fn identity_material(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0);
    let leaf = parts.next().unwrap_or_default();
    let chain = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default();
    let _ = Identity::from_pem(leaf, chain, key);
    let _ = CertificateDer::from_der(data.to_vec());
    let _ = PrivateKeyDer::from_pkcs8_der(data.to_vec());
    let _ = CertificateDer::all_from_pem(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::device_identity;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn identity_material_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            identity_material(&data);
        }

        #[test]
        fn security_output_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            security_output(&data);
        }

        /// Corrupting one byte of a real identity never panics, and whatever still loads keeps
        /// the original private key (a flip in the certificate's signature or dates may load:
        /// the keystore pairs keys with certificates, chain validation is tessera-certpolicy's).
        #[test]
        fn flipped_byte_in_real_identity_never_panics(index in 0usize..4096, flip in 1u8..=255) {
            let id = IDENTITY.with(Clone::clone);
            let mut data = id.leaf().to_pem().into_bytes();
            data.push(0);
            data.extend_from_slice(id.chain()[0].to_pem().as_bytes());
            data.push(0);
            data.extend_from_slice(id.private_key().to_pem().as_bytes());
            let i = index % data.len();
            data[i] ^= flip;
            identity_material(&data);
            let mut parts = data.splitn(3, |b| *b == 0);
            if let (Some(l), Some(c), Some(k)) = (parts.next(), parts.next(), parts.next())
                && let Ok(parsed) = Identity::from_pem(l, c, k)
            {
                prop_assert_eq!(parsed.leaf().public_key_bits(), id.leaf().public_key_bits());
                prop_assert_eq!(parsed.private_key().as_der(), id.private_key().as_der());
            }
        }
    }

    thread_local! {
        static IDENTITY: Identity = device_identity();
    }
}
