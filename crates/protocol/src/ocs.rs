//! OCS Inventory NG agent messages: what an agent POSTs to `/ocsinventory`, and what the
//! server answers. Formats follow `shared/specs/ocs-protocol.md` §2 and §5.

use std::fmt;

use crate::Error;
use crate::xml::{self, Element, XmlLimits, escape};

/// The identity an OCS agent gives itself: `<host>-YYYY-MM-DD-hh-mm-ss`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Longest DEVICEID accepted (the reference schema stores it in 255 characters).
    pub const MAX_LEN: usize = 255;

    /// Accepts what the reference server accepts (`^.+-\d{4}(?:-\d{2}){5}$`), limited to
    /// printable ASCII without spaces so that it is safe in logs and file names.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidField {
            field: "DEVICEID",
            value: value.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if value.len() > Self::MAX_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("only printable ASCII without spaces is allowed"));
        }
        // The date suffix is 20 bytes: "-YYYY-MM-DD-hh-mm-ss"; at least one byte before it.
        let bytes = value.as_bytes();
        let suffix_ok = bytes.len() > 20 && {
            let suffix = &bytes[bytes.len() - 20..];
            suffix.iter().enumerate().all(|(i, b)| match i {
                0 | 5 | 8 | 11 | 14 | 17 => *b == b'-',
                _ => b.is_ascii_digit(),
            })
        };
        if !suffix_ok {
            return Err(invalid("expected <hostname>-YYYY-MM-DD-hh-mm-ss"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The identifier as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name part (everything before the date suffix).
    pub fn hostname(&self) -> &str {
        &self.0[..self.0.len() - 20]
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OCS package identifier (`FILEID`): numeric, as the Unix agent ignores anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId(pub u64);

impl PackageId {
    /// Parses a decimal package ID.
    pub fn parse(value: &str) -> Result<Self, Error> {
        value
            .parse::<u64>()
            .map(Self)
            .map_err(|_| Error::InvalidField {
                field: "ID",
                value: value.chars().take(40).collect(),
                reason: "a package ID is a decimal number".into(),
            })
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message from an agent, by its `QUERY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "Anything for me?" — answered with a [`PrologReply`].
    Prolog {
        /// Who asks.
        device_id: DeviceId,
    },
    /// The device's inventory.
    Inventory(Inventory),
    /// The outcome of one package.
    DownloadResult {
        /// Who reports.
        device_id: DeviceId,
        /// Which package.
        package: PackageId,
        /// What happened.
        result: ResultCode,
    },
    /// A query this server does not handle (`UPDATE`, `SNMP`, …): answered without effect.
    Other {
        /// The query as sent.
        query: String,
    },
}

/// Limits on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest accepted body after decompression.
    pub max_xml_bytes: usize,
    /// XML structure limits.
    pub xml: XmlLimits,
}

impl Default for RequestLimits {
    /// 16 MiB of XML is far above a real inventory (a few hundred KiB with software).
    fn default() -> Self {
        Self {
            max_xml_bytes: 16 * 1024 * 1024,
            xml: XmlLimits::default(),
        }
    }
}

impl Request {
    /// Decodes a request body as it arrives over HTTP (zlib, gzip or plain XML).
    pub fn from_body(
        body: &[u8],
        limits: RequestLimits,
    ) -> Result<(Self, crate::BodyEncoding), Error> {
        let (xml, encoding) = crate::body::decode(body, limits.max_xml_bytes)?;
        Ok((Self::from_xml(&xml, limits.xml)?, encoding))
    }

    /// Parses the XML of a request.
    pub fn from_xml(xml: &[u8], limits: XmlLimits) -> Result<Self, Error> {
        let root = xml::parse(xml, limits)?;
        if root.name != "REQUEST" {
            return Err(Error::Message(format!(
                "root element is <{}>, expected <REQUEST>",
                root.name
            )));
        }
        let query = root.field("QUERY").ok_or(Error::MissingField("QUERY"))?;
        let device_id = || -> Result<DeviceId, Error> {
            DeviceId::parse(
                root.field("DEVICEID")
                    .ok_or(Error::MissingField("DEVICEID"))?,
            )
        };
        Ok(match query {
            "PROLOG" => Self::Prolog {
                device_id: device_id()?,
            },
            "INVENTORY" => Self::Inventory(Inventory::from_request(&root, device_id()?)?),
            "DOWNLOAD" => Self::DownloadResult {
                device_id: device_id()?,
                package: PackageId::parse(root.field("ID").ok_or(Error::MissingField("ID"))?)?,
                // The reference server records UNKNOWN_CODE when ERR is absent.
                result: ResultCode::parse(root.field("ERR").unwrap_or("UNKNOWN_CODE")),
            },
            other => Self::Other {
                query: other.chars().take(40).collect(),
            },
        })
    }
}

/// What an inventory tells about a device (the facts Tessera keeps) and which packages it
/// already has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Who sends it.
    pub device_id: Option<DeviceId>,
    /// `HARDWARE/NAME`: the host name.
    pub hostname: Option<String>,
    /// `HARDWARE/OSNAME`, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os_name: Option<String>,
    /// `HARDWARE/OSVERSION`, e.g. "12" from the Debian agent, a kernel version from others.
    pub os_version: Option<String>,
    /// `HARDWARE/ARCH`, else the first `CPUS/CPUARCH`, e.g. "x86_64".
    pub arch: Option<String>,
    /// `HARDWARE/IPADDR`.
    pub ip_address: Option<String>,
    /// `HARDWARE/UUID`.
    pub uuid: Option<String>,
    /// `BIOS/SSN`: the serial number.
    pub serial: Option<String>,
    /// `DOWNLOAD/HISTORY/PACKAGE/@ID`: packages the agent has already processed.
    pub history: Vec<PackageId>,
}

impl Inventory {
    /// Longest fact value kept; longer ones are cut (inventories are unauthenticated input).
    pub const MAX_FACT_LEN: usize = 1024;

    fn from_request(root: &Element, device_id: DeviceId) -> Result<Self, Error> {
        let content = root
            .child("CONTENT")
            .ok_or(Error::MissingField("CONTENT"))?;
        let fact = |section: &str, name: &str| {
            content
                .child(section)
                .and_then(|s| s.field(name))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(Self::MAX_FACT_LEN).collect::<String>())
        };
        let mut history = Vec::new();
        for download in content.children_named("DOWNLOAD") {
            for hist in download.children_named("HISTORY") {
                for package in hist.children_named("PACKAGE") {
                    // A malformed history entry is ignored, not fatal: the rest still counts.
                    if let Some(id) = package.field("ID").and_then(|v| PackageId::parse(v).ok()) {
                        history.push(id);
                    }
                }
            }
        }
        history.sort_unstable();
        history.dedup();
        Ok(Self {
            device_id: Some(device_id),
            hostname: fact("HARDWARE", "NAME"),
            os_name: fact("HARDWARE", "OSNAME"),
            os_version: fact("HARDWARE", "OSVERSION"),
            // The Unix agent (2.10) has no HARDWARE/ARCH; it reports the architecture per
            // CPU, from lscpu.
            arch: fact("HARDWARE", "ARCH").or_else(|| fact("CPUS", "CPUARCH")),
            ip_address: fact("HARDWARE", "IPADDR"),
            uuid: fact("HARDWARE", "UUID"),
            serial: fact("BIOS", "SSN"),
            history,
        })
    }
}

/// A package result code as the agents send them (§5.2 of the OCS spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultCode {
    /// `SUCCESS`.
    Success,
    /// `SUCCESS_<n>`: a LAUNCH whose program exited with `n`.
    SuccessExit(i64),
    /// `SUCCESS_ALREADY_SETUP`.
    SuccessAlreadySetup,
    /// `ERR_*` (e.g. `ERR_BAD_DIGEST`), kept as sent.
    Error(String),
    /// `EXIT_CODE_<n>` (Windows agents).
    ExitCode(i64),
    /// Anything else, kept as sent (at most 64 characters).
    Unknown(String),
}

impl ResultCode {
    /// Classifies a code; never fails, since agents may send anything.
    pub fn parse(code: &str) -> Self {
        let code: String = code.trim().chars().take(64).collect();
        match code.as_str() {
            "SUCCESS" => Self::Success,
            "SUCCESS_ALREADY_SETUP" => Self::SuccessAlreadySetup,
            c if c.starts_with("ERR_") => Self::Error(code),
            c => {
                if let Some(n) = c.strip_prefix("SUCCESS_").and_then(|n| n.parse().ok()) {
                    Self::SuccessExit(n)
                } else if let Some(n) = c.strip_prefix("EXIT_CODE_").and_then(|n| n.parse().ok()) {
                    Self::ExitCode(n)
                } else {
                    Self::Unknown(code)
                }
            }
        }
    }

    /// Whether the OCS console counts this code as a success (`SUCCESS%`).
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Self::Success | Self::SuccessExit(_) | Self::SuccessAlreadySetup
        ) || matches!(self, Self::Unknown(c) if c.starts_with("SUCCESS"))
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("SUCCESS"),
            Self::SuccessExit(n) => write!(f, "SUCCESS_{n}"),
            Self::SuccessAlreadySetup => f.write_str("SUCCESS_ALREADY_SETUP"),
            Self::ExitCode(n) => write!(f, "EXIT_CODE_{n}"),
            Self::Error(c) | Self::Unknown(c) => f.write_str(c),
        }
    }
}

/// Whether the agent should send an inventory after the PROLOG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrologResponse {
    /// `SEND`: send an inventory now.
    Send,
    /// `STOP`: no inventory this time (download options still apply).
    Stop,
}

/// The `TYPE="CONF"` parameter of the DOWNLOAD option: the agent's schedule settings. It
/// reads from configuration files too (every field optional, defaults below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadConf {
    /// Deployment switched on. Always sent explicitly: a missing `ON` means off.
    pub on: bool,
    /// Cycles per period.
    pub period_length: u32,
    /// Seconds after each fragment.
    pub frag_latency: u32,
    /// Seconds after each cycle.
    pub cycle_latency: u32,
    /// Seconds after each period.
    pub period_latency: u32,
    /// Days after which an unfinished package ends with `ERR_TIMEOUT`. Always sent: a
    /// missing TIMEOUT times every package out after one second in the Unix agent.
    pub timeout_days: u32,
    /// Minutes an action may run.
    pub execution_timeout_minutes: u32,
}

impl Default for DownloadConf {
    /// What the Debian reference server sends (`ocsinventory-server.conf`).
    fn default() -> Self {
        Self {
            on: true,
            period_length: 10,
            frag_latency: 60,
            cycle_latency: 60,
            period_latency: 60,
            timeout_days: 7,
            execution_timeout_minutes: 120,
        }
    }
}

/// One `TYPE="PACK"` parameter: a package the device should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOffer {
    /// The package.
    pub id: PackageId,
    /// Where `info` is, without scheme (the agent always uses https): `host:port/path`.
    pub info_location: String,
    /// Where fragments are, without scheme (`PROTO` in `info` picks it).
    pub pack_location: String,
    /// Re-deploy even if the package is in the agent's history.
    pub force: bool,
}

/// The reply to a PROLOG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrologReply {
    /// Send an inventory or not.
    pub response: PrologResponse,
    /// Hours between check-ins.
    pub prolog_freq_hours: u32,
    /// The DOWNLOAD option; `None` sends no option at all.
    pub download: Option<(DownloadConf, Vec<PackOffer>)>,
}

impl PrologReply {
    /// The XML the reference server would send, with a fixed element order.
    pub fn to_xml(&self) -> String {
        use fmt::Write as _;
        let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n<REPLY>\n");
        let _ = writeln!(
            out,
            "  <PROLOG_FREQ>{}</PROLOG_FREQ>",
            self.prolog_freq_hours
        );
        let response = match self.response {
            PrologResponse::Send => "SEND",
            PrologResponse::Stop => "STOP",
        };
        let _ = writeln!(out, "  <RESPONSE>{response}</RESPONSE>");
        if let Some((conf, packs)) = &self.download {
            out.push_str("  <OPTION>\n    <NAME>DOWNLOAD</NAME>\n");
            let _ = writeln!(
                out,
                "    <PARAM TYPE=\"CONF\" ON=\"{}\" PERIOD_LENGTH=\"{}\" FRAG_LATENCY=\"{}\" \
                 CYCLE_LATENCY=\"{}\" PERIOD_LATENCY=\"{}\" TIMEOUT=\"{}\" EXECUTION_TIMEOUT=\"{}\" />",
                u8::from(conf.on),
                conf.period_length,
                conf.frag_latency,
                conf.cycle_latency,
                conf.period_latency,
                conf.timeout_days,
                conf.execution_timeout_minutes,
            );
            if conf.on {
                for pack in packs {
                    let _ = writeln!(
                        out,
                        "    <PARAM TYPE=\"PACK\" ID=\"{}\" INFO_LOC=\"{}\" PACK_LOC=\"{}\" \
                         CERT_PATH=\"INSTALL_PATH\" CERT_FILE=\"INSTALL_PATH/cacert.pem\" \
                         SCHEDULE=\"\" POSTCMD=\"\" FORCE=\"{}\" />",
                        pack.id,
                        escape(&pack.info_location),
                        escape(&pack.pack_location),
                        u8::from(pack.force),
                    );
                }
            }
            out.push_str("  </OPTION>\n");
        }
        out.push_str("</REPLY>\n");
        out
    }
}

/// The reply to an INVENTORY: Tessera never rewrites the agent's account data.
pub fn inventory_reply_xml() -> &'static str {
    "<?xml version='1.0' encoding='UTF-8'?>\n<REPLY>\n  <RESPONSE>NO_ACCOUNT_UPDATE</RESPONSE>\n</REPLY>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  \
        <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>\n  <QUERY>PROLOG</QUERY>\n</REQUEST>\n";
    const RESULT: &str = "<REQUEST DEVICEID=\"myhost-2024-05-01-10-20-30\" ERR=\"SUCCESS\" \
        ID=\"1716800000\" QUERY=\"DOWNLOAD\" />\n";

    fn parse(xml: &str) -> Result<Request, Error> {
        Request::from_xml(xml.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn the_agents_prolog_bytes_parse() {
        let Request::Prolog { device_id } = parse(PROLOG).unwrap() else {
            panic!("not a PROLOG")
        };
        assert_eq!(device_id.as_str(), "myhost-2024-05-01-10-20-30");
        assert_eq!(device_id.hostname(), "myhost");
    }

    #[test]
    fn the_agents_download_result_bytes_parse() {
        let request = parse(RESULT).unwrap();
        assert_eq!(
            request,
            Request::DownloadResult {
                device_id: DeviceId::parse("myhost-2024-05-01-10-20-30").unwrap(),
                package: PackageId(1_716_800_000),
                result: ResultCode::Success,
            }
        );
    }

    #[test]
    fn download_result_without_err_is_unknown_code() {
        let xml = r#"<REQUEST DEVICEID="h-2024-05-01-10-20-30" ID="5" QUERY="DOWNLOAD"/>"#;
        let Request::DownloadResult { result, .. } = parse(xml).unwrap() else {
            panic!()
        };
        assert_eq!(result, ResultCode::Unknown("UNKNOWN_CODE".into()));
        assert!(!result.is_success());
    }

    #[test]
    fn inventory_facts_and_history() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<REQUEST>
  <CONTENT>
    <HARDWARE><NAME>myhost</NAME><OSNAME>Debian GNU/Linux 12 (bookworm)</OSNAME>
      <OSVERSION>6.1.0-18-amd64</OSVERSION><ARCH>x86_64</ARCH><IPADDR>127.0.0.1</IPADDR></HARDWARE>
    <BIOS><SSN>VMware-42 1a</SSN></BIOS>
    <DOWNLOAD><HISTORY><PACKAGE ID="20"/><PACKAGE ID="10"/><PACKAGE ID="x"/><PACKAGE ID="10"/></HISTORY></DOWNLOAD>
  </CONTENT>
  <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>
  <QUERY>INVENTORY</QUERY>
</REQUEST>"#;
        let Request::Inventory(inv) = parse(xml).unwrap() else {
            panic!("not an inventory")
        };
        assert_eq!(inv.hostname.as_deref(), Some("myhost"));
        assert_eq!(
            inv.os_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(inv.os_version.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(inv.arch.as_deref(), Some("x86_64"));
        assert_eq!(inv.serial.as_deref(), Some("VMware-42 1a"));
        assert_eq!(inv.history, vec![PackageId(10), PackageId(20)]);
    }

    #[test]
    fn unix_agent_inventory_gives_the_arch_from_its_cpus() {
        // The shape Debian's ocsinventory-agent 2.10 sends (trimmed from a real run).
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<REQUEST>
  <CONTENT>
    <CPUS><CORES>2</CORES><CPUARCH>x86_64</CPUARCH><DATA_WIDTH>64</DATA_WIDTH></CPUS>
    <CPUS><CORES>2</CORES><CPUARCH>i686</CPUARCH></CPUS>
    <HARDWARE><DESCRIPTION>x86_64/00-00-00 02:39:09</DESCRIPTION><NAME>vm</NAME>
      <OSCOMMENTS>Debian GNU/Linux 12 (bookworm)</OSCOMMENTS><OSNAME>Debian GNU/Linux 12</OSNAME>
      <OSVERSION>12</OSVERSION></HARDWARE>
  </CONTENT>
  <DEVICEID>vm-2026-11-23-16-15-03</DEVICEID>
  <QUERY>INVENTORY</QUERY>
</REQUEST>"#;
        let Request::Inventory(inv) = parse(xml).unwrap() else {
            panic!("not an inventory")
        };
        assert_eq!(inv.arch.as_deref(), Some("x86_64"));
        assert_eq!(inv.os_name.as_deref(), Some("Debian GNU/Linux 12"));
        assert_eq!(inv.os_version.as_deref(), Some("12"));
        // HARDWARE/ARCH, when an agent sends it, wins.
        let with_hardware_arch =
            xml.replace("<NAME>vm</NAME>", "<NAME>vm</NAME><ARCH>aarch64</ARCH>");
        let Request::Inventory(inv) = parse(&with_hardware_arch).unwrap() else {
            panic!("not an inventory")
        };
        assert_eq!(inv.arch.as_deref(), Some("aarch64"));
    }

    #[test]
    fn device_ids_follow_the_reference_server() {
        for good in ["myhost-2024-05-01-10-20-30", "a-b-2024-05-01-10-20-30"] {
            assert!(DeviceId::parse(good).is_ok(), "{good}");
        }
        assert!(DeviceId::parse("-2024-05-01-10-20-30").is_err());
        assert!(DeviceId::parse("myhost").is_err());
        assert!(DeviceId::parse("myhost-2024-05-01-10-20-3x").is_err());
        assert!(DeviceId::parse("my host-2024-05-01-10-20-30").is_err());
        assert!(DeviceId::parse(&"a".repeat(300)).is_err());
    }

    #[test]
    fn result_codes_classify_as_the_console_does() {
        assert_eq!(ResultCode::parse("SUCCESS_3"), ResultCode::SuccessExit(3));
        assert!(ResultCode::parse("SUCCESS_3").is_success());
        assert!(ResultCode::parse("SUCCESS_ALREADY_SETUP").is_success());
        assert_eq!(
            ResultCode::parse("ERR_BAD_DIGEST").to_string(),
            "ERR_BAD_DIGEST"
        );
        assert!(!ResultCode::parse("ERR_BAD_DIGEST").is_success());
        assert_eq!(ResultCode::parse("EXIT_CODE_1"), ResultCode::ExitCode(1));
        assert!(!ResultCode::parse("EXIT_CODE_1").is_success());
        for code in [
            "SUCCESS",
            "SUCCESS_0",
            "SUCCESS_ALREADY_SETUP",
            "ERR_TIMEOUT",
            "EXIT_CODE_2",
        ] {
            assert_eq!(ResultCode::parse(code).to_string(), code);
        }
    }

    #[test]
    fn other_queries_and_bad_roots() {
        assert_eq!(
            parse("<REQUEST><QUERY>UPDATE</QUERY></REQUEST>").unwrap(),
            Request::Other {
                query: "UPDATE".into()
            }
        );
        assert!(matches!(parse("<REPLY/>"), Err(Error::Message(_))));
        assert!(matches!(
            parse("<REQUEST/>"),
            Err(Error::MissingField("QUERY"))
        ));
        assert!(matches!(
            parse("<REQUEST><QUERY>PROLOG</QUERY></REQUEST>"),
            Err(Error::MissingField("DEVICEID"))
        ));
    }

    #[test]
    fn prolog_reply_reads_back_as_the_agent_reads_it() {
        let reply = PrologReply {
            response: PrologResponse::Send,
            prolog_freq_hours: 12,
            download: Some((
                DownloadConf::default(),
                vec![PackOffer {
                    id: PackageId(1_716_800_000),
                    info_location: "127.0.0.1:8443/download".into(),
                    pack_location: "127.0.0.1:8443/download".into(),
                    force: false,
                }],
            )),
        };
        let xml = reply.to_xml();
        assert!(xml.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<REPLY>"));
        let root = xml::parse(xml.as_bytes(), XmlLimits::default()).unwrap();
        assert_eq!(root.field("RESPONSE"), Some("SEND"));
        assert_eq!(root.field("PROLOG_FREQ"), Some("12"));
        let option = root.child("OPTION").unwrap();
        assert_eq!(option.field("NAME"), Some("DOWNLOAD"));
        let params: Vec<_> = option.children_named("PARAM").collect();
        assert_eq!(params.len(), 2);
        assert_eq!(params[0].attribute("TYPE"), Some("CONF"));
        assert_eq!(params[0].attribute("ON"), Some("1"));
        assert_eq!(params[0].attribute("TIMEOUT"), Some("7"));
        assert_eq!(params[1].attribute("TYPE"), Some("PACK"));
        assert_eq!(params[1].attribute("ID"), Some("1716800000"));
        assert_eq!(
            params[1].attribute("INFO_LOC"),
            Some("127.0.0.1:8443/download")
        );
    }

    #[test]
    fn download_off_sends_conf_but_no_packs() {
        let reply = PrologReply {
            response: PrologResponse::Stop,
            prolog_freq_hours: 24,
            download: Some((
                DownloadConf {
                    on: false,
                    ..DownloadConf::default()
                },
                vec![PackOffer {
                    id: PackageId(1),
                    info_location: "h/d".into(),
                    pack_location: "h/d".into(),
                    force: true,
                }],
            )),
        };
        let xml = reply.to_xml();
        assert!(xml.contains("ON=\"0\""));
        assert!(!xml.contains("TYPE=\"PACK\""));
    }
}
