//! The keystore the configuration names, and the TLS settings built from what it holds.

use tessera_keystore::{FileKeystore, Keystore, PrivateKeyAccess};

use crate::config::{AgentConfig, KeystoreKind};
use crate::error::{AgentError, Result};
use crate::tls;

/// Opens the keystore the configuration names.
pub fn open_keystore(config: &AgentConfig) -> Result<Box<dyn Keystore>> {
    match config.keystore.kind {
        KeystoreKind::File => Ok(Box::new(FileKeystore::open(config.keystore_dir())?)),
        KeystoreKind::SystemKeychain => Err(AgentError::Trust(
            "keystore.kind = \"system-keychain\" keeps the private key in the keychain, where this build of the agent cannot use it for TLS; use keystore.kind = \"file\" (the default) for the agent's own identity"
                .to_owned(),
        )),
    }
}

/// TLS settings presenting the stored device identity and trusting the stored anchors.
pub fn device_tls(keystore: &dyn Keystore) -> Result<rustls::ClientConfig> {
    let identity = keystore.identity()?.ok_or(AgentError::NotEnrolled)?;
    let PrivateKeyAccess::Material(key) = &identity.private_key else {
        return Err(AgentError::Trust(
            "the device key is held by the keychain; the agent needs it in its file keystore"
                .to_owned(),
        ));
    };
    let anchors: Vec<Vec<u8>> = keystore
        .trust_anchors()?
        .iter()
        .map(|a| a.as_der().to_vec())
        .collect();
    let mut chain = vec![identity.leaf.as_der().to_vec()];
    chain.extend(identity.chain.iter().map(|c| c.as_der().to_vec()));
    tls::device(&anchors, chain, key.as_der())
}
