//! `tessera-agent config show/get/set/unset`: read and edit the configuration file in place,
//! keeping its comments and unknown keys (tessera_agent::config::edit does the work).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tessera_agent::config::edit::{ConfigEditor, EditError, KEYS, key_info};

/// Arguments of `config`.
#[derive(Args, Debug)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Print the effective configuration: the file's values with defaults filled in.
    Show {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one value (strings without quotes; lists and numbers as TOML); exit status 1
    /// when the key is neither set nor has a default.
    Get {
        /// A dotted key, such as `log.level`.
        key: String,
    },
    /// Set keys, all or none: `servers=https://a` (or `servers=["https://a","https://b"]`),
    /// `log.level=debug`, `schedule.frag_latency=30` … The file is checked before it is
    /// written and keeps its comments and unknown keys.
    Set {
        /// KEY=VALUE pairs.
        #[arg(value_name = "KEY=VALUE", required = true)]
        assignments: Vec<String>,
    },
    /// Remove keys from the file (they return to their defaults), all or none.
    Unset {
        /// Dotted keys.
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// List every key with what it does and its default.
    Keys,
}

/// `tessera-agent config`.
pub(crate) fn run(config: &Path, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    match &args.action {
        ConfigAction::Show { json } => show(config, *json, out),
        ConfigAction::Get { key } => get(config, key, out),
        ConfigAction::Set { assignments } => set(config, assignments, out),
        ConfigAction::Unset { keys } => unset(config, keys, out),
        ConfigAction::Keys => {
            for info in KEYS {
                let default = info.default.unwrap_or("(none)");
                writeln!(out, "{:<36} default {default}\n    {}", info.key, info.help)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open_existing(config: &Path) -> anyhow::Result<ConfigEditor> {
    let (editor, existed) = ConfigEditor::open(config)?;
    if !existed {
        bail!(
            "no agent configuration at {}; create one with `tessera-agent install --server URL` or `tessera-agent config set servers=URL` (or pass --config PATH)",
            config.display()
        );
    }
    warn_unknown(config, &editor);
    Ok(editor)
}

fn warn_unknown(config: &Path, editor: &ConfigEditor) {
    let unknown = editor.unknown_keys();
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} has keys this agent does not know: {}; the agent will not start until they are removed (`tessera-agent config unset KEY`)",
            config.display(),
            unknown.join(", ")
        );
    }
}

fn show(config: &Path, json: bool, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let editor = open_existing(config)?;
    let effective = editor.check().map_err(|message| {
        anyhow::anyhow!(
            "invalid agent configuration {}: {message}",
            config.display()
        )
    })?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&effective)?)?;
    } else {
        writeln!(out, "# {} with defaults filled in", config.display())?;
        write!(
            out,
            "{}",
            toml::to_string(&effective).context("formatting the configuration")?
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn get(config: &Path, key: &str, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let editor = open_existing(config)?;
    if let Some(value) = editor.get(key)? {
        writeln!(out, "{value}")?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "`{key}` is not set in {} and has no default",
            config.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn set(
    config: &Path,
    assignments: &[String],
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let pairs = assignments
        .iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim(), v))
                .ok_or_else(|| EditError::NotAnAssignment { arg: a.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (mut editor, existed) = ConfigEditor::open(config)?;
    warn_unknown(config, &editor);
    editor.set_all(&pairs)?;
    save(config, &editor)?;
    for (key, _) in &pairs {
        writeln!(out, "{key} = {}", editor.get(key)?.unwrap_or_default())?;
    }
    if existed {
        eprintln!("updated {}; {}", config.display(), restart_hint());
    } else {
        eprintln!("created {}", config.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn unset(config: &Path, keys: &[String], out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let mut editor = open_existing(config)?;
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let removed = editor.unset_all(&names)?;
    if removed > 0 {
        save(config, &editor)?;
        eprintln!("updated {}; {}", config.display(), restart_hint());
    }
    for key in keys {
        // An unknown key (a typo or a newer agent's) has no default to fall back to.
        let default = match key_info(key) {
            Some(_) => editor.get(key)?,
            None => None,
        };
        match default {
            Some(value) => writeln!(out, "{key} = {value} (default)")?,
            None => writeln!(out, "{key} unset")?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn save(config: &Path, editor: &ConfigEditor) -> anyhow::Result<()> {
    editor.save(config).map_err(|e| match &e {
        EditError::Write { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            anyhow::anyhow!("{e}; run it with sudo")
        }
        _ => e.into(),
    })
}

fn restart_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "the service reads it when it starts: sudo launchctl kickstart -k system/com.tessera.agent"
    } else {
        "the service reads it when it starts: sudo systemctl restart tessera-agent"
    }
}
