//! The OCS `info` file: writer (byte for byte what the console writes) and a tolerant,
//! safe reader.
//!
//! Tessera's integrity data rides in extra attributes after `GARDEFOU`, which an unmodified
//! OCS agent ignores (it reads only `ID PRI ACT DIGEST PROTO FRAGS DIGEST_ALGO DIGEST_ENCODE
//! PATH NAME COMMAND`):
//!
//! | attribute | content |
//! |---|---|
//! | `TESSERA_NAME`, `TESSERA_VERSION` | the package's name and version |
//! | `TESSERA_SIZE` | payload size in bytes |
//! | `TESSERA_FRAGMENT_SIZE` | length of every fragment but the last (which takes the rest; longer only in the OCS console's split, when it is `TESSERA_SIZE / FRAGS`) |
//! | `TESSERA_SHA256` | SHA-256 of the whole payload, lowercase hex |
//! | `TESSERA_FRAGMENT_SHA256` | SHA-256 of each fragment in order, space-separated |

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;

use crate::digest::{OcsDigest, Sha256Digest};
use crate::error::{Error, Result};
use crate::fragment::{Fragment, FragmentNumber, FragmentPlan, MAX_FRAGMENTS};
use crate::model::{Action, Label, Notification, PackageId, Priority, Protocol};

/// The largest `info` the reader accepts: 100 000 fragment digests are 6.5 MB.
pub const MAX_INFO_BYTES: usize = 8 * 1024 * 1024;

/// Tessera's integrity data: the fragment plan and SHA-256 digests. Only constructed with
/// one digest per planned fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    plan: FragmentPlan,
    sha256: Sha256Digest,
    fragment_sha256: Vec<Sha256Digest>,
}

impl Integrity {
    /// Checks that there is exactly one digest per fragment of `plan`.
    pub fn new(
        plan: FragmentPlan,
        sha256: Sha256Digest,
        fragment_sha256: Vec<Sha256Digest>,
    ) -> Result<Self> {
        if fragment_sha256.len() != plan.count() as usize {
            return Err(Error::invalid(
                "TESSERA_FRAGMENT_SHA256",
                format!(
                    "lists {} digests but the plan has {} fragments",
                    fragment_sha256.len(),
                    plan.count()
                ),
            ));
        }
        Ok(Self {
            plan,
            sha256,
            fragment_sha256,
        })
    }

    /// The fragment plan.
    pub fn plan(&self) -> &FragmentPlan {
        &self.plan
    }

    /// SHA-256 of the whole payload.
    pub fn sha256(&self) -> &Sha256Digest {
        &self.sha256
    }

    /// SHA-256 of fragment `n` (1-based).
    pub fn fragment_sha256(&self, n: FragmentNumber) -> Option<&Sha256Digest> {
        self.fragment_sha256.get(n.index())
    }

    /// Every fragment with its digest.
    pub fn fragments(&self) -> impl Iterator<Item = (Fragment, &Sha256Digest)> + '_ {
        self.plan.fragments().zip(self.fragment_sha256.iter())
    }
}

/// Everything an `info` file says. Built packages have `label` and `integrity`; files
/// written by the OCS console have neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageInfo {
    /// `ID`.
    pub id: PackageId,
    /// `PRI`.
    pub priority: Priority,
    /// `ACT` with `PATH`, `NAME` or `COMMAND`.
    pub action: Action,
    /// `PROTO`.
    pub protocol: Protocol,
    /// `FRAGS`.
    pub fragment_count: u32,
    /// `DIGEST`, `DIGEST_ALGO`, `DIGEST_ENCODE`; absent only when `FRAGS` is 0.
    pub digest: Option<OcsDigest>,
    /// `NOTIFY_*`, `NEED_DONE_ACTION*`.
    pub notification: Notification,
    /// `TESSERA_NAME`, `TESSERA_VERSION`.
    pub label: Option<Label>,
    /// `TESSERA_SIZE`, `TESSERA_FRAGMENT_SIZE`, `TESSERA_SHA256`, `TESSERA_FRAGMENT_SHA256`.
    pub integrity: Option<Integrity>,
}

impl PackageInfo {
    /// The `info` file: the console's exact layout (declaration, one `DOWNLOAD` line with its
    /// attributes in the console's order, trailing newline), then Tessera's attributes.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DOWNLOAD");
        let (digest, algo, encode) = match &self.digest {
            Some(d) => (
                d.value.as_str(),
                d.algorithm_keyword(),
                d.encoding_keyword(),
            ),
            None => ("", "MD5", "Hexa"),
        };
        let (arg_name, arg_value) = self.action.argument();
        let n = &self.notification;
        let countdown = n.countdown.map(|c| c.to_string()).unwrap_or_default();
        let attributes: [(&str, &str); 17] = [
            ("ID", &self.id.to_string()),
            ("PRI", &self.priority.get().to_string()),
            ("ACT", self.action.keyword()),
            ("DIGEST", digest),
            ("PROTO", self.protocol.keyword()),
            ("FRAGS", &self.fragment_count.to_string()),
            ("DIGEST_ALGO", algo),
            ("DIGEST_ENCODE", encode),
            (arg_name, arg_value),
            ("NOTIFY_USER", flag(n.notify_user)),
            ("NOTIFY_TEXT", &n.text),
            ("NOTIFY_COUNTDOWN", &countdown),
            ("NOTIFY_CAN_ABORT", flag(n.can_abort)),
            ("NOTIFY_CAN_DELAY", flag(n.can_delay)),
            ("NEED_DONE_ACTION", flag(n.need_done_action)),
            ("NEED_DONE_ACTION_TEXT", &n.done_action_text),
            ("GARDEFOU", "rien"),
        ];
        for (name, value) in attributes {
            push_attribute(&mut out, name, value);
        }
        if let Some(label) = &self.label {
            push_attribute(&mut out, "TESSERA_NAME", &label.name);
            push_attribute(&mut out, "TESSERA_VERSION", &label.version);
        }
        if let Some(integrity) = &self.integrity {
            push_attribute(
                &mut out,
                "TESSERA_SIZE",
                &integrity.plan.payload_size().to_string(),
            );
            push_attribute(
                &mut out,
                "TESSERA_FRAGMENT_SIZE",
                &integrity.plan.fragment_size().to_string(),
            );
            push_attribute(&mut out, "TESSERA_SHA256", &integrity.sha256.to_hex());
            let mut list = String::with_capacity(integrity.fragment_sha256.len() * 65);
            for (i, d) in integrity.fragment_sha256.iter().enumerate() {
                if i > 0 {
                    list.push(' ');
                }
                list.push_str(&d.to_hex());
            }
            push_attribute(&mut out, "TESSERA_FRAGMENT_SHA256", &list);
        }
        out.push_str(" />\n");
        out
    }

    /// Reads an `info` file. Accepts any attribute order, fields as child elements, unknown
    /// attributes and both console digest variants; refuses DTDs and entities.
    pub fn parse(input: &[u8]) -> Result<Self> {
        let fields = Fields::read(input)?;
        let required = |name: &'static str| {
            fields.get(name).ok_or_else(|| Error::InfoSyntax {
                position: 0,
                reason: format!("the DOWNLOAD element has no {name}"),
            })
        };
        let id: PackageId = required("ID")?.trim().parse()?;
        let priority: Priority = required("PRI")?.parse()?;
        let argument = |name: &'static str| fields.get(name).unwrap_or_default().to_owned();
        let action = match required("ACT")?.trim() {
            "STORE" => Action::Store {
                path: argument("PATH"),
            },
            "LAUNCH" => Action::Launch {
                name: argument("NAME"),
            },
            "EXECUTE" => Action::Execute {
                command: argument("COMMAND"),
            },
            other => {
                return Err(Error::invalid(
                    "ACT",
                    format!("{other:?} is not STORE, LAUNCH or EXECUTE"),
                ));
            }
        };
        let protocol = match fields.get("PROTO") {
            Some(p) if !p.trim().is_empty() => p.trim().parse()?,
            // The agent would build an empty URL scheme; HTTP is the console's default.
            _ => Protocol::Http,
        };
        let fragment_count = match fields.get("FRAGS").map(str::trim) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| u64::from(*n) <= MAX_FRAGMENTS)
                .ok_or_else(|| {
                    Error::invalid(
                        "FRAGS",
                        format!("{text:?} is not a fragment count 0-{MAX_FRAGMENTS}"),
                    )
                })?,
        };
        let digest = match (
            fields.get("DIGEST_ALGO"),
            fields.get("DIGEST_ENCODE"),
            fields.get("DIGEST"),
        ) {
            // The writer puts an empty DIGEST on payload-less packages: same as absent.
            (_, _, Some(value)) if fragment_count == 0 && value.trim().is_empty() => None,
            (Some(algo), Some(encode), Some(value)) => {
                Some(OcsDigest::from_fields(algo.trim(), encode, value)?)
            }
            _ if fragment_count == 0 => None,
            _ => {
                return Err(Error::InfoSyntax {
                    position: 0,
                    reason: "a package with fragments needs DIGEST, DIGEST_ALGO and DIGEST_ENCODE"
                        .into(),
                });
            }
        };
        let notification = Notification {
            notify_user: parse_flag("NOTIFY_USER", fields.get("NOTIFY_USER"))?,
            text: argument("NOTIFY_TEXT"),
            countdown: match fields.get("NOTIFY_COUNTDOWN").map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(text.parse().map_err(|_| {
                    Error::invalid(
                        "NOTIFY_COUNTDOWN",
                        format!("{text:?} is not a number of seconds"),
                    )
                })?),
            },
            can_abort: parse_flag("NOTIFY_CAN_ABORT", fields.get("NOTIFY_CAN_ABORT"))?,
            can_delay: parse_flag("NOTIFY_CAN_DELAY", fields.get("NOTIFY_CAN_DELAY"))?,
            need_done_action: parse_flag("NEED_DONE_ACTION", fields.get("NEED_DONE_ACTION"))?,
            done_action_text: argument("NEED_DONE_ACTION_TEXT"),
        };
        let label = match (fields.get("TESSERA_NAME"), fields.get("TESSERA_VERSION")) {
            (Some(name), Some(version)) => Some(Label {
                name: name.to_owned(),
                version: version.to_owned(),
            }),
            _ => None,
        };
        let integrity = read_integrity(&fields, fragment_count)?;
        Ok(Self {
            id,
            priority,
            action,
            protocol,
            fragment_count,
            digest,
            notification,
            label,
            integrity,
        })
    }
}

fn read_integrity(fields: &Fields, fragment_count: u32) -> Result<Option<Integrity>> {
    let (Some(size), Some(fragment_size), Some(sha256), Some(list)) = (
        fields.get("TESSERA_SIZE"),
        fields.get("TESSERA_FRAGMENT_SIZE"),
        fields.get("TESSERA_SHA256"),
        fields.get("TESSERA_FRAGMENT_SHA256"),
    ) else {
        return Ok(None);
    };
    let number = |name: &'static str, text: &str| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| Error::invalid(name, format!("{text:?} is not a number of bytes")))
    };
    let size = number("TESSERA_SIZE", size)?;
    let fragment_size = number("TESSERA_FRAGMENT_SIZE", fragment_size)?;
    // Tessera's split (fixed size, shorter last fragment) or, for a package imported from
    // the OCS console, the console's (`size / FRAGS` each, longer last fragment).
    let plan = match FragmentPlan::with_fragment_size(size, fragment_size) {
        Ok(plan) if plan.count() == fragment_count => plan,
        built => match FragmentPlan::console_split(size, fragment_count) {
            Ok(plan) if plan.fragment_size() == fragment_size => plan,
            _ => {
                let plan = built?;
                return Err(Error::invalid(
                    "FRAGS",
                    format!(
                        "says {fragment_count} but TESSERA_SIZE and TESSERA_FRAGMENT_SIZE make {} fragments",
                        plan.count()
                    ),
                ));
            }
        },
    };
    let digests = list
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<Sha256Digest>>>()?;
    Integrity::new(plan, sha256.parse()?, digests).map(Some)
}

fn flag(value: bool) -> &'static str {
    if value { "1" } else { "0" }
}

fn parse_flag(name: &'static str, value: Option<&str>) -> Result<bool> {
    match value.map(str::trim) {
        None | Some("" | "0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(Error::invalid(
            name,
            format!("{other:?} is neither 0 nor 1"),
        )),
    }
}

fn push_attribute(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Attribute-value normalisation would turn raw whitespace controls into spaces.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The fields of the root `DOWNLOAD` element: its attributes, then the text of its child
/// elements (XML::Simple treats both forms alike; an attribute wins over a child).
struct Fields {
    entries: Vec<(String, String)>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn read(input: &[u8]) -> Result<Self> {
        const MAX_DEPTH: usize = 16;
        if input.len() > MAX_INFO_BYTES {
            return Err(Error::InfoTooLarge {
                size: input.len(),
                limit: MAX_INFO_BYTES,
            });
        }
        let mut reader = Reader::from_reader(input);
        let syntax = |reader: &Reader<&[u8]>, reason: String| Error::InfoSyntax {
            position: reader.buffer_position(),
            reason,
        };
        let mut attributes: Vec<(String, String)> = Vec::new();
        let mut children: Vec<(String, String)> = Vec::new();
        // Names of the open elements; the root is depth 1, its children depth 2.
        let mut open: Vec<String> = Vec::new();
        let mut seen_root = false;
        let mut child_text = String::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|e| syntax(&reader, e.to_string()))?;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec())
                        .map_err(|_| syntax(&reader, "element name is not UTF-8".into()))?;
                    if open.is_empty() {
                        if seen_root {
                            return Err(syntax(
                                &reader,
                                "content after the DOWNLOAD element".into(),
                            ));
                        }
                        if name != "DOWNLOAD" {
                            return Err(syntax(
                                &reader,
                                format!("root element is <{name}>, expected <DOWNLOAD>"),
                            ));
                        }
                        seen_root = true;
                        for attribute in e.attributes() {
                            let attribute =
                                attribute.map_err(|err| syntax(&reader, err.to_string()))?;
                            let key = String::from_utf8(attribute.key.as_ref().to_vec()).map_err(
                                |_| syntax(&reader, "attribute name is not UTF-8".into()),
                            )?;
                            let value = attribute.unescape_value().map_err(|err| {
                                forbidden_or_syntax(&reader, &key, &err.to_string())
                            })?;
                            attributes.push((key, value.into_owned()));
                        }
                    } else if open.len() >= MAX_DEPTH {
                        return Err(syntax(
                            &reader,
                            format!("elements nested deeper than {MAX_DEPTH}"),
                        ));
                    }
                    if open.len() == 1 {
                        child_text.clear();
                        if matches!(event, Event::Empty(_)) {
                            children.push((name.clone(), String::new()));
                        }
                    }
                    if matches!(event, Event::Start(_)) {
                        open.push(name);
                    }
                }
                Event::End(_) => {
                    let name = open
                        .pop()
                        .ok_or_else(|| syntax(&reader, "end tag without a start tag".into()))?;
                    if open.len() == 1 {
                        children.push((name, child_text.trim().to_owned()));
                    }
                }
                Event::Text(text) => {
                    let text = text.decode().map_err(|e| syntax(&reader, e.to_string()))?;
                    if open.len() == 2 {
                        child_text.push_str(&text);
                    } else if open.is_empty() && !text.trim().is_empty() {
                        return Err(syntax(&reader, "text outside the DOWNLOAD element".into()));
                    }
                }
                Event::CData(data) => {
                    let text = data.decode().map_err(|e| syntax(&reader, e.to_string()))?;
                    if open.len() == 2 {
                        child_text.push_str(&text);
                    }
                }
                Event::GeneralRef(reference) => {
                    let char_ref = reference
                        .resolve_char_ref()
                        .map_err(|e| syntax(&reader, e.to_string()))?;
                    let resolved = if let Some(c) = char_ref {
                        c.to_string()
                    } else {
                        let name = reference
                            .decode()
                            .map_err(|e| syntax(&reader, e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| Error::InfoForbidden {
                                what: format!("entity reference &{name};"),
                            })?
                            .to_owned()
                    };
                    if open.len() == 2 {
                        child_text.push_str(&resolved);
                    }
                }
                Event::DocType(_) => {
                    return Err(Error::InfoForbidden {
                        what: "a DOCTYPE declaration".into(),
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !open.is_empty() {
            return Err(syntax(
                &reader,
                format!("<{}> is not closed", open.last().map_or("", String::as_str)),
            ));
        }
        if !seen_root {
            return Err(syntax(&reader, "no DOWNLOAD element".into()));
        }
        attributes.extend(children);
        Ok(Self {
            entries: attributes,
        })
    }
}

fn forbidden_or_syntax(reader: &Reader<&[u8]>, key: &str, message: &str) -> Error {
    if message.contains("entity") {
        Error::InfoForbidden {
            what: format!("an entity in attribute {key} ({message})"),
        }
    } else {
        Error::InfoSyntax {
            position: reader.buffer_position(),
            reason: format!("attribute {key}: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_needs() {
        let mut s = String::new();
        push_attribute(&mut s, "COMMAND", "a & b < \"c\"\t>");
        assert_eq!(s, " COMMAND=\"a &amp; b &lt; &quot;c&quot;&#9;&gt;\"");
    }

    #[test]
    fn flags() {
        assert!(!parse_flag("X", None).unwrap());
        assert!(!parse_flag("X", Some("")).unwrap());
        assert!(parse_flag("X", Some("1")).unwrap());
        assert!(parse_flag("X", Some("yes")).is_err());
    }
}
