//! Digests of payloads and fragments: MD5 for OCS agents, SHA-256 for Tessera.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! digest_type {
    ($name:ident, $len:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " digest; shown and written as lowercase hex.")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps raw digest bytes.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex, as OCS compares it (case-sensitively).
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                let mut bytes = [0u8; $len];
                hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| {
                    Error::invalid($what, format!("{s:?} is not {} hex digits", $len * 2))
                })?;
                Ok(Self(bytes))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(Md5Digest, 16, "MD5");
digest_type!(Sha256Digest, 32, "SHA-256");

/// `DIGEST_ALGO` as OCS writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    /// `MD5`, the only algorithm every OCS agent checks.
    Md5,
    /// `SHA1`, written by the legacy console; the Debian agent cannot check it.
    Sha1,
}

/// `DIGEST_ENCODE` as OCS writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestEncoding {
    /// `Hexa`: lowercase hex.
    Hexa,
    /// `Base64` (padded by the PHP console, unpadded by the Perl agent).
    Base64,
}

/// The digest fields of an OCS `info` file, as read (both console variants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcsDigest {
    /// `DIGEST_ALGO`.
    pub algorithm: DigestAlgorithm,
    /// `DIGEST_ENCODE`.
    pub encoding: DigestEncoding,
    /// `DIGEST`, exactly as written.
    pub value: String,
}

impl OcsDigest {
    /// What Tessera writes: MD5, lowercase hex.
    pub fn md5_hexa(md5: Md5Digest) -> Self {
        Self {
            algorithm: DigestAlgorithm::Md5,
            encoding: DigestEncoding::Hexa,
            value: md5.to_hex(),
        }
    }

    /// Parses `DIGEST_ALGO` and `DIGEST_ENCODE` the way the Unix agent matches them:
    /// the algorithm exactly (`MD5`, `SHA1`), the encoding case-insensitively by substring.
    pub fn from_fields(algorithm: &str, encoding: &str, value: &str) -> Result<Self> {
        let algorithm = match algorithm {
            "MD5" => DigestAlgorithm::Md5,
            "SHA1" => DigestAlgorithm::Sha1,
            other => {
                return Err(Error::invalid(
                    "DIGEST_ALGO",
                    format!("{other:?} is neither MD5 nor SHA1"),
                ));
            }
        };
        let lower = encoding.to_ascii_lowercase();
        let encoding = if lower.contains("base64") {
            DigestEncoding::Base64
        } else if lower.contains("hexa") {
            DigestEncoding::Hexa
        } else {
            return Err(Error::invalid(
                "DIGEST_ENCODE",
                format!("{encoding:?} is neither Hexa nor Base64"),
            ));
        };
        Ok(Self {
            algorithm,
            encoding,
            value: value.trim().to_owned(),
        })
    }

    /// The `DIGEST_ALGO` keyword.
    pub fn algorithm_keyword(&self) -> &'static str {
        match self.algorithm {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha1 => "SHA1",
        }
    }

    /// The `DIGEST_ENCODE` keyword.
    pub fn encoding_keyword(&self) -> &'static str {
        match self.encoding {
            DigestEncoding::Hexa => "Hexa",
            DigestEncoding::Base64 => "Base64",
        }
    }

    /// Checks an MD5 computed over the reassembled payload against this digest. Hex is
    /// compared case-insensitively, Base64 with or without padding.
    pub fn verify_md5(&self, actual: &Md5Digest) -> Result<()> {
        use base64::Engine as _;
        if self.algorithm != DigestAlgorithm::Md5 {
            return Err(Error::UnsupportedDigest {
                algorithm: self.algorithm_keyword().into(),
                encoding: self.encoding_keyword().into(),
            });
        }
        let (matches, shown) = match self.encoding {
            DigestEncoding::Hexa => {
                let hex = actual.to_hex();
                (self.value.eq_ignore_ascii_case(&hex), hex)
            }
            DigestEncoding::Base64 => {
                let b64 =
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(actual.as_bytes());
                (self.value.trim_end_matches('=') == b64, b64)
            }
        };
        if matches {
            Ok(())
        } else {
            Err(Error::PayloadDigestMismatch {
                algorithm: "MD5",
                expected: self.value.clone(),
                actual: shown,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Md5Hasher;

    fn md5_of(data: &[u8]) -> Md5Digest {
        Md5Hasher::digest(data)
    }

    #[test]
    fn hex_round_trip_and_lowercase() {
        let d = md5_of(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(d.to_hex(), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            "9E107D9D372BB6826BD81D3542A419D6"
                .parse::<Md5Digest>()
                .unwrap(),
            d
        );
        assert!("9e107d".parse::<Md5Digest>().is_err());
    }

    #[test]
    fn both_console_variants_verify() {
        let d = md5_of(b"The quick brown fox jumps over the lazy dog");
        OcsDigest::md5_hexa(d).verify_md5(&d).unwrap();
        // PHP base64_encode pads; the Perl agent does not: both accepted.
        OcsDigest::from_fields("MD5", "Base64", "nhB9nTcrtoJr2B01QqQZ1g==")
            .unwrap()
            .verify_md5(&d)
            .unwrap();
        OcsDigest::from_fields("MD5", "base64", "nhB9nTcrtoJr2B01QqQZ1g")
            .unwrap()
            .verify_md5(&d)
            .unwrap();
        let other = md5_of(b"x");
        assert_eq!(
            OcsDigest::md5_hexa(d)
                .verify_md5(&other)
                .unwrap_err()
                .ocs_code(),
            Some("ERR_BAD_DIGEST")
        );
        let sha1 = OcsDigest::from_fields("SHA1", "Hexa", "00").unwrap();
        assert!(matches!(
            sha1.verify_md5(&d),
            Err(Error::UnsupportedDigest { .. })
        ));
        assert!(
            OcsDigest::from_fields("md5", "Hexa", "").is_err(),
            "the agent compares ALGO exactly"
        );
        assert!(OcsDigest::from_fields("MD5", "octal", "").is_err());
    }
}
