//! A package built by Tessera: an `info` that carries every Tessera field.

use serde::Serialize;

use crate::digest::{DigestAlgorithm, DigestEncoding, Md5Digest, OcsDigest};
use crate::error::{Error, Result};
use crate::info::{Integrity, PackageInfo};
use crate::model::{Action, Label, Notification, PackageId, Priority, Protocol};

/// What an administrator decides about a package before its payload is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageSpec {
    /// Name and version.
    pub label: Label,
    /// Priority 0–10.
    pub priority: Priority,
    /// What the agent does.
    pub action: Action,
    /// Fragment protocol.
    pub protocol: Protocol,
    /// Notification fields.
    pub notification: Notification,
}

/// A Tessera package: ID, name, version, priority, action, notification, payload size,
/// fragment plan and digests. Only exists with all of them present and consistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    id: PackageId,
    label: Label,
    priority: Priority,
    action: Action,
    protocol: Protocol,
    notification: Notification,
    md5: Md5Digest,
    integrity: Integrity,
}

impl Package {
    /// Assembles a package from what the administrator asked for and what the payload
    /// digests to (the builder's last step).
    pub fn new(id: PackageId, spec: PackageSpec, md5: Md5Digest, integrity: Integrity) -> Self {
        Self {
            id,
            label: spec.label,
            priority: spec.priority,
            action: spec.action,
            protocol: spec.protocol,
            notification: spec.notification,
            md5,
            integrity,
        }
    }

    /// The numeric ID.
    pub fn id(&self) -> PackageId {
        self.id
    }

    /// The same package under another ID (when the first choice was taken).
    pub(crate) fn with_id(mut self, id: PackageId) -> Self {
        self.id = id;
        self
    }

    /// Name and version.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// Priority 0–10.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// What the agent does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// Fragment protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Notification fields.
    pub fn notification(&self) -> &Notification {
        &self.notification
    }

    /// Fragment plan and SHA-256 digests.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// MD5 of the whole payload.
    pub fn md5(&self) -> Md5Digest {
        self.md5
    }

    /// Payload size in bytes.
    pub fn payload_size(&self) -> u64 {
        self.integrity.plan().payload_size()
    }

    /// The `info` description.
    pub fn info(&self) -> PackageInfo {
        PackageInfo {
            id: self.id,
            priority: self.priority,
            action: self.action.clone(),
            protocol: self.protocol,
            fragment_count: self.integrity.plan().count(),
            digest: Some(OcsDigest::md5_hexa(self.md5)),
            notification: self.notification.clone(),
            label: Some(self.label.clone()),
            integrity: Some(self.integrity.clone()),
        }
    }

    /// The `info` file's bytes.
    pub fn to_info_xml(&self) -> String {
        self.info().to_xml()
    }
}

impl TryFrom<PackageInfo> for Package {
    type Error = Error;

    /// Requires what Tessera writes: name and version, integrity data, and an MD5/Hexa
    /// digest; an `info` from the OCS console lacks the first two.
    fn try_from(info: PackageInfo) -> Result<Self> {
        let label = info.label.ok_or_else(|| {
            Error::invalid(
                "TESSERA_NAME",
                "missing: this info was not written by Tessera",
            )
        })?;
        let integrity = info.integrity.ok_or_else(|| {
            Error::invalid(
                "TESSERA_SHA256",
                "missing: this info was not written by Tessera",
            )
        })?;
        let md5 = match &info.digest {
            Some(OcsDigest {
                algorithm: DigestAlgorithm::Md5,
                encoding: DigestEncoding::Hexa,
                value,
            }) => value.parse()?,
            _ => {
                return Err(Error::invalid(
                    "DIGEST",
                    "Tessera packages carry an MD5/Hexa digest",
                ));
            }
        };
        Ok(Self {
            id: info.id,
            label,
            priority: info.priority,
            action: info.action,
            protocol: info.protocol,
            notification: info.notification,
            md5,
            integrity,
        })
    }
}
