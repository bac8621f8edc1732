//! The computer name a device certificate is issued to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CaError;

/// A computer name that can be the CN and the SAN dNSName of a device certificate: a DNS
/// host name (dot-separated labels of ASCII letters, digits and inner hyphens, each 1–63
/// bytes, 253 bytes in all). Case is kept: the device policy compares names byte for byte.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComputerName(String);

impl ComputerName {
    /// Checks `name` and wraps it.
    pub fn new(name: &str) -> Result<Self, CaError> {
        let invalid = |reason| CaError::InvalidComputerName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > 253 {
            return Err(invalid("it is longer than 253 bytes"));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(invalid(
                    "it has an empty label (leading, trailing or double dot)",
                ));
            }
            if label.len() > 63 {
                return Err(invalid("a label is longer than 63 bytes"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid(
                    "only ASCII letters, digits, hyphens and dots are allowed",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label starts or ends with a hyphen"));
            }
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComputerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ComputerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComputerName({:?})", self.0)
    }
}

impl TryFrom<String> for ComputerName {
    type Error = CaError;
    fn try_from(name: String) -> Result<Self, CaError> {
        Self::new(&name)
    }
}

impl From<ComputerName> for String {
    fn from(name: ComputerName) -> String {
        name.0
    }
}

impl std::str::FromStr for ComputerName {
    type Err = CaError;
    fn from_str(name: &str) -> Result<Self, CaError> {
        Self::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_accepted_with_their_case() {
        for good in [
            "MAC01.local",
            "mac01",
            "a",
            "web-01.corp.example",
            "1e100.net",
            &"a".repeat(63),
        ] {
            assert_eq!(ComputerName::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn non_host_names_are_refused_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("a.", "empty label"),
            ("-a", "hyphen"),
            ("a-", "hyphen"),
            ("a b", "only ASCII"),
            ("a_b", "only ASCII"),
            ("*.example", "only ASCII"),
            ("mäc", "only ASCII"),
            ("a/../b", "only ASCII"),
        ];
        for (bad, why) in cases {
            let err = ComputerName::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(ComputerName::new(&"a".repeat(64)).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(ComputerName::new(&long).is_err());
    }
}
