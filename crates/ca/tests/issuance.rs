//! Issuance, renewal, revocation and CRLs through the public API, checked by parsing what
//! the CA wrote with x509-parser.

mod common;

use std::sync::Arc;

use common::{NOW, der_of, ec_csr, fixture};
use tessera_ca::{
    BACKDATE, Ca, CaError, CaHome, CaServices, ComputerName, DeviceCsr, KeyAlgorithm, Ledger,
    ManualClock, RandomSerials, RevocationReason, Serial, SerialSource,
};
use time::Duration;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

fn name(text: &str) -> ComputerName {
    ComputerName::new(text).unwrap()
}

#[test]
fn issued_certificates_follow_the_device_profile() {
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 1);
    let csr = ec_csr("MAC01.local", &["MAC01.local"]);
    let issued = f.ca.issue_from_csr(&csr, &name("MAC01.local")).unwrap();
    let der = der_of(&issued.certificate_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();

    // Names.
    let cns: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cns, ["MAC01.local"]);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        [GeneralName::DNSName("MAC01.local")]
    );
    // Usages.
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty());
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature() && ku.value.key_encipherment());
    assert!(!ku.value.key_cert_sign());
    assert!(!cert.is_ca());
    // CRL distribution point: one http URI, the configured one.
    let cdp = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(dps) => Some(dps),
            _ => None,
        })
        .unwrap();
    let uris: Vec<&str> = cdp
        .points
        .iter()
        .flat_map(|dp| match &dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => names.clone(),
            _ => vec![],
        })
        .filter_map(|n| {
            if let GeneralName::URI(u) = n {
                Some(u)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(uris, ["http://tessera.test:8080/crl/device-ca.crl"]);
    // Key identifiers: AKI = the issuing CA's SKI.
    let chain = f.ca.chain_der();
    let (_, issuing) = X509Certificate::from_der(&chain[0]).unwrap();
    let ski = |c: &X509Certificate<'_>| {
        c.iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
    };
    let aki = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(Some(aki), ski(&issuing));
    assert!(ski(&cert).is_some());
    // Serial: positive, at most 16 bytes, the ledger's.
    assert_eq!(
        Serial::from_unsigned_bytes(cert.raw_serial()).unwrap(),
        issued.serial
    );
    assert!(cert.raw_serial().len() <= 16);
    // Validity: backdated 5 minutes, 365 days.
    assert_eq!(cert.validity().not_before.to_datetime(), NOW - BACKDATE);
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        NOW + Duration::days(365)
    );
    // The public key is the CSR's.
    assert_eq!(cert.public_key().raw, csr.public_key_der());
    // Recorded.
    assert_eq!(f.ledger.find(&issued.serial).unwrap(), Some(issued));
}

#[test]
fn requested_ca_flag_and_usages_are_ignored() {
    let f = fixture(KeyAlgorithm::EcdsaP256, false, 2);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["MAC01.local".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "MAC01.local");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::CodeSigning,
        rcgen::ExtendedKeyUsagePurpose::Any,
    ];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let csr = DeviceCsr::parse(
        params
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let issued = f.ca.issue_from_csr(&csr, &name("MAC01.local")).unwrap();
    let der = der_of(&issued.certificate_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.code_signing && !eku.any);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(!ku.key_cert_sign() && !ku.crl_sign());
}

#[test]
fn a_csr_for_another_computer_is_refused_and_nothing_is_recorded() {
    let f = fixture(KeyAlgorithm::EcdsaP256, false, 3);
    let csr = ec_csr("MAC01.local", &["evil.example"]);
    let err = f.ca.issue_from_csr(&csr, &name("MAC01.local")).unwrap_err();
    assert!(matches!(err, CaError::CsrNameMismatch { .. }));
    assert!(err.to_string().contains("evil.example"), "{err}");
    // Case matters: the policy compares names byte for byte.
    let lower = ec_csr("mac01.local", &[]);
    assert!(f.ca.issue_from_csr(&lower, &name("MAC01.local")).is_err());
    assert!(f.ledger.all().unwrap().is_empty());
}

#[test]
fn renewal_gives_a_new_serial_and_keeps_the_old_certificate() {
    let f = fixture(KeyAlgorithm::EcdsaP256, false, 4);
    let first =
        f.ca.issue_from_csr(&ec_csr("MAC01.local", &[]), &name("MAC01.local"))
            .unwrap();
    f.clock.advance(Duration::days(300));
    let renewed =
        f.ca.renew(&first.serial, &ec_csr("MAC01.local", &[]))
            .unwrap();
    assert_ne!(renewed.serial, first.serial);
    assert_eq!(renewed.computer_name, first.computer_name);
    assert_eq!(
        renewed.not_before,
        common::NOW + Duration::days(300) - BACKDATE
    );
    assert_eq!(f.ledger.find(&first.serial).unwrap().unwrap().revoked, None);
    assert_eq!(f.ledger.all().unwrap().len(), 2);

    // A renewal CSR must still name the same computer.
    assert!(matches!(
        f.ca.renew(&first.serial, &ec_csr("MAC02.local", &[])),
        Err(CaError::CsrNameMismatch { .. })
    ));
    // Revoked or expired certificates are not renewed; unknown ones neither.
    f.ca.revoke(&first.serial, RevocationReason::Superseded)
        .unwrap();
    assert!(matches!(
        f.ca.renew(&first.serial, &ec_csr("MAC01.local", &[])),
        Err(CaError::NotRenewable { .. })
    ));
    f.clock.advance(Duration::days(400));
    assert!(matches!(
        f.ca.renew(&renewed.serial, &ec_csr("MAC01.local", &[])),
        Err(CaError::NotRenewable { .. })
    ));
    let unknown = Serial::from_hex("01").unwrap();
    assert!(matches!(
        f.ca.renew(&unknown, &ec_csr("MAC01.local", &[])),
        Err(CaError::UnknownSerial { .. })
    ));
}

/// A serial source that repeats itself, to show the ledger refuses a reused serial.
struct StuckSerials;
impl SerialSource for StuckSerials {
    fn next_serial(&self) -> Serial {
        Serial::from_hex("42").unwrap()
    }
}

#[test]
fn a_repeated_serial_is_refused() {
    let f = fixture(KeyAlgorithm::EcdsaP256, false, 5);
    let material = f.ca.material();
    let ca = Ca::open(
        &material,
        f.ca.settings().clone(),
        CaServices {
            clock: Arc::new(ManualClock::new(NOW)),
            serials: Arc::new(StuckSerials),
            ledger: f.ledger.clone(),
        },
    )
    .unwrap();
    ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    assert!(matches!(
        ca.issue_from_csr(&ec_csr("B", &[]), &name("B")),
        Err(CaError::SerialReused { .. })
    ));
}

#[test]
fn crls_list_revocations_with_increasing_numbers_and_are_resigned_on_schedule() {
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 6);
    let a = f.ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    let b = f.ca.issue_from_csr(&ec_csr("B", &[]), &name("B")).unwrap();

    let first = f.ca.sign_crls().unwrap();
    assert!(first.issuing.revoked_serials().is_empty());
    assert_eq!(first.issuing.this_update(), NOW);
    assert_eq!(first.issuing.next_update(), NOW + Duration::days(7));
    let root = first
        .root
        .as_ref()
        .expect("two-tier CAs publish a root CRL");
    assert!(root.number() > first.issuing.number());

    // Fresh CRLs are kept.
    f.clock.advance(Duration::hours(47));
    let (kept, resigned) = f.ca.current_crls(Some(first.clone())).unwrap();
    assert!(!resigned);
    assert_eq!(kept, first);

    // A revocation makes them due at once.
    f.ca.revoke(&b.serial, RevocationReason::KeyCompromise)
        .unwrap();
    let (second, resigned) = f.ca.current_crls(Some(first.clone())).unwrap();
    assert!(resigned);
    assert_eq!(
        second.issuing.revoked_serials(),
        std::slice::from_ref(&b.serial)
    );
    assert!(second.issuing.number() > root.number());
    assert!(matches!(
        f.ca.revoke(&b.serial, RevocationReason::KeyCompromise),
        Err(CaError::AlreadyRevoked { .. })
    ));

    // After 48 hours they are re-signed even without changes, well before nextUpdate.
    f.clock.advance(Duration::hours(48));
    assert!(f.ca.crls_due(Some(&second)).unwrap());
    let third = f.ca.sign_crls().unwrap();
    assert!(third.issuing.number() > second.root.as_ref().unwrap().number());
    assert_eq!(third.issuing.revoked_serials(), [b.serial]);
    assert!(!third.issuing.revoked_serials().contains(&a.serial));
    // A CRL from the future (clock set back) is not trusted to be current.
    f.clock.advance(Duration::days(-10));
    assert!(f.ca.crls_due(Some(&third)).unwrap());
}

#[test]
fn ca_material_round_trips_and_mismatched_keys_are_refused() {
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 7);
    let other = fixture(KeyAlgorithm::EcdsaP256, false, 8);
    let services = || CaServices {
        clock: Arc::new(ManualClock::new(NOW)),
        serials: Arc::new(RandomSerials::seeded(9)),
        ledger: Arc::new(tessera_ca::MemoryLedger::new()),
    };
    let material = f.ca.material();
    assert!(
        !format!("{material:?}").contains("PRIVATE KEY"),
        "keys stay out of Debug"
    );
    let reopened = Ca::open(&material, f.ca.settings().clone(), services()).unwrap();
    assert_eq!(reopened.chain_der(), f.ca.chain_der());

    let mut wrong_key = material.clone();
    wrong_key.issuing_key_pem = other.ca.material().issuing_key_pem;
    let err = Ca::open(&wrong_key, f.ca.settings().clone(), services()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");

    let mut broken_chain = material.clone();
    broken_chain.parents_pem = vec![other.ca.material().issuing_certificate_pem];
    broken_chain.root_key_pem = None;
    let err = Ca::open(&broken_chain, f.ca.settings().clone(), services()).unwrap_err();
    assert!(err.to_string().contains("not signed by"), "{err}");

    // A site's own issuing CA without its root key: issuing works, the root CRL is theirs.
    let mut site = material;
    site.root_key_pem = None;
    let site_ca = Ca::open(&site, f.ca.settings().clone(), services()).unwrap();
    site_ca
        .issue_from_csr(&ec_csr("A", &[]), &name("A"))
        .unwrap();
    assert!(site_ca.sign_crls().unwrap().root.is_none());

    // A device certificate is not a CA.
    let leaf = f.ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    let mut leaf_as_ca = f.ca.material();
    leaf_as_ca.issuing_certificate_pem = leaf.certificate_pem;
    assert!(Ca::open(&leaf_as_ca, f.ca.settings().clone(), services()).is_err());
}

#[test]
fn device_certificates_never_outlive_the_issuing_ca() {
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 10);
    // The intermediate lives 10 years; move to 9.9 years later.
    f.clock.advance(Duration::days(10 * 365 - 30));
    let issued = f.ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    let chain = f.ca.chain_der();
    let (_, int) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(issued.not_after, int.validity().not_after.to_datetime());
    // Once the issuing CA has expired, nothing more is issued.
    f.clock.advance(Duration::days(31));
    let err =
        f.ca.issue_from_csr(&ec_csr("A", &[]), &name("A"))
            .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn the_ca_home_stores_and_reopens_a_ca_with_private_modes() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 11);
    let data = tempfile::tempdir().unwrap();
    let home = CaHome::in_data_dir(data.path());
    let crls = f.ca.sign_crls().unwrap();
    home.create(&f.ca, &crls).unwrap();
    assert!(matches!(
        home.create(&f.ca, &crls),
        Err(CaError::CaExists { .. })
    ));

    let mode = |file: &str| {
        std::fs::metadata(home.dir().join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("."), 0o700);
    assert_eq!(mode("issuing.key"), 0o600);
    assert_eq!(mode("root.key"), 0o600);
    assert_eq!(mode("ledger.json"), 0o600);
    assert_eq!(mode("issuing.pem"), 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("ca")]);

    let clock = Arc::new(ManualClock::new(NOW + Duration::hours(1)));
    let ca = home
        .open(clock.clone(), Arc::new(RandomSerials::seeded(12)))
        .unwrap();
    assert_eq!(ca.chain_der(), f.ca.chain_der());
    assert_eq!(
        ca.chain_pem(),
        f.ca.chain_pem(),
        "PEM survives storage byte for byte"
    );
    assert!(!ca.chain_pem().contains('\r') && !crls.issuing.pem().contains('\r'));
    let issued = ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    ca.revoke(&issued.serial, RevocationReason::CessationOfOperation)
        .unwrap();
    let current = home.current_crls(&ca).unwrap();
    assert_eq!(current.issuing.revoked_serials(), [issued.serial]);
    assert!(
        current.issuing.number() > crls.root.as_ref().unwrap().number(),
        "CRL numbers continue"
    );
    assert_eq!(home.published_crls().unwrap(), Some(current.clone()));
    assert_eq!(
        home.current_crls(&ca).unwrap(),
        current,
        "fresh CRLs are served as stored"
    );
    // An older CRL (signed earlier by another process) never replaces a newer one.
    home.store_crls(&crls).unwrap();
    assert_eq!(home.published_crls().unwrap(), Some(current.clone()));

    // The server plugs its own ledger in; the file ledger is then left alone.
    let server_ledger = Arc::new(tessera_ca::MemoryLedger::new());
    let with_store = home
        .open_with_ledger(
            clock.clone(),
            Arc::new(RandomSerials::seeded(14)),
            server_ledger.clone(),
        )
        .unwrap();
    let before = home.ledger().all().unwrap().len();
    let other = with_store
        .issue_from_csr(&ec_csr("B", &[]), &name("B"))
        .unwrap();
    assert_eq!(server_ledger.all().unwrap(), vec![other]);
    assert_eq!(home.ledger().all().unwrap().len(), before);

    // A key file others can read is refused.
    std::fs::set_permissions(
        home.dir().join("issuing.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(matches!(
        home.open(clock, Arc::new(RandomSerials::seeded(13))),
        Err(CaError::InsecureKeyFile { .. })
    ));
}

#[test]
fn an_rsa_ca_issues_and_reloads() {
    // RSA-3072 (the default) root only: the one RSA CA key of this test binary.
    let f = fixture(KeyAlgorithm::default(), false, 14);
    let data = tempfile::tempdir().unwrap();
    let home = CaHome::in_data_dir(data.path());
    home.create(&f.ca, &f.ca.sign_crls().unwrap()).unwrap();
    let ca = home
        .open(
            Arc::new(ManualClock::new(NOW)),
            Arc::new(RandomSerials::seeded(15)),
        )
        .unwrap();
    let issued = ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    let der = der_of(&issued.certificate_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_PKCS1_SHA256WITHRSA
    );
    let (_, root) = X509Certificate::from_der(ca.root_der()).unwrap();
    let x509_parser::public_key::PublicKey::RSA(rsa) = root.public_key().parsed().unwrap() else {
        panic!("RSA root expected");
    };
    assert_eq!(rsa.key_size(), 3072);
}

#[test]
fn a_sites_own_issuing_ca_can_be_imported() {
    // The "site PKI": a two-tier CA whose root key stays with the site.
    let site = fixture(KeyAlgorithm::EcdsaP256, true, 16);
    let data = tempfile::tempdir().unwrap();
    // As the site hands it over: a chain file and a key file.
    let site_files = site.ca.material();
    let chain_file = data.path().join("site-chain.pem");
    let key_file = data.path().join("site.key");
    std::fs::write(&chain_file, site.ca.chain_pem()).unwrap();
    std::fs::write(&key_file, &site_files.issuing_key_pem).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            tessera_ca::CaMaterial::from_files(&chain_file, &key_file),
            Err(CaError::InsecureKeyFile { .. })
        ));
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let material = tessera_ca::CaMaterial::from_files(&chain_file, &key_file).unwrap();
    assert_eq!(material.parents_pem.len(), 1);
    assert!(material.root_key_pem.is_none());
    let home = CaHome::in_data_dir(data.path());
    let clock = Arc::new(ManualClock::new(NOW));
    let ca = home
        .import(
            &material,
            common::settings(),
            clock.clone(),
            Arc::new(RandomSerials::seeded(17)),
        )
        .unwrap();
    assert_eq!(ca.chain_der(), site.ca.chain_der());
    assert!(!home.dir().join("root.key").exists());
    let crls = home.published_crls().unwrap().unwrap();
    assert!(crls.root.is_none(), "the site publishes its root's CRL");
    assert!(crls.issuing.number() > u64::try_from(NOW.unix_timestamp()).unwrap());
    ca.issue_from_csr(&ec_csr("A", &[]), &name("A")).unwrap();
    assert!(matches!(
        home.import(
            &material,
            common::settings(),
            clock,
            Arc::new(RandomSerials::seeded(18))
        ),
        Err(CaError::CaExists { .. })
    ));
}
