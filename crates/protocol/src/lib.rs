//! Tessera's wire messages.
//!
//! - [`ocs`]: the OCS Inventory NG agent protocol — PROLOG, INVENTORY and DOWNLOAD results
//!   as agents POST them to `/ocsinventory`, and the replies they expect — compatible with
//!   unmodified agents (`shared/specs/ocs-protocol.md`).
//! - [`body`]: zlib bodies with the reference server's fallbacks, decompression capped.
//! - [`xml`]: the bounded XML reader behind them: no DTDs, no entities beyond the
//!   predefined ones, depth and size limits.
//! - [`agent`]: the agent's side of the OCS protocol: requests it writes, replies it reads.
//! - [`enroll`]: the JSON messages of Tessera's enrollment API.
//!
//! Nothing here does I/O: the server and agent move bytes, this crate gives them meaning.
//!
//! ```
//! use tessera_protocol::ocs::{Request, RequestLimits};
//! use tessera_protocol::body;
//!
//! let xml = br#"<REQUEST DEVICEID="mac01-2024-05-01-10-20-30" ERR="SUCCESS_3" ID="42" QUERY="DOWNLOAD" />"#;
//! let (request, _) = Request::from_body(&body::encode_zlib(xml), RequestLimits::default())?;
//! let Request::DownloadResult { result, package, .. } = request else { unreachable!() };
//! assert_eq!((package.0, result.to_string()), (42, "SUCCESS_3".to_owned()));
//! assert!(result.is_success());
//! # Ok::<(), tessera_protocol::Error>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod agent;
pub mod body;
pub mod enroll;
pub mod ocs;
pub mod xml;

pub use body::BodyEncoding;

/// Why a message was refused. Each variant says what was wrong and where, so that the
/// server can answer a clear 4xx and log it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The body is not in an encoding agents use, or does not decompress.
    #[error("unreadable message body: {0}")]
    Body(String),
    /// The XML is malformed.
    #[error("malformed XML at byte {position}: {reason}")]
    Xml {
        /// Byte offset in the decompressed XML.
        position: u64,
        /// What the parser found.
        reason: String,
    },
    /// The XML uses a construct Tessera never accepts (DTDs, entities).
    #[error("refused XML construct: {what} (DTDs and entities are never accepted)")]
    Forbidden {
        /// The construct.
        what: String,
    },
    /// A cap on size or structure was exceeded.
    #[error("message too large: more than {limit} {what}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// A required field is absent.
    #[error("missing field {0} (as an attribute or a child element)")]
    MissingField(&'static str),
    /// A field has a value that cannot be right.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The value (cut to a readable length).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The message is well-formed but not a message of this protocol.
    #[error("{0}")]
    Message(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The entry point the server feeds untrusted bodies to never panics.
        #[test]
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ocs::Request::from_body(&bytes, ocs::RequestLimits::default());
        }

        #[test]
        fn arbitrary_xml_never_panics(text in "[<>/=\"a-zA-Z0-9 &;#!?\\[\\]-]{0,200}") {
            let _ = ocs::Request::from_xml(text.as_bytes(), xml::XmlLimits::default());
        }
    }
}
