//! Facts about a device, the values conditions are evaluated against.
//!
//! Munki's built-in fact names are constants in [`names`]; admin-provided condition keys
//! (Munki's `ConditionalItems.plist`) are merged over them with [`Facts::merge_over`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use plist::Value;

/// Munki's built-in fact names (`info.py` `getMachineFacts`, `facts.swift`).
pub mod names {
    /// `uname` node name.
    pub const HOSTNAME: &str = "hostname";
    /// `arm64` or `x86_64`.
    pub const ARCH: &str = "arch";
    /// Whether an x86 machine can run 64-bit code.
    pub const X86_64_CAPABLE: &str = "x86_64_capable";
    /// OS version string, e.g. `14.5`.
    pub const OS_VERS: &str = "os_vers";
    /// Major OS version (integer).
    pub const OS_VERS_MAJOR: &str = "os_vers_major";
    /// Minor OS version (integer).
    pub const OS_VERS_MINOR: &str = "os_vers_minor";
    /// Patch OS version (integer).
    pub const OS_VERS_PATCH: &str = "os_vers_patch";
    /// OS build, e.g. `23F79`.
    pub const OS_BUILD_NUMBER: &str = "os_build_number";
    /// Last component of the build number.
    pub const OS_BUILD_LAST_COMPONENT: &str = "os_build_last_component";
    /// Model identifier, e.g. `Mac14,2`.
    pub const MACHINE_MODEL: &str = "machine_model";
    /// `laptop` or `desktop`.
    pub const MACHINE_TYPE: &str = "machine_type";
    /// The Munki (or agent) version.
    pub const MUNKI_VERSION: &str = "munki_version";
    /// Hardware serial number (`UNKNOWN` if unavailable).
    pub const SERIAL_NUMBER: &str = "serial_number";
    /// Marketing product name.
    pub const PRODUCT_NAME: &str = "product_name";
    /// T2/iBridge model name.
    pub const IBRIDGE_MODEL_NAME: &str = "ibridge_model_name";
    /// Board id.
    pub const BOARD_ID: &str = "board_id";
    /// Device id.
    pub const DEVICE_ID: &str = "device_id";
    /// IPv4 addresses (array of strings).
    pub const IPV4_ADDRESS: &str = "ipv4_address";
    /// IPv6 addresses (array of strings).
    pub const IPV6_ADDRESS: &str = "ipv6_address";
    /// Run start time (a date).
    pub const DATE: &str = "date";
    /// Installed applications: array of dicts with `bundleid`, `name`, `path`, `version`.
    pub const APPLICATIONS: &str = "applications";
    /// Effective catalogs of the manifest being processed (set by the resolver).
    pub const CATALOGS: &str = "catalogs";
}

/// A point in time, as seconds since the Unix epoch (NSDate has sub-second precision).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// Seconds between the Unix epoch and NSDate's reference date (2001-01-01T00:00:00Z).
    pub const APPLE_REFERENCE_OFFSET: f64 = 978_307_200.0;

    /// Parses `2016-03-02T00:00:00Z` (optional fraction and `±HH:MM` offset) or NSDate's
    /// `2016-03-02 00:00:00 +0000`, the forms `CAST(…, "NSDate")` accepts.
    pub fn parse(text: &str) -> Option<Self> {
        crate::predicate::parse_date_literal(text)
    }

    /// Converts a system time (times before 1970 become negative).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(after.as_secs_f64()),
            Err(before) => Self(-before.duration().as_secs_f64()),
        }
    }
}

/// One fact value: the types a plist (and NSPredicate) knows.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    /// A boolean (NSNumber in Foundation, so it compares equal to 0 and 1).
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// A string.
    String(String),
    /// A date.
    Date(Timestamp),
    /// An array.
    Array(Vec<FactValue>),
    /// A dictionary.
    Dict(BTreeMap<String, FactValue>),
}

impl FactValue {
    /// An array of strings.
    pub fn strings<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Array(items.into_iter().map(|s| Self::String(s.into())).collect())
    }

    /// Converts a plist value; data and UIDs, which no condition can use, become `None`.
    pub fn from_plist(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Boolean(b) => Self::Bool(*b),
            Value::Integer(i) => match i.as_signed() {
                Some(v) => Self::Integer(v),
                None => Self::Real(i.as_unsigned().map_or(0.0, |u| u as f64)),
            },
            Value::Real(r) => Self::Real(*r),
            Value::String(s) => Self::String(s.clone()),
            Value::Date(d) => Self::Date(Timestamp::from_system_time(SystemTime::from(*d))),
            Value::Array(items) => Self::Array(items.iter().filter_map(Self::from_plist).collect()),
            Value::Dictionary(dict) => Self::Dict(
                dict.iter()
                    .filter_map(|(k, v)| Self::from_plist(v).map(|v| (k.clone(), v)))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

impl From<&str> for FactValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}
impl From<String> for FactValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}
impl From<i64> for FactValue {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}
impl From<bool> for FactValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// The facts about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    values: BTreeMap<String, FactValue>,
}

impl Facts {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one fact, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<FactValue>) -> &mut Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Sets `os_vers` and derives `os_vers_major`, `_minor` and `_patch` from `os_vers + ".0.0"`,
    /// as Munki does.
    pub fn set_os_vers(&mut self, os_vers: &str) -> &mut Self {
        let padded = format!("{os_vers}.0.0");
        let mut parts = padded.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
        let (major, minor, patch) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        self.set(names::OS_VERS, os_vers)
            .set(names::OS_VERS_MAJOR, major)
            .set(names::OS_VERS_MINOR, minor)
            .set(names::OS_VERS_PATCH, patch)
    }

    /// Sets the `date` fact. Munki adds the local time-zone offset so that UTC literals compare
    /// as local time; pass the time already shifted if you want that behaviour.
    pub fn set_date(&mut self, at: Timestamp) -> &mut Self {
        self.set(names::DATE, FactValue::Date(at))
    }

    /// The value of one fact.
    pub fn get(&self, name: &str) -> Option<&FactValue> {
        self.values.get(name)
    }

    /// A string fact.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(FactValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Facts read from a plist dictionary (for example Munki's `ConditionalItems.plist`).
    pub fn from_plist_dictionary(dict: &plist::Dictionary) -> Self {
        Self {
            values: dict
                .iter()
                .filter_map(|(k, v)| FactValue::from_plist(v).map(|v| (k.clone(), v)))
                .collect(),
        }
    }

    /// Facts from plist bytes holding a dict (XML or binary), e.g. `ConditionalItems.plist`.
    pub fn from_plist_bytes(bytes: &[u8], what: &str) -> crate::Result<Self> {
        match crate::plist_io::read_value(bytes, what)? {
            Value::Dictionary(dict) => Ok(Self::from_plist_dictionary(&dict)),
            other => Err(crate::Error::WrongRoot {
                what: what.to_owned(),
                expected: "a dict",
                found: crate::plist_io::type_name(&other),
            }),
        }
    }

    /// Puts `overrides` over these facts: admin conditions override built-ins, as in Munki.
    pub fn merge_over(&mut self, overrides: &Facts) -> &mut Self {
        for (k, v) in &overrides.values {
            self.values.insert(k.clone(), v.clone());
        }
        self
    }

    /// All facts, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FactValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<K: Into<String>, V: Into<FactValue>> FromIterator<(K, V)> for Facts {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_parts_are_derived_like_munki() {
        let mut facts = Facts::new();
        facts.set_os_vers("14.5");
        assert_eq!(facts.get("os_vers_major"), Some(&FactValue::Integer(14)));
        assert_eq!(facts.get("os_vers_minor"), Some(&FactValue::Integer(5)));
        assert_eq!(facts.get("os_vers_patch"), Some(&FactValue::Integer(0)));
    }

    #[test]
    fn overrides_win() {
        let mut facts: Facts = [("machine_type", "laptop")].into_iter().collect();
        let admin: Facts = [("machine_type", "desktop")].into_iter().collect();
        facts.merge_over(&admin);
        assert_eq!(facts.get_str("machine_type"), Some("desktop"));
    }
}
