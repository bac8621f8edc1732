//! Entry points for fuzzing: untrusted bytes in, never a panic out. Also run over random
//! bytes by the crate's property tests, so "never panics" is checked in CI too.

use crate::{ComputerName, DeviceCsr};

/// Parses `data` as a CSR (PEM or DER), verifies it, and checks its names against a fixed
/// computer name; returns whether it would be accepted.
pub fn csr_from_arbitrary_bytes(data: &[u8]) -> bool {
    let Ok(csr) = DeviceCsr::parse(data) else {
        return false;
    };
    let _ = csr.public_key_der();
    ComputerName::new("MAC01.local").is_ok_and(|name| csr.check_names(&name).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = csr_from_arbitrary_bytes(&data);
        }

        #[test]
        fn random_pem_wrapped_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let text = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", data));
            prop_assert!(!csr_from_arbitrary_bytes(text.as_bytes()));
        }

        #[test]
        fn mutated_real_csrs_never_panic(index in 0usize..400, byte in any::<u8>()) {
            let mut der = fixture_csr_der().to_vec();
            let at = index % der.len();
            der[at] = byte;
            let _ = csr_from_arbitrary_bytes(&der);
        }
    }

    fn fixture_csr_der() -> &'static [u8] {
        static CSR: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        CSR.get_or_init(|| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["MAC01.local".to_owned()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "MAC01.local");
            params.serialize_request(&key).unwrap().der().to_vec()
        })
    }

    #[test]
    fn the_fixture_itself_is_accepted() {
        assert!(csr_from_arbitrary_bytes(fixture_csr_der()));
    }
}
