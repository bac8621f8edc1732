//! The agent's side of the OCS protocol: the requests it writes and the PROLOG reply it
//! reads.
//!
//! Requests are written the way the Unix agent writes them (child elements in a `REQUEST`
//! root) so that a server reading either agent sees the same shape. The reply parser accepts
//! what the reference server sends, attributes or child elements alike.

use std::fmt::Write as _;

use crate::Error;
use crate::ocs::{DeviceId, DownloadConf, PackOffer, PackageId, PrologReply, PrologResponse};
use crate::xml::{self, XmlLimits, escape};

/// What an inventory reports about the device (the facts a Tessera server keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryFacts {
    /// `HARDWARE/NAME`.
    pub hostname: String,
    /// `HARDWARE/OSNAME`, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os_name: String,
    /// `HARDWARE/OSVERSION`.
    pub os_version: String,
    /// `HARDWARE/ARCH`.
    pub arch: String,
    /// `BIOS/SSN`.
    pub serial: String,
    /// `DOWNLOAD/HISTORY`: packages already processed.
    pub history: Vec<PackageId>,
}

/// `QUERY=PROLOG`.
pub fn prolog_xml(device_id: &DeviceId) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<REQUEST>\n  <DEVICEID>{}</DEVICEID>\n  \
         <QUERY>PROLOG</QUERY>\n</REQUEST>\n",
        escape(device_id.as_str())
    )
}

/// `QUERY=INVENTORY` with the facts Tessera keeps.
pub fn inventory_xml(device_id: &DeviceId, facts: &InventoryFacts) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<REQUEST>\n");
    out.push_str("  <CONTENT>\n    <HARDWARE>\n");
    for (name, value) in [
        ("NAME", &facts.hostname),
        ("OSNAME", &facts.os_name),
        ("OSVERSION", &facts.os_version),
        ("ARCH", &facts.arch),
    ] {
        let _ = writeln!(out, "      <{name}>{}</{name}>", escape(value));
    }
    out.push_str("    </HARDWARE>\n");
    let _ = writeln!(
        out,
        "    <BIOS>\n      <SSN>{}</SSN>\n    </BIOS>",
        escape(&facts.serial)
    );
    if !facts.history.is_empty() {
        out.push_str("    <DOWNLOAD>\n      <HISTORY>\n");
        for id in &facts.history {
            let _ = writeln!(out, "        <PACKAGE ID=\"{id}\" />");
        }
        out.push_str("      </HISTORY>\n    </DOWNLOAD>\n");
    }
    let _ = write!(
        out,
        "  </CONTENT>\n  <DEVICEID>{}</DEVICEID>\n  <QUERY>INVENTORY</QUERY>\n</REQUEST>\n",
        escape(device_id.as_str())
    );
    out
}

/// `QUERY=DOWNLOAD`: the result of one package.
pub fn download_result_xml(device_id: &DeviceId, package: PackageId, result: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<REQUEST>\n  <DEVICEID>{}</DEVICEID>\n  \
         <ERR>{}</ERR>\n  <ID>{package}</ID>\n  <QUERY>DOWNLOAD</QUERY>\n</REQUEST>\n",
        escape(device_id.as_str()),
        escape(result)
    )
}

/// Largest PROLOG reply the agent reads (a reply lists at most a few thousand packages).
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

impl PrologReply {
    /// Parses a PROLOG reply as the reference server or Tessera sends it.
    ///
    /// The `DOWNLOAD` option's `CONF` fields that are missing take the Unix agent's reading
    /// of a missing value, except `ON`, which must be said (a missing `ON` means off).
    pub fn from_xml(xml: &[u8]) -> Result<Self, Error> {
        if xml.len() > MAX_REPLY_BYTES {
            return Err(Error::TooLarge {
                what: "bytes of reply",
                limit: MAX_REPLY_BYTES,
            });
        }
        let root = xml::parse(xml, XmlLimits::default())?;
        if root.name != "REPLY" {
            return Err(Error::Message(format!(
                "root element is <{}>, expected <REPLY>",
                root.name
            )));
        }
        let response = match root.field("RESPONSE").map(str::trim) {
            Some("SEND") => PrologResponse::Send,
            _ => PrologResponse::Stop,
        };
        let prolog_freq_hours = root
            .field("PROLOG_FREQ")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(12);
        let mut download = None;
        for option in root.children_named("OPTION") {
            if option.field("NAME").map(str::trim) != Some("DOWNLOAD") {
                continue;
            }
            let mut conf = None;
            let mut packs = Vec::new();
            for param in option.children_named("PARAM") {
                match param.field("TYPE") {
                    Some("CONF") => conf = Some(read_conf(param)),
                    Some("PACK") => packs.push(read_pack(param)?),
                    _ => {}
                }
            }
            let conf = conf.unwrap_or(DownloadConf {
                on: false,
                ..DownloadConf::default()
            });
            download = Some((conf, packs));
        }
        Ok(Self {
            response,
            prolog_freq_hours,
            download,
        })
    }
}

fn read_conf(param: &xml::Element) -> DownloadConf {
    let number = |name: &str, default: u32| {
        param
            .field(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    let defaults = DownloadConf::default();
    DownloadConf {
        on: param.field("ON").map(str::trim) == Some("1"),
        period_length: number("PERIOD_LENGTH", defaults.period_length).max(1),
        frag_latency: number("FRAG_LATENCY", defaults.frag_latency),
        cycle_latency: number("CYCLE_LATENCY", defaults.cycle_latency),
        period_latency: number("PERIOD_LATENCY", defaults.period_latency),
        timeout_days: number("TIMEOUT", defaults.timeout_days),
        execution_timeout_minutes: number("EXECUTION_TIMEOUT", defaults.execution_timeout_minutes),
    }
}

fn read_pack(param: &xml::Element) -> Result<PackOffer, Error> {
    let field = |name: &'static str| {
        param
            .field(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(Error::MissingField(name))
    };
    Ok(PackOffer {
        id: PackageId::parse(field("ID")?)?,
        info_location: field("INFO_LOC")?.to_owned(),
        pack_location: field("PACK_LOC")?.to_owned(),
        force: param.field("FORCE").map(str::trim) == Some("1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::{Request, ResultCode};

    fn device() -> DeviceId {
        DeviceId::parse("mac<01>-2024-05-01-10-20-30").unwrap()
    }

    #[test]
    fn requests_round_trip_through_the_server_reader() {
        let id = device();
        let prolog = Request::from_xml(prolog_xml(&id).as_bytes(), XmlLimits::default());
        assert_eq!(
            prolog.unwrap(),
            Request::Prolog {
                device_id: id.clone()
            }
        );

        let result = download_result_xml(&id, PackageId(7), "SUCCESS_3");
        let parsed = Request::from_xml(result.as_bytes(), XmlLimits::default()).unwrap();
        assert_eq!(
            parsed,
            Request::DownloadResult {
                device_id: id.clone(),
                package: PackageId(7),
                result: ResultCode::SuccessExit(3)
            }
        );

        let facts = InventoryFacts {
            hostname: "mac&01".into(),
            os_name: "Debian GNU/Linux 12".into(),
            os_version: "6.1".into(),
            arch: "x86_64".into(),
            serial: "C02 <X>".into(),
            history: vec![PackageId(3), PackageId(9)],
        };
        let Request::Inventory(inventory) =
            Request::from_xml(inventory_xml(&id, &facts).as_bytes(), XmlLimits::default()).unwrap()
        else {
            panic!("not an inventory")
        };
        assert_eq!(inventory.hostname.as_deref(), Some("mac&01"));
        assert_eq!(inventory.serial.as_deref(), Some("C02 <X>"));
        assert_eq!(inventory.os_name.as_deref(), Some("Debian GNU/Linux 12"));
        assert_eq!(inventory.history, facts.history);
    }

    #[test]
    fn the_servers_own_reply_parses_back() {
        let reply = PrologReply {
            response: PrologResponse::Send,
            prolog_freq_hours: 3,
            download: Some((
                DownloadConf {
                    period_length: 1,
                    frag_latency: 0,
                    ..DownloadConf::default()
                },
                vec![PackOffer {
                    id: PackageId(1_716_800_000),
                    info_location: "127.0.0.1:8443/download".into(),
                    pack_location: "127.0.0.1:8443/download".into(),
                    force: true,
                }],
            )),
        };
        assert_eq!(
            PrologReply::from_xml(reply.to_xml().as_bytes()).unwrap(),
            reply
        );
    }

    #[test]
    fn a_reference_server_reply_with_child_elements_parses() {
        // The shape Apache::Ocsinventory writes with XML::Simple (spec §2.2).
        let xml = br#"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>
<REPLY>
  <OPTION>
    <NAME>DOWNLOAD</NAME>
    <PARAM FRAG_LATENCY="10" PERIOD_LATENCY="1" CYCLE_LATENCY="60" PERIOD_LENGTH="10" TIMEOUT="30" ON="1" TYPE="CONF" EXECUTION_TIMEOUT="120" />
    <PARAM ID="1716800000" INFO_LOC="srv/download" PACK_LOC="srv/download" CERT_PATH="INSTALL_PATH" CERT_FILE="INSTALL_PATH/cacert.pem" TYPE="PACK" FORCE="0" />
  </OPTION>
  <RESPONSE>SEND</RESPONSE>
  <PROLOG_FREQ>24</PROLOG_FREQ>
</REPLY>"#;
        let reply = PrologReply::from_xml(xml).unwrap();
        assert_eq!(reply.prolog_freq_hours, 24);
        let (conf, packs) = reply.download.unwrap();
        assert_eq!(
            (conf.on, conf.frag_latency, conf.timeout_days),
            (true, 10, 30)
        );
        assert_eq!(packs[0].id, PackageId(1_716_800_000));
        assert!(!packs[0].force);
    }

    #[test]
    fn missing_on_means_off_and_bad_packs_are_named() {
        let xml = br#"<REPLY><OPTION><NAME>DOWNLOAD</NAME><PARAM TYPE="CONF" /></OPTION><RESPONSE>STOP</RESPONSE></REPLY>"#;
        let (conf, _) = PrologReply::from_xml(xml).unwrap().download.unwrap();
        assert!(!conf.on);
        let xml =
            br#"<REPLY><OPTION><NAME>DOWNLOAD</NAME><PARAM TYPE="PACK" ID="1" /></OPTION></REPLY>"#;
        assert_eq!(
            PrologReply::from_xml(xml).unwrap_err(),
            Error::MissingField("INFO_LOC")
        );
        assert!(PrologReply::from_xml(b"<REQUEST/>").is_err());
        assert!(PrologReply::from_xml(b"<!DOCTYPE x><REPLY/>").is_err());
    }
}
