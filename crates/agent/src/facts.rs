//! What the agent says about its device: computer name, serial, OS and architecture.
//!
//! Detected from the system, each overridable in the configuration (`[device]`), because
//! the certificate's name must equal the computer name exactly and some hardware reports no
//! usable serial.

use std::path::Path;

use tessera_protocol::enroll::DeviceFacts;

use crate::config::DeviceOverrides;
use crate::error::{AgentError, Result};

/// The facts plus the human OS name an inventory carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// What enrollment sends.
    pub facts: DeviceFacts,
    /// The OS as people name it, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os_name: String,
}

/// Detects the device's facts, applying the overrides.
pub fn detect(overrides: &DeviceOverrides) -> Result<Device> {
    let hostname = match &overrides.hostname {
        Some(name) => name.clone(),
        None => system_hostname()?,
    };
    let serial = match &overrides.serial {
        Some(serial) => serial.clone(),
        None => system_serial()?,
    };
    let release = os_release(Path::new("/etc/os-release"));
    let os = match std::env::consts::OS {
        "macos" => "macOS".to_owned(),
        "linux" => "Linux".to_owned(),
        other => other.to_owned(),
    };
    let os_name = release
        .as_ref()
        .and_then(|r| r.pretty_name.clone())
        .unwrap_or_else(|| os.clone());
    let os_version = release.and_then(|r| r.version_id).unwrap_or_default();
    Ok(Device {
        facts: DeviceFacts {
            serial,
            hostname,
            os,
            os_version,
            arch: std::env::consts::ARCH.to_owned(),
        },
        os_name,
    })
}

/// The kernel's node name, which is what `hostname` prints.
fn system_hostname() -> Result<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_owned();
    if name.is_empty() {
        return Err(AgentError::Facts(
            "the system reports no computer name; set `device.hostname` in the agent configuration"
                .to_owned(),
        ));
    }
    Ok(name)
}

/// The hardware serial (DMI, readable by root), else the machine id.
fn system_serial() -> Result<String> {
    for path in [
        "/sys/class/dmi/id/product_serial",
        "/sys/class/dmi/id/board_serial",
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            let value = text.trim();
            // Virtual machines often report placeholders.
            let placeholder = value.is_empty()
                || value.eq_ignore_ascii_case("none")
                || value.eq_ignore_ascii_case("to be filled by o.e.m.")
                || value.eq_ignore_ascii_case("default string");
            if !placeholder {
                return Ok(value.to_owned());
            }
        }
    }
    Err(AgentError::Facts(
        "cannot determine a serial number (no DMI serial, no machine id); set `device.serial` in the agent configuration"
            .to_owned(),
    ))
}

#[derive(Debug, Default)]
struct OsRelease {
    pretty_name: Option<String>,
    version_id: Option<String>,
}

fn os_release(path: &Path) -> Option<OsRelease> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_os_release(&text))
}

fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'').to_owned();
        match key.trim() {
            "PRETTY_NAME" => release.pretty_name = Some(value),
            "VERSION_ID" => release.version_id = Some(value),
            _ => {}
        }
    }
    release
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_the_rest_is_detected() {
        let device = detect(&DeviceOverrides {
            hostname: Some("Mac-01".into()),
            serial: Some("C02XYZ".into()),
        })
        .unwrap();
        assert_eq!(device.facts.hostname, "Mac-01");
        assert_eq!(device.facts.serial, "C02XYZ");
        assert_eq!(device.facts.arch, std::env::consts::ARCH);
        assert!(!device.facts.os.is_empty());
    }

    #[test]
    fn hostname_is_what_the_kernel_says() {
        let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(system_hostname().unwrap(), expected.trim());
    }

    #[test]
    fn os_release_fields() {
        let release = parse_os_release(
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(
            release.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(release.version_id.as_deref(), Some("12"));
    }
}
