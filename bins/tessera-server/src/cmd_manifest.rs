//! `tessera-server manifest show|resolve` and `tessera-server makecatalogs`: thin front ends
//! over `tessera-manifest`. The repository is `<data>/repo`, or `--repo DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tessera_manifest::{
    Decision, FactValue, Facts, MakeCatalogsOptions, Repo, Resolved, Timestamp, make_catalogs,
    resolve,
};

/// Where the Munki repository is.
#[derive(Args, Debug, Clone)]
pub(crate) struct RepoArg {
    /// Munki repository directory (default: `<data>/repo`).
    #[arg(long, value_name = "DIR", global = true)]
    repo: Option<PathBuf>,
}

impl RepoArg {
    fn open(&self, data: &Path) -> anyhow::Result<Repo> {
        let root = self.repo.clone().unwrap_or_else(|| data.join("repo"));
        Ok(Repo::open(&root)?)
    }
}

/// `manifest` subcommands.
#[derive(Args, Debug, Clone)]
pub(crate) struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
    #[command(flatten)]
    repo: RepoArg,
}

#[derive(Subcommand, Debug, Clone)]
enum ManifestCommand {
    /// Print a manifest as an XML plist (sorted keys, every key kept).
    Show {
        /// Manifest name: a path under manifests/, e.g. `computers/C02XYZ`.
        name: String,
    },
    /// Resolve a manifest for a device and print what it must have, and why.
    Resolve {
        /// Primary manifest name.
        name: String,
        /// Device facts: a JSON object or a plist dict (Munki fact names, e.g. `os_vers`,
        /// `machine_type`, `applications`). `date` may be an RFC 3339 string; it defaults to now.
        #[arg(long, value_name = "FILE")]
        facts: PathBuf,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `makecatalogs` arguments (Munki's flags).
#[derive(Args, Debug, Clone)]
pub(crate) struct MakecatalogsArgs {
    /// Do not check that installer items exist under pkgs/.
    #[arg(long)]
    skip_pkg_check: bool,
    /// Keep pkginfos whose installer item is missing.
    #[arg(long)]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    repo: RepoArg,
}

pub(crate) fn run(args: &ManifestArgs, data: &Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match &args.command {
        ManifestCommand::Show { name } => {
            let repo = args.repo.open(data)?;
            let manifest = repo.read_manifest(name)?;
            out.write_all(&manifest.to_xml()?)?;
        }
        ManifestCommand::Resolve { name, facts, json } => {
            let repo = args.repo.open(data)?;
            let facts = read_facts(facts)?;
            let resolved = resolve(&repo, name, &facts)?;
            if *json {
                // Warnings are in the JSON too; the log line is for a person watching stderr.
                for warning in &resolved.warnings {
                    tracing::warn!("{warning}");
                }
                serde_json::to_writer_pretty(&mut out, &resolved)?;
                writeln!(out)?;
            } else {
                print_resolved(&mut out, &resolved)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_makecatalogs(args: &MakecatalogsArgs, data: &Path) -> anyhow::Result<ExitCode> {
    let repo = args.repo.open(data)?;
    let report = make_catalogs(
        &repo,
        MakeCatalogsOptions {
            skip_pkg_check: args.skip_pkg_check,
            force: args.force,
        },
    )?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for warning in &report.warnings {
            writeln!(out, "WARNING: {warning}")?;
        }
        for removed in &report.removed {
            writeln!(out, "Removed stale catalogs/{removed}")?;
        }
        for (name, count) in &report.catalogs {
            writeln!(out, "Created catalogs/{name} ({count} items)")?;
        }
        if report.icon_hashes_written {
            writeln!(out, "Created icons/_icon_hashes.plist")?;
        }
    }
    // Like Munki 7: warnings are reported, and the run still succeeds.
    Ok(ExitCode::SUCCESS)
}

fn read_facts(path: &Path) -> anyhow::Result<Facts> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading facts file {}", path.display()))?;
    let mut facts = if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let serde_json::Value::Object(map) = json else {
            bail!("facts file {} must hold a JSON object", path.display());
        };
        let mut facts = Facts::new();
        for (key, value) in map {
            if let Some(value) = json_fact(&key, value) {
                facts.set(key, value);
            }
        }
        facts
    } else {
        Facts::from_plist_bytes(&bytes, &format!("facts file {}", path.display()))
            .context("the facts file is neither a JSON object nor a plist dict")?
    };
    if facts.get("date").is_none() {
        facts.set_date(Timestamp::from_system_time(SystemTime::now()));
    }
    Ok(facts)
}

fn json_fact(key: &str, value: serde_json::Value) -> Option<FactValue> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => FactValue::Bool(b),
        J::Number(n) => n.as_i64().map_or_else(
            || FactValue::Real(n.as_f64().unwrap_or(0.0)),
            FactValue::Integer,
        ),
        J::String(s) if key == "date" => FactValue::Date(Timestamp::parse(&s)?),
        J::String(s) => FactValue::String(s),
        J::Array(items) => {
            FactValue::Array(items.into_iter().filter_map(|v| json_fact("", v)).collect())
        }
        J::Object(map) => FactValue::Dict(
            map.into_iter()
                .filter_map(|(k, v)| json_fact(&k, v).map(|v| (k, v)))
                .collect(),
        ),
    })
}

fn print_resolved(out: &mut impl Write, resolved: &Resolved) -> std::io::Result<()> {
    writeln!(out, "primary manifest: {}", resolved.primary)?;
    writeln!(
        out,
        "manifests processed: {}",
        resolved.manifests.join(", ")
    )?;
    let sections: [(&str, &[Decision]); 4] = [
        ("managed_installs", &resolved.managed_installs),
        ("removals", &resolved.removals),
        ("managed_updates", &resolved.managed_updates),
        ("optional_installs", &resolved.optional_installs),
    ];
    for (title, decisions) in sections {
        writeln!(out, "{title}:")?;
        if decisions.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for d in decisions {
            write!(
                out,
                "  {} {} from catalog {} <- {}",
                d.name, d.version, d.catalog, d.requested
            )?;
            if let Some(source) = resolved.source(d.source) {
                write!(out, " in {}", source.manifest)?;
                if source.include_chain.len() > 1 {
                    write!(out, " (via {})", source.include_chain.join(" -> "))?;
                }
                if !source.conditions.is_empty() {
                    write!(out, " when {}", source.conditions.join(" and "))?;
                }
            }
            match &d.reason {
                tessera_manifest::Reason::Listed => {}
                tessera_manifest::Reason::RequiredBy(item) => write!(out, " [required by {item}]")?,
                tessera_manifest::Reason::UpdateFor(item) => write!(out, " [update for {item}]")?,
                tessera_manifest::Reason::Autoremove => write!(out, " [autoremove]")?,
            }
            writeln!(out)?;
        }
    }
    for (title, listed) in [
        ("featured_items", &resolved.featured_items),
        ("default_installs", &resolved.default_installs),
    ] {
        if !listed.is_empty() {
            let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
            writeln!(out, "{title}: {}", names.join(", "))?;
        }
    }
    if !resolved.warnings.is_empty() {
        writeln!(out, "warnings:")?;
        for w in &resolved.warnings {
            writeln!(out, "  {w}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_facts_keep_types_and_parse_the_date() {
        let json: serde_json::Value = serde_json::json!({
            "os_vers_major": 14, "machine_type": "laptop", "x86_64_capable": false,
            "date": "2016-03-02T00:00:00Z", "ipv4_address": ["10.0.0.1"], "skip": null
        });
        let serde_json::Value::Object(map) = json else {
            unreachable!()
        };
        let facts: Vec<(String, Option<FactValue>)> = map
            .into_iter()
            .map(|(k, v)| (k.clone(), json_fact(&k, v)))
            .collect();
        let get = |name: &str| {
            facts
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(get("os_vers_major"), Some(FactValue::Integer(14)));
        assert_eq!(get("x86_64_capable"), Some(FactValue::Bool(false)));
        assert_eq!(
            get("date"),
            Some(FactValue::Date(Timestamp(1_456_876_800.0)))
        );
        assert_eq!(get("ipv4_address"), Some(FactValue::strings(["10.0.0.1"])));
        assert_eq!(get("skip"), None);
    }
}
