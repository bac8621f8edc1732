//! Editing the configuration file in place (issue #10: `config get/set/unset/show`).
//!
//! The editor works on the file's text with `toml_edit`, so comments, key order,
//! formatting and keys this version does not know survive every edit: an upgrade or a
//! `config set` never resets what a site wrote. Each edit is checked with
//! [`AgentConfig::parse`] before anything is written, and the file is replaced atomically
//! (temporary file in the same directory, fsync, rename, directory fsync) with its mode kept.
//!
//! Keys already in the file that this version does not know are kept and reported by
//! [`ConfigEditor::unknown_keys`], but they do not block edits of other keys; setting a new
//! unknown key is refused by name, so a typo never lands in the file.
//!
//! ```
//! use tessera_agent::config::edit::ConfigEditor;
//!
//! let mut editor = ConfigEditor::from_text(
//!     "# our fleet\nservers = [\"https://a:8443\"] # primary\n",
//! ).unwrap();
//! editor.set("log.level", "debug").unwrap();
//! editor.set("servers", r#"["https://a:8443", "https://b:8443"]"#).unwrap();
//! assert_eq!(
//!     editor.text(),
//!     "# our fleet\nservers = [\"https://a:8443\", \"https://b:8443\"] # primary\n\n[log]\nlevel = \"debug\"\n",
//! );
//! assert_eq!(editor.get("log.level").unwrap().as_deref(), Some("debug"));
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::AgentConfig;
use crate::service::fs::{DEFAULT_CONFIG_MODE, write_atomically};

/// The type a key holds, which decides how a command-line value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A string; the value is taken literally unless it is a quoted TOML string.
    Text,
    /// A list of strings; `[…]` is read as TOML, a bare value becomes a one-element list.
    TextList,
    /// `true` or `false`.
    Bool,
    /// A non-negative integer.
    Integer,
}

/// One key of the configuration file, as documented in the template and `docs/agent.md`.
#[derive(Debug, Clone, Copy)]
pub struct KeyInfo {
    /// The dotted key (`log.level`).
    pub key: &'static str,
    /// What it holds.
    pub kind: KeyKind,
    /// The default as a TOML value, when there is one.
    pub default: Option<&'static str>,
    /// What the key does (one line).
    pub help: &'static str,
}

const fn key(
    key: &'static str,
    kind: KeyKind,
    default: Option<&'static str>,
    help: &'static str,
) -> KeyInfo {
    KeyInfo {
        key,
        kind,
        default,
        help,
    }
}

/// Every key the agent knows, in template order.
pub const KEYS: &[KeyInfo] = &[
    key(
        "servers",
        KeyKind::TextList,
        None,
        "server base URLs (https://host:port), tried in order until one answers; required",
    ),
    key(
        "data_dir",
        KeyKind::Text,
        Some("\"/var/lib/tessera\""),
        "journal, downloads and state",
    ),
    key(
        "ocs_compat",
        KeyKind::Bool,
        Some("false"),
        "speak to an unmodified OCS Inventory server: no client certificate, MD5 only, http:// allowed",
    ),
    key(
        "ca_file",
        KeyKind::Text,
        None,
        "CA certificates (PEM) trusted for the servers instead of those stored at enrollment; what ocs_compat uses",
    ),
    key(
        "renew_days",
        KeyKind::Integer,
        Some("30"),
        "renew the device certificate at a check-in when it expires within this many days",
    ),
    key(
        "keystore.kind",
        KeyKind::Text,
        Some(if cfg!(target_os = "macos") {
            "\"system-keychain\""
        } else {
            "\"file\""
        }),
        "\"file\" (a 0700 directory; the Linux default) or \"system-keychain\" (macOS)",
    ),
    key(
        "keystore.path",
        KeyKind::Text,
        None,
        "the file keystore's directory (default <data_dir>/keystore)",
    ),
    key(
        "log.level",
        KeyKind::Text,
        Some("\"info\""),
        "error, warn, info, debug or trace (the command line's -v/-q win)",
    ),
    key(
        "schedule.period_length",
        KeyKind::Integer,
        None,
        "cycles per period (default: the server's PERIOD_LENGTH)",
    ),
    key(
        "schedule.frag_latency",
        KeyKind::Integer,
        None,
        "seconds after each fragment step (default: the server's FRAG_LATENCY)",
    ),
    key(
        "schedule.cycle_latency",
        KeyKind::Integer,
        None,
        "seconds after each cycle (default: the server's CYCLE_LATENCY)",
    ),
    key(
        "schedule.period_latency",
        KeyKind::Integer,
        None,
        "seconds after each period (default: the server's PERIOD_LATENCY)",
    ),
    key(
        "schedule.execution_timeout_minutes",
        KeyKind::Integer,
        None,
        "minutes an action may run before its process group is killed (default: the server's)",
    ),
    key(
        "schedule.check_in_minutes",
        KeyKind::Integer,
        None,
        "minutes between check-ins (default: the server's PROLOG_FREQ hours)",
    ),
    key(
        "device.hostname",
        KeyKind::Text,
        None,
        "the computer name (default: what `hostname` prints)",
    ),
    key(
        "device.serial",
        KeyKind::Text,
        None,
        "the hardware serial number (default: DMI / ioreg, else the machine id)",
    ),
];

/// The tables of the file and what each is for, in template order.
const TABLES: &[(&str, &str)] = &[
    (
        "keystore",
        "Where the device identity and trust anchors live.",
    ),
    (
        "log",
        "Logging (to the journal on Linux, /Library/Logs/Tessera/agent.log on macOS).",
    ),
    (
        "schedule",
        "Local overrides of the download schedule the server sends; an unset key takes the server's value.",
    ),
    ("device", "Local overrides of the detected device facts."),
];

/// The description of `key`, if the agent knows it.
pub fn key_info(key: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|k| k.key == key)
}

/// A fresh, commented configuration file: every key explained, defaults commented out.
/// With no `servers`, the `servers` line is a commented example (the file is then not
/// valid until one is set).
pub fn template(servers: &[String]) -> String {
    let mut out = String::from(
        "# Tessera agent configuration.\n\
         # Edit it with `tessera-agent config set KEY=VALUE` (comments and unknown keys are kept)\n\
         # or by hand; `tessera-agent config show` prints the effective values.\n\
         # Commented-out keys show their defaults.\n",
    );
    let write_key = |out: &mut String, info: &KeyInfo, name: &str| {
        if name == info.key {
            // Root keys are spaced apart; table keys sit under their header.
            out.push('\n');
        }
        let _ = writeln!(out, "# {name}: {}.", info.help);
        if info.key == "servers" {
            if servers.is_empty() {
                out.push_str("# servers = [\"https://tessera.example.com:8443\"]\n");
            } else {
                let mut list = toml_edit::Array::new();
                for s in servers {
                    list.push(s.as_str());
                }
                let _ = writeln!(out, "servers = {list}");
            }
        } else if let Some(default) = info.default {
            let _ = writeln!(out, "# {name} = {default}");
        }
    };
    for info in KEYS.iter().filter(|k| !k.key.contains('.')) {
        write_key(&mut out, info, info.key);
    }
    for (table, help) in TABLES {
        let _ = write!(out, "\n# {help}\n[{table}]\n");
        let prefix = format!("{table}.");
        for info in KEYS.iter().filter(|k| k.key.starts_with(&prefix)) {
            write_key(&mut out, info, &info.key[prefix.len()..]);
        }
    }
    out
}

/// Why an edit was refused. Nothing is written when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file exists but could not be read.
    #[error("cannot read the agent configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML at all, so it cannot be edited without losing content.
    #[error(
        "the agent configuration {path} is not valid TOML ({message}); fix it by hand, nothing was changed"
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key was malformed (`a..b`, empty, odd characters).
    #[error(
        "invalid key {key:?}: use dotted names of letters, digits, '_' and '-', such as log.level"
    )]
    BadKey {
        /// The key as given.
        key: String,
    },
    /// A key this version of the agent does not know.
    #[error("unknown configuration key `{key}`; known keys: {known}")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The known keys, comma-separated.
        known: String,
    },
    /// A `KEY=VALUE` argument without `=`.
    #[error("expected KEY=VALUE, got {arg:?}")]
    NotAnAssignment {
        /// The argument.
        arg: String,
    },
    /// A key's parent is a plain value, not a table (`log = 3` when setting `log.level`).
    #[error("cannot set `{key}`: `{parent}` in the file is not a table; unset `{parent}` first")]
    NotATable {
        /// The key being set.
        key: String,
        /// The offending parent key.
        parent: String,
    },
    /// The value does not fit the key.
    #[error("invalid value for `{key}`: {message}; nothing was written")]
    InvalidValue {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file as a whole would not be a valid agent configuration after the edit.
    #[error(
        "the agent configuration would be invalid after changing {keys}: {message}; nothing was written"
    )]
    Invalid {
        /// The keys changed, comma-separated.
        keys: String,
        /// What is wrong, as the loader says it.
        message: String,
    },
    /// Writing the new file failed; the old one is unchanged.
    #[error(
        "cannot write the agent configuration {path}: {source}; the previous file is unchanged"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An editable configuration file.
#[derive(Debug, Clone)]
pub struct ConfigEditor {
    doc: DocumentMut,
    // Keys the file held before any edit that this version does not know: kept, and
    // left out of the validity check so they do not block unrelated edits.
    unknown_before: Vec<Vec<String>>,
    // Keys changed since opening, for messages.
    changed: Vec<String>,
    original: String,
    // Started from the template because there was no file: setting `servers` then writes
    // the template's own `servers` line rather than a key above the header comment.
    fresh: bool,
}

impl ConfigEditor {
    /// Opens `path`; a missing file starts from the commented [`template`] (no servers).
    /// Returns the editor and whether the file existed.
    pub fn open(path: &Path) -> Result<(Self, bool), EditError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_text(&text)
                .map(|e| (e, true))
                .map_err(|e| match e {
                    EditError::Syntax { message, .. } => EditError::Syntax {
                        path: path.to_owned(),
                        message,
                    },
                    other => other,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut editor = Self::from_text(&template(&[]))?;
                editor.fresh = true;
                Ok((editor, false))
            }
            Err(source) => Err(EditError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// An editor over `text`.
    pub fn from_text(text: &str) -> Result<Self, EditError> {
        let doc: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| EditError::Syntax {
                    path: PathBuf::new(),
                    message: e.message().to_owned(),
                })?;
        let unknown_before = unknown_paths(&doc);
        Ok(Self {
            doc,
            unknown_before,
            changed: Vec::new(),
            original: text.to_owned(),
            fresh: false,
        })
    }

    /// The file's text as it stands (with the edits made so far).
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Whether any edit changed the text.
    pub fn is_modified(&self) -> bool {
        self.text() != self.original
    }

    /// Keys in the file (dotted) that this version of the agent does not know. The loader
    /// refuses them, so the agent will not start until they are removed (`config unset`).
    pub fn unknown_keys(&self) -> Vec<String> {
        unknown_paths(&self.doc)
            .into_iter()
            .map(|p| p.join("."))
            .collect()
    }

    /// The value of `key` as written in the file, or its default when the file does not
    /// set it; `None` when neither exists. Strings come back without quotes, other values
    /// as TOML (`["https://a", "https://b"]`, `30`, `true`).
    pub fn get(&self, key: &str) -> Result<Option<String>, EditError> {
        let path = split_key(key)?;
        if let Some(value) = lookup(self.doc.as_table(), &path) {
            return Ok(Some(render(value)));
        }
        match key_info(key) {
            Some(info) => Ok(info.default.map(|d| match d.parse::<Value>() {
                Ok(Value::String(s)) => s.value().clone(),
                _ => d.to_owned(),
            })),
            None if key_is_table_prefix(key) => Ok(None),
            None => Err(unknown_key(key)),
        }
    }

    /// Sets `key` to `raw` (read as [`KeyKind`] says) and checks the result; on error the
    /// editor is unchanged.
    pub fn set(&mut self, key: &str, raw: &str) -> Result<(), EditError> {
        self.set_all(&[(key, raw)])
    }

    /// Sets several keys at once: all of them or, on any error, none.
    pub fn set_all(&mut self, assignments: &[(&str, &str)]) -> Result<(), EditError> {
        if assignments.is_empty() {
            return Ok(());
        }
        let mut next = self.doc.clone();
        if self.fresh
            && let Some((_, raw)) = assignments.iter().find(|(k, _)| *k == "servers")
            && let Some(info) = key_info("servers")
            && let Value::Array(list) = read_value(info, raw)
        {
            let servers: Vec<String> = list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if let Ok(doc) = template(&servers).parse::<DocumentMut>() {
                next = doc;
            }
        }
        let mut keys = Vec::new();
        for (key, raw) in assignments {
            let path = split_key(key)?;
            let info = key_info(key).ok_or_else(|| unknown_key(key))?;
            let value = read_value(info, raw);
            check_one(info, &value)?;
            insert(&mut next, &path, key, value)?;
            keys.push((*key).to_owned());
        }
        self.commit(next, keys)
    }

    /// Removes `key` from the file (known or not); returns whether it was there. Refused
    /// when the file would then be invalid (for example without `servers`).
    pub fn unset(&mut self, key: &str) -> Result<bool, EditError> {
        self.unset_all(&[key]).map(|n| n > 0)
    }

    /// Removes several keys at once (all or none); returns how many were present.
    pub fn unset_all(&mut self, keys: &[&str]) -> Result<usize, EditError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut next = self.doc.clone();
        let mut removed = 0;
        let mut names = Vec::new();
        for key in keys {
            let path = split_key(key)?;
            if remove(&mut next, &path) {
                removed += 1;
            } else if key_info(key).is_none() && !key_is_table_prefix(key) {
                // Neither in the file nor a known key: most likely a typo.
                return Err(unknown_key(key));
            }
            names.push((*key).to_owned());
        }
        self.commit(next, names)?;
        Ok(removed)
    }

    /// Checks the file as it stands and returns the configuration it describes, ignoring
    /// unknown keys that were already in the file.
    pub fn check(&self) -> Result<AgentConfig, String> {
        let mut copy = self.doc.clone();
        for path in &self.unknown_before {
            remove(&mut copy, path);
        }
        AgentConfig::parse(&copy.to_string())
    }

    fn commit(&mut self, next: DocumentMut, keys: Vec<String>) -> Result<(), EditError> {
        let candidate = Self {
            doc: next,
            unknown_before: self.unknown_before.clone(),
            changed: Vec::new(),
            original: String::new(),
            fresh: false,
        };
        candidate.check().map_err(|message| EditError::Invalid {
            keys: keys
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            message,
        })?;
        self.doc = candidate.doc;
        self.changed.extend(keys);
        self.fresh = false;
        Ok(())
    }

    /// Checks the file and replaces `path` atomically with it, keeping the old file's mode
    /// (0644 for a new file: the configuration holds no secrets). The parent directory is
    /// created (0755) when missing.
    pub fn save(&self, path: &Path) -> Result<(), EditError> {
        self.check().map_err(|message| EditError::Invalid {
            keys: if self.changed.is_empty() {
                "nothing".to_owned()
            } else {
                self.changed.join(", ")
            },
            message,
        })?;
        write_atomically(path, DEFAULT_CONFIG_MODE, self.text().as_bytes()).map_err(|source| {
            EditError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }
}

fn unknown_key(key: &str) -> EditError {
    EditError::UnknownKey {
        key: key.to_owned(),
        known: KEYS.iter().map(|k| k.key).collect::<Vec<_>>().join(", "),
    }
}

fn key_is_table_prefix(key: &str) -> bool {
    TABLES.iter().any(|(t, _)| *t == key)
}

fn split_key(key: &str) -> Result<Vec<String>, EditError> {
    let parts: Vec<String> = key.split('.').map(str::to_owned).collect();
    let ok = parts.iter().all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if ok && parts.len() <= 8 {
        Ok(parts)
    } else {
        Err(EditError::BadKey {
            key: key.to_owned(),
        })
    }
}

/// Reads a command-line value for `info`: text keys take the text as it is (so
/// `device.hostname=0042` stays a string), others are read as TOML.
fn read_value(info: &KeyInfo, raw: &str) -> Value {
    let parsed = raw.trim().parse::<Value>().ok();
    let quoted = raw.trim_start().starts_with(['"', '\'']);
    let mut value = match (info.kind, parsed) {
        (KeyKind::Text, Some(v @ Value::String(_))) if quoted => v,
        (KeyKind::TextList, Some(v @ Value::Array(_)))
        | (KeyKind::Bool | KeyKind::Integer, Some(v)) => v,
        (KeyKind::TextList, Some(Value::String(s))) if quoted => {
            Value::Array(std::iter::once(s.value().clone()).collect())
        }
        (KeyKind::TextList, _) => Value::Array(std::iter::once(raw.to_owned()).collect()),
        // Bool and integer keys given something else: the check names the key and type.
        (KeyKind::Text | KeyKind::Bool | KeyKind::Integer, _) => Value::from(raw),
    };
    value.decor_mut().clear();
    value
}

/// Checks one value against the key's type with every other key valid, so the error names
/// the key that is wrong rather than the file.
fn check_one(info: &KeyInfo, value: &Value) -> Result<(), EditError> {
    let mut doc = DocumentMut::new();
    // Plain http is allowed here; whether it is allowed in the file is checked afterwards.
    doc.insert(
        "servers",
        Item::Value(Value::Array(
            std::iter::once("https://placeholder.invalid").collect(),
        )),
    );
    doc.insert("ocs_compat", toml_edit::value(true));
    let path: Vec<String> = info.key.split('.').map(str::to_owned).collect();
    insert(&mut doc, &path, info.key, value.clone())?;
    AgentConfig::parse(&doc.to_string())
        .map(|_| ())
        .map_err(|message| EditError::InvalidValue {
            key: info.key.to_owned(),
            message,
        })
}

fn insert(
    doc: &mut DocumentMut,
    path: &[String],
    key: &str,
    mut value: Value,
) -> Result<(), EditError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(EditError::BadKey {
            key: key.to_owned(),
        });
    };
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for (depth, part) in parents.iter().enumerate() {
        let not_a_table = || EditError::NotATable {
            key: key.to_owned(),
            parent: path[..=depth].join("."),
        };
        if table.get(part).is_none() {
            let mut fresh = Table::new();
            fresh.set_implicit(false);
            table.insert(part, Item::Table(fresh));
        }
        table = table
            .get_mut(part)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(not_a_table)?;
    }
    match table.get_mut(last) {
        Some(Item::Value(old)) => {
            // Keep the old value's surroundings (a trailing comment, the spacing).
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(other) => *other = Item::Value(value),
        None => {
            table.insert(last, Item::Value(value));
        }
    }
    Ok(())
}

fn remove(doc: &mut DocumentMut, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for part in parents {
        match table.get_mut(part).and_then(Item::as_table_like_mut) {
            Some(t) => table = t,
            None => return false,
        }
    }
    table.remove(last).is_some()
}

fn lookup<'a>(root: &'a Table, path: &[String]) -> Option<&'a Item> {
    let (first, rest) = path.split_first()?;
    let mut item = root.get(first)?;
    for part in rest {
        item = item.as_table_like()?.get(part)?;
    }
    Some(item)
}

fn render(item: &Item) -> String {
    match item {
        Item::Value(Value::String(s)) => s.value().clone(),
        Item::Value(v) => {
            let mut v = v.clone();
            v.decor_mut().clear();
            v.to_string()
        }
        Item::Table(t) => t.to_string(),
        Item::ArrayOfTables(a) => a.to_string(),
        Item::None => String::new(),
    }
}

fn unknown_paths(doc: &DocumentMut) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (name, item) in doc.as_table() {
        let known_table = TABLES.iter().any(|(t, _)| *t == name);
        if !known_table && key_info(name).is_none() {
            out.push(vec![name.to_owned()]);
            continue;
        }
        if let (true, Some(table)) = (known_table, item.as_table_like()) {
            for (sub, _) in table.iter() {
                if key_info(&format!("{name}.{sub}")).is_none() {
                    out.push(vec![name.to_owned(), sub.to_owned()]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"# Site configuration, managed by hand.
servers = [
  "https://primary:8443", # the main one
]

proxy = "http://squid:3128" # read by a newer agent

[log]
# chatty for now
level = "debug"   # lower after rollout

[vendor]
x = 1
"#;

    #[test]
    fn edits_keep_comments_order_and_unknown_keys() {
        let mut e = ConfigEditor::from_text(SITE).unwrap();
        assert_eq!(e.unknown_keys(), ["proxy", "vendor"]);
        e.set("log.level", "warn").unwrap();
        e.set("schedule.frag_latency", "30").unwrap();
        e.set("data_dir", "/srv/tessera").unwrap();
        assert_eq!(
            e.text(),
            r#"# Site configuration, managed by hand.
servers = [
  "https://primary:8443", # the main one
]

proxy = "http://squid:3128" # read by a newer agent
data_dir = "/srv/tessera"

[log]
# chatty for now
level = "warn"   # lower after rollout

[vendor]
x = 1

[schedule]
frag_latency = 30
"#
        );
        assert!(e.unset("schedule.frag_latency").unwrap());
        assert!(!e.unset("device.serial").unwrap());
        assert!(e.unset("vendor").unwrap());
        assert_eq!(e.unknown_keys(), ["proxy"]);
    }

    #[test]
    fn values_are_read_by_kind() {
        let mut e = ConfigEditor::from_text("servers = [\"https://a\"]\n").unwrap();
        e.set_all(&[
            ("servers", r#"["https://a", "https://b"]"#),
            ("device.hostname", "0042"),
            ("device.serial", "\"C02 X\""),
            ("ocs_compat", "true"),
        ])
        .unwrap();
        assert_eq!(
            e.get("servers").unwrap().unwrap(),
            r#"["https://a", "https://b"]"#
        );
        assert_eq!(e.get("device.hostname").unwrap().unwrap(), "0042");
        assert_eq!(e.get("device.serial").unwrap().unwrap(), "C02 X");
        assert_eq!(e.get("ocs_compat").unwrap().unwrap(), "true");
        e.set("servers", "https://only").unwrap();
        assert_eq!(e.get("servers").unwrap().unwrap(), r#"["https://only"]"#);
        let config = e.check().unwrap();
        assert_eq!(config.device.hostname.as_deref(), Some("0042"));
    }

    #[test]
    fn defaults_come_back_for_unset_keys() {
        let e = ConfigEditor::from_text("servers = [\"https://a\"]\n").unwrap();
        assert_eq!(e.get("log.level").unwrap().as_deref(), Some("info"));
        assert_eq!(
            e.get("data_dir").unwrap().as_deref(),
            Some("/var/lib/tessera")
        );
        assert_eq!(e.get("device.hostname").unwrap(), None);
        assert!(matches!(
            e.get("log.levl"),
            Err(EditError::UnknownKey { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_by_key_and_change_nothing() {
        let mut e = ConfigEditor::from_text(SITE).unwrap();
        let before = e.text();
        let err = e.set("schedule.frag_latency", "soon").unwrap_err();
        assert!(
            matches!(&err, EditError::InvalidValue { key, .. } if key == "schedule.frag_latency"),
            "{err}"
        );
        let err = e.set("servers", "http://plain").unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let err = e
            .set_all(&[("log.level", "info"), ("keystore.kind", "vault")])
            .unwrap_err();
        assert!(err.to_string().contains("keystore.kind"), "{err}");
        assert!(matches!(
            e.set("severs", "x"),
            Err(EditError::UnknownKey { .. })
        ));
        assert!(matches!(
            e.set("log..level", "x"),
            Err(EditError::BadKey { .. })
        ));
        assert!(
            e.unset("servers")
                .unwrap_err()
                .to_string()
                .contains("servers")
        );
        assert_eq!(e.text(), before);
        assert!(!e.is_modified());
    }

    #[test]
    fn all_or_nothing_lets_dependent_keys_change_together() {
        let mut e = ConfigEditor::from_text(SITE).unwrap();
        e.set_all(&[("servers", "http://ocs.local"), ("ocs_compat", "true")])
            .unwrap();
        assert!(e.check().unwrap().ocs_compat);
    }

    #[test]
    fn parent_that_is_not_a_table_is_named() {
        let mut e = ConfigEditor::from_text("servers = [\"https://a\"]\nlog = 3\n").unwrap();
        let err = e.set("log.level", "info").unwrap_err();
        assert!(
            matches!(&err, EditError::NotATable { parent, .. } if parent == "log"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_starts_from_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let (mut e, existed) = ConfigEditor::open(&path).unwrap();
        assert!(!existed);
        assert!(matches!(
            e.set("log.level", "debug"),
            Err(EditError::Invalid { .. })
        ));
        e.set_all(&[("log.level", "debug"), ("servers", "https://a")])
            .unwrap();
        e.set("data_dir", "/srv/t").unwrap();
        e.save(&path).unwrap();
        let expected = template(&["https://a".to_owned()])
            .replace(
                "servers = [\"https://a\"]\n",
                "servers = [\"https://a\"]\ndata_dir = \"/srv/t\"\n",
            )
            .replace("[log]\n", "[log]\nlevel = \"debug\"\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn template_documents_every_key_and_its_defaults_are_the_real_ones() {
        let text = template(&["https://t:8443".to_owned()]);
        for info in KEYS {
            let name = info.key.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("# {name}: {}.", info.help)),
                "{} missing",
                info.key
            );
        }
        let parsed = AgentConfig::parse(&text).unwrap();
        assert_eq!(parsed, AgentConfig::for_server("https://t:8443"));
        // Uncommenting every default must give the same configuration.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") && !rest.contains(": ") => rest,
                _ => l,
            })
            .flat_map(|l| [l, "\n"])
            .collect();
        assert_eq!(AgentConfig::parse(&uncommented).unwrap(), parsed);
        // A template without servers is refused until one is set.
        let mut e = ConfigEditor::from_text(&template(&[])).unwrap();
        assert!(e.check().is_err());
        e.set("servers", "https://t:8443").unwrap();
        assert_eq!(e.check().unwrap(), parsed);
    }

    #[test]
    fn every_struct_key_is_documented() {
        // A fully populated configuration serialised: each leaf must be in KEYS.
        let mut config = AgentConfig::for_server("https://a");
        config.keystore.path = Some("/k".into());
        config.ca_file = Some("/ca.pem".into());
        config.schedule.period_length = std::num::NonZeroU32::new(1);
        config.schedule.frag_latency = Some(1);
        config.schedule.cycle_latency = Some(1);
        config.schedule.period_latency = Some(1);
        config.schedule.execution_timeout_minutes = Some(1);
        config.schedule.check_in_minutes = Some(1);
        config.device.hostname = Some("h".into());
        config.device.serial = Some("s".into());
        let doc: DocumentMut = toml::to_string(&config).unwrap().parse().unwrap();
        let mut leaves = Vec::new();
        for (k, item) in doc.as_table() {
            match item.as_table_like() {
                Some(t) => leaves.extend(t.iter().map(|(s, _)| format!("{k}.{s}"))),
                None => leaves.push(k.to_owned()),
            }
        }
        let mut documented: Vec<_> = KEYS.iter().map(|k| k.key.to_owned()).collect();
        leaves.sort();
        documented.sort();
        assert_eq!(leaves, documented);
    }
}
