//! Certificate serial numbers: positive, at most 20 octets (RFC 5280 §4.1.2.2), and random
//! (16 bytes from an injected generator) so that no two certificates share one.

use std::fmt;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::CaError;

/// The number of random bytes in a serial this CA issues.
pub const SERIAL_BYTES: usize = 16;

/// A certificate serial number: a positive integer of at most 20 octets, kept in its
/// minimal big-endian form (no leading zero bytes), so that the same serial always has the
/// same bytes and the same hex text, whether it came from the CA, a certificate or a user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A serial from big-endian unsigned bytes. Leading zeros are dropped; zero itself and
    /// values longer than 20 octets are refused.
    pub fn from_unsigned_bytes(bytes: &[u8]) -> Result<Self, CaError> {
        let first = bytes.iter().position(|&b| b != 0);
        let Some(first) = first else {
            return Err(CaError::InvalidSerial {
                given: hex(bytes),
                reason: "a serial must be positive, not zero",
            });
        };
        let minimal = &bytes[first..];
        // The DER integer gets a leading 0x00 when the top bit is set; 20 octets in all.
        let der_len = minimal.len() + usize::from(minimal[0] & 0x80 != 0);
        if der_len > 20 {
            return Err(CaError::InvalidSerial {
                given: hex(bytes),
                reason: "a serial must fit in 20 octets (RFC 5280)",
            });
        }
        Ok(Self(minimal.to_vec()))
    }

    /// Parses hex, with or without `:` separators and a `0x` prefix, in either case.
    pub fn from_hex(text: &str) -> Result<Self, CaError> {
        let invalid = |reason| CaError::InvalidSerial {
            given: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let digits: String = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed)
            .chars()
            .filter(|&c| c != ':')
            .collect();
        if digits.is_empty() {
            return Err(invalid("it is empty"));
        }
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                "it contains characters other than hex digits and ':'",
            ));
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes: Vec<u8> = padded
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let high = hex_value(pair[0]);
                let low = hex_value(pair[1]);
                (high << 4) | low
            })
            .collect();
        Self::from_unsigned_bytes(&bytes)
            .map_err(|_| invalid("it must be positive and at most 20 octets"))
    }

    /// The minimal big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex without separators: the ledger key.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The serial as rcgen writes it.
    pub(crate) fn to_rcgen(&self) -> rcgen::SerialNumber {
        rcgen::SerialNumber::from_slice(&self.0)
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl TryFrom<String> for Serial {
    type Error = CaError;
    fn try_from(text: String) -> Result<Self, CaError> {
        Self::from_hex(&text)
    }
}

impl From<Serial> for String {
    fn from(serial: Serial) -> String {
        serial.to_hex()
    }
}

impl std::str::FromStr for Serial {
    type Err = CaError;
    fn from_str(text: &str) -> Result<Self, CaError> {
        Self::from_hex(text)
    }
}

/// Where new serials come from.
pub trait SerialSource: Send + Sync {
    /// A fresh serial.
    fn next_serial(&self) -> Serial;
}

/// 16 random bytes with the top bit cleared (positive), from any random generator: the
/// operating system's in production, a seeded one in tests.
pub struct RandomSerials<R> {
    rng: Mutex<R>,
}

impl RandomSerials<StdRng> {
    /// Serials from a generator seeded by the operating system.
    pub fn from_os() -> Self {
        Self::new(StdRng::from_os_rng())
    }

    /// Serials from a generator seeded with `seed`: the same sequence every run.
    pub fn seeded(seed: u64) -> Self {
        Self::new(StdRng::seed_from_u64(seed))
    }
}

impl<R: RngCore + Send> RandomSerials<R> {
    /// Serials drawn from `rng`.
    pub fn new(rng: R) -> Self {
        Self {
            rng: Mutex::new(rng),
        }
    }
}

impl<R> fmt::Debug for RandomSerials<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomSerials")
    }
}

impl<R: RngCore + Send> SerialSource for RandomSerials<R> {
    fn next_serial(&self) -> Serial {
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let mut bytes = [0u8; SERIAL_BYTES];
            rng.fill_bytes(&mut bytes);
            bytes[0] &= 0x7f;
            // All-zero has probability 2^-127; drawing again keeps the type total.
            if let Ok(serial) = Serial::from_unsigned_bytes(&bytes) {
                return serial;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_sixteen_bytes_at_most_and_distinct() {
        let source = RandomSerials::seeded(7);
        let serials: Vec<Serial> = (0..200).map(|_| source.next_serial()).collect();
        for s in &serials {
            assert!(s.as_bytes().len() <= SERIAL_BYTES);
            assert!(s.as_bytes()[0] != 0, "minimal form");
        }
        assert!(
            serials.iter().all(|s| s.as_bytes().len() >= 14),
            "random, not small"
        );
        let mut sorted = serials.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), serials.len());
        // The top bit of a full-length serial is clear, so the DER integer stays 16 octets.
        assert!(
            serials
                .iter()
                .filter(|s| s.as_bytes().len() == 16)
                .all(|s| s.as_bytes()[0] < 0x80)
        );
    }

    #[test]
    fn seeded_sources_repeat() {
        assert_eq!(
            RandomSerials::seeded(1).next_serial(),
            RandomSerials::seeded(1).next_serial()
        );
        assert_ne!(
            RandomSerials::seeded(1).next_serial(),
            RandomSerials::seeded(2).next_serial()
        );
    }

    #[test]
    fn hex_forms_normalise_to_one_serial() {
        let a = Serial::from_hex("00:1A:2b:3c").unwrap();
        let b = Serial::from_hex("0x1a2b3c").unwrap();
        let c = Serial::from_hex("1a2b3c").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_hex(), "1a2b3c");
        assert_eq!(Serial::from_hex("abc").unwrap().as_bytes(), &[0x0a, 0xbc]);
    }

    #[test]
    fn bad_serials_are_refused() {
        for bad in [
            "",
            "0",
            "00:00",
            "xyz",
            "12 34",
            &"ff".repeat(20),
            &"7f".repeat(21),
        ] {
            assert!(
                matches!(Serial::from_hex(bad), Err(CaError::InvalidSerial { .. })),
                "{bad:?}"
            );
        }
        // 20 octets with the top bit clear fit; with it set the DER integer needs 21.
        assert!(Serial::from_hex(&"7f".repeat(20)).is_ok());
    }

    #[test]
    fn serde_uses_hex() {
        let s = Serial::from_hex("0a0b").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"0a0b\"");
        assert_eq!(serde_json::from_str::<Serial>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Serial>("\"zz\"").is_err());
    }
}
