//! The package as OCS and Tessera describe it: ID, priority, action, notification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A package ID: the decimal FILEID, directory name and `ID` attribute of `info`.
///
/// OCS uses the Unix time of the build; the agent's scheduler ignores any directory whose
/// name is not all digits, so IDs are numbers and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct PackageId(u64);

impl TryFrom<u64> for PackageId {
    type Error = Error;
    fn try_from(value: u64) -> Result<Self> {
        Self::new(value)
    }
}

impl From<PackageId> for u64 {
    fn from(id: PackageId) -> u64 {
        id.0
    }
}

impl PackageId {
    /// Wraps a number. Zero is refused: OCS treats a `0`/empty ID as absent.
    pub fn new(value: u64) -> Result<Self> {
        if value == 0 {
            return Err(Error::invalid(
                "ID",
                "0 is not a package ID; use a positive number such as a Unix timestamp",
            ));
        }
        Ok(Self(value))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next ID, used when a timestamp is already taken by another package.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for PackageId {
    type Err = Error;

    /// Accepts only ASCII digits (no sign, no spaces): the same rule as the agent's
    /// `^\d+$` so that an ID that parses here is one the agent schedules.
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(
                "ID",
                format!("{s:?} is not a decimal package ID (digits only)"),
            ));
        }
        let value = s
            .parse::<u64>()
            .map_err(|_| Error::invalid("ID", format!("{s:?} is too large for a package ID")))?;
        Self::new(value)
    }
}

/// Download priority 0–10: `0` is absolute priority (starves every other package), then a
/// package with priority `p` advances on every `p`-th cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Priority(u8);

impl Priority {
    /// The highest value OCS accepts.
    pub const MAX: u8 = 10;

    /// Checks the range 0–10.
    pub fn new(value: u8) -> Result<Self> {
        if value > Self::MAX {
            return Err(Error::invalid(
                "PRI",
                format!("{value} is outside 0-10 (0 = absolute priority, 10 = lowest)"),
            ));
        }
        Ok(Self(value))
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Priority {
    /// 5, the console's default for script packages.
    fn default() -> Self {
        Self(5)
    }
}

impl TryFrom<u8> for Priority {
    type Error = Error;
    fn try_from(value: u8) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.0
    }
}

impl FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let value = s
            .trim()
            .parse::<u8>()
            .map_err(|_| Error::invalid("PRI", format!("{s:?} is not a number 0-10")))?;
        Self::new(value)
    }
}

/// What the agent does once the payload is verified and unpacked (`ACT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "act", rename_all = "lowercase")]
pub enum Action {
    /// `STORE`: copy the unpacked files to `path` (`INSTALL_PATH` = the agent's state dir).
    Store {
        /// Destination directory on the device.
        path: String,
    },
    /// `LAUNCH`: run the unpacked file `name`; the result is `SUCCESS_<exit code>`.
    Launch {
        /// The file to run, a single word without `-` (the agent cuts the name there).
        name: String,
    },
    /// `EXECUTE`: run `command` with `/bin/sh`; exit 0 is `SUCCESS`.
    Execute {
        /// The shell command.
        command: String,
    },
}

impl Action {
    /// `STORE` with a checked path.
    pub fn store(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        check_text("PATH", &path, false)?;
        Ok(Self::Store { path })
    }

    /// `LAUNCH` with a checked file name. The OCS agent runs `./` + the name cut at the first
    /// space or `-`, so such names would fail on the device with `ERR_EXECUTE`: refused here.
    pub fn launch(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_text("NAME", &name, false)?;
        if let Some(bad) = name
            .chars()
            .find(|c| *c == '-' || c.is_whitespace() || *c == '/')
        {
            return Err(Error::invalid(
                "NAME",
                format!(
                    "{name:?} contains {bad:?}; OCS agents cut the launched file name at spaces and '-' and run it from the unpacked directory, so rename the file (e.g. with '_') or use EXECUTE"
                ),
            ));
        }
        Ok(Self::Launch { name })
    }

    /// `EXECUTE` with a checked command.
    pub fn execute(command: impl Into<String>) -> Result<Self> {
        let command = command.into();
        check_text("COMMAND", &command, false)?;
        Ok(Self::Execute { command })
    }

    /// The `ACT` keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Store { .. } => "STORE",
            Self::Launch { .. } => "LAUNCH",
            Self::Execute { .. } => "EXECUTE",
        }
    }

    /// The attribute that carries the argument (`PATH`, `NAME` or `COMMAND`) and its value.
    pub fn argument(&self) -> (&'static str, &str) {
        match self {
            Self::Store { path } => ("PATH", path),
            Self::Launch { name } => ("NAME", name),
            Self::Execute { command } => ("COMMAND", command),
        }
    }
}

/// Fragment transport (`PROTO`). The `info` file itself always travels over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// Fragments over plain HTTP (OCS's default); Tessera's SHA-256 per fragment still
    /// protects Tessera agents.
    Http,
    /// Fragments over HTTPS.
    #[default]
    Https,
}

impl Protocol {
    /// The `PROTO` keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
        }
    }
}

impl FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        // The agent lower-cases PROTO to build the URL scheme, so any case works there.
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Ok(Self::Http),
            "HTTPS" => Ok(Self::Https),
            _ => Err(Error::invalid(
                "PROTO",
                format!("{s:?} is neither HTTP nor HTTPS"),
            )),
        }
    }
}

/// The user-notification fields of `info`. The Unix agent ignores them; the Windows agent
/// shows the dialog they describe.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Notification {
    /// `NOTIFY_USER`: show a dialog before running.
    pub notify_user: bool,
    /// `NOTIFY_TEXT`: the dialog's text.
    pub text: String,
    /// `NOTIFY_COUNTDOWN`: seconds before running anyway; `None` writes `""` as the console does.
    pub countdown: Option<u32>,
    /// `NOTIFY_CAN_ABORT`: the user may cancel.
    pub can_abort: bool,
    /// `NOTIFY_CAN_DELAY`: the user may postpone.
    pub can_delay: bool,
    /// `NEED_DONE_ACTION`: show a message when done.
    pub need_done_action: bool,
    /// `NEED_DONE_ACTION_TEXT`: that message.
    pub done_action_text: String,
}

impl Notification {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<()> {
        check_text("NOTIFY_TEXT", &self.text, true)?;
        check_text("NEED_DONE_ACTION_TEXT", &self.done_action_text, true)
    }
}

/// Name and version shown to administrators (stored by OCS in its database, by Tessera in
/// `info` as `TESSERA_NAME` / `TESSERA_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Package name, e.g. `firefox`.
    pub name: String,
    /// Version string, e.g. `128.0.2`.
    pub version: String,
}

impl Label {
    /// Checks that both are present and printable.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Result<Self> {
        let (name, version) = (name.into(), version.into());
        check_text("name", &name, false)?;
        check_text("version", &version, false)?;
        Ok(Self { name, version })
    }
}

/// Text fields travel in XML attributes: NUL and other control characters (except tab) cannot
/// be represented or would be rewritten by XML attribute normalisation, so they are refused.
fn check_text(field: &'static str, value: &str, may_be_empty: bool) -> Result<()> {
    if !may_be_empty && value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(Error::invalid(
            field,
            format!("contains the control character {c:?}; use plain text on one line"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_only_and_positive() {
        assert_eq!(
            "1716800000".parse::<PackageId>().unwrap().get(),
            1_716_800_000
        );
        for bad in ["", "0", "-1", "+5", " 5", "12a", "99999999999999999999999"] {
            assert!(bad.parse::<PackageId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn priority_range() {
        assert!(Priority::new(0).is_ok());
        assert!(Priority::new(10).is_ok());
        let err = Priority::new(11).unwrap_err().to_string();
        assert!(err.contains("0-10"), "{err}");
    }

    #[test]
    fn launch_names_the_agent_would_truncate_are_refused() {
        assert!(Action::launch("install.sh").is_ok());
        assert!(
            Action::launch("my-installer")
                .unwrap_err()
                .to_string()
                .contains("'-'")
        );
        assert!(Action::launch("run me").is_err());
        assert!(Action::execute("").is_err());
        assert!(Action::execute("echo a\necho b").is_err());
    }

    #[test]
    fn protocol_any_case() {
        assert_eq!("https".parse::<Protocol>().unwrap(), Protocol::Https);
        assert_eq!("HTTP".parse::<Protocol>().unwrap(), Protocol::Http);
        assert!("ftp".parse::<Protocol>().is_err());
    }
}
