//! `tessera-agent schedule simulate`: runs the real scheduler (tessera-schedule) over a
//! package list with every transfer succeeding instantly, and prints when each fragment
//! and each action would happen and how long the deployment takes, so an admin can see the
//! cost of a schedule before starting it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tessera_schedule::simulate::{Simulation, simulate};
use tessera_schedule::{
    Action, PackageId, PackageSpec, Priority, ResultCode, ScheduleConfig, Timestamp,
};

/// `schedule` subcommands.
#[derive(Args, Debug, Clone)]
pub(crate) struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum ScheduleCommand {
    /// Simulate delivering packages on the OCS schedule: the timeline and the total time.
    Simulate(SimulateArgs),
}

/// Arguments of `schedule simulate`.
#[derive(Args, Debug, Clone)]
pub(crate) struct SimulateArgs {
    /// Packages: a JSON array of {"id", "priority", "fragments"[, "fragment_size"]}.
    #[arg(long, value_name = "FILE")]
    packages: PathBuf,
    /// Schedule configuration, JSON or TOML (by extension; `.toml` is TOML): period_length,
    /// frag_latency, cycle_latency, period_latency (seconds), timeout (days), … Missing keys
    /// take the OCS server's defaults. This is the global `--config` option: for this
    /// command it names the schedule configuration, and only when given on the command
    /// line (neither its default nor TESSERA_AGENT_CONFIG apply here).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Stop after this many actions (a guard for enormous deployments).
    #[arg(long, value_name = "N", default_value_t = 50_000_000)]
    max_steps: u64,
}

/// One entry of the packages file.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageEntry {
    id: u64,
    priority: u32,
    fragments: u32,
    /// Bytes per fragment, to total the transfer volume.
    fragment_size: Option<u64>,
}

/// The result of one package in the simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PackageOutcome {
    id: u64,
    priority: u32,
    fragments: u32,
    bytes: Option<u64>,
    result: Option<String>,
    completed_after_seconds: Option<u64>,
}

/// The whole answer, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
struct Report {
    config: ScheduleConfig,
    total_seconds: u64,
    total_bytes: Option<u64>,
    packages: Vec<PackageOutcome>,
    timeline: Vec<TimelineLine>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct TimelineLine {
    at_seconds: u64,
    #[serde(flatten)]
    action: Action,
}

/// Whether `--config` was written on the command line. The option is shared with the
/// global agent `--config`, whose default and environment variable would otherwise
/// always fill it in with the agent's own configuration file.
fn config_on_command_line(argv: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    argv.into_iter().any(|arg| {
        arg.to_str()
            .is_some_and(|arg| arg == "--config" || arg.starts_with("--config="))
    })
}

pub(crate) fn run(args: &ScheduleArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ScheduleCommand::Simulate(simulate_args) => {
            let mut simulate_args = simulate_args.clone();
            if !config_on_command_line(std::env::args_os()) {
                simulate_args.config = None;
            }
            let report = simulate_files(&simulate_args)?;
            let text = if simulate_args.json {
                let mut text = serde_json::to_string_pretty(&report)?;
                text.push('\n');
                text
            } else {
                render(&report)
            };
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .context("writing the simulation to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

fn load_config(path: &Path) -> anyhow::Result<ScheduleConfig> {
    let text = read(path, "schedule configuration")?;
    let is_toml = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
    let parsed = if is_toml {
        toml::from_str(&text).map_err(anyhow::Error::from)
    } else {
        serde_json::from_str(&text).map_err(anyhow::Error::from)
    };
    parsed.with_context(|| {
        format!(
            "{} is not a valid schedule configuration ({}); expected keys period_length (≥ 1), \
             frag_latency, cycle_latency, period_latency (seconds), timeout (days), \
             execution_timeout, on, max_fetch_failures, max_backoff_cycles",
            path.display(),
            if is_toml {
                "TOML"
            } else {
                "JSON; name the file *.toml for TOML"
            }
        )
    })
}

fn load_packages(path: &Path) -> anyhow::Result<Vec<PackageEntry>> {
    let text = read(path, "packages")?;
    let entries: Vec<PackageEntry> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid package list; expected a JSON array of \
             {{\"id\": number, \"priority\": number, \"fragments\": number[, \"fragment_size\": bytes]}}",
            path.display()
        )
    })?;
    if entries.is_empty() {
        bail!(
            "{} lists no packages; there is nothing to simulate",
            path.display()
        );
    }
    Ok(entries)
}

fn simulate_files(args: &SimulateArgs) -> anyhow::Result<Report> {
    let config = match &args.config {
        Some(path) => load_config(path)?,
        None => ScheduleConfig::default(),
    };
    let entries = load_packages(&args.packages)?;
    simulate_entries(config, &entries, args.max_steps)
        .with_context(|| format!("simulating {}", args.packages.display()))
}

fn simulate_entries(
    config: ScheduleConfig,
    entries: &[PackageEntry],
    max_steps: u64,
) -> anyhow::Result<Report> {
    let specs: Vec<PackageSpec> = entries
        .iter()
        .map(|entry| PackageSpec {
            id: PackageId(entry.id),
            priority: Priority(entry.priority),
            fragments: entry.fragments,
        })
        .collect();
    let simulation = simulate(config, &specs, Timestamp(0), max_steps)?;
    Ok(report(config, entries, &simulation))
}

fn report(config: ScheduleConfig, entries: &[PackageEntry], simulation: &Simulation) -> Report {
    let mut finals: BTreeMap<PackageId, (ResultCode, Timestamp)> = BTreeMap::new();
    for entry in &simulation.timeline {
        if let Action::Report { package, result } = entry.action {
            finals.insert(package, (result, entry.at));
        }
    }
    let packages: Vec<PackageOutcome> = entries
        .iter()
        .map(|entry| {
            let done = finals.get(&PackageId(entry.id));
            PackageOutcome {
                id: entry.id,
                priority: entry.priority,
                fragments: entry.fragments,
                bytes: entry
                    .fragment_size
                    .map(|size| size.saturating_mul(u64::from(entry.fragments))),
                result: done.map(|(result, _)| result.to_string()),
                completed_after_seconds: done
                    .map(|(_, at)| at.seconds_since(simulation.started_at)),
            }
        })
        .collect();
    let total_bytes = packages
        .iter()
        .map(|p| p.bytes)
        .try_fold(0u64, |sum, bytes| bytes.map(|b| sum.saturating_add(b)));
    Report {
        config,
        total_seconds: simulation.total_seconds(),
        total_bytes,
        packages,
        timeline: simulation
            .timeline
            .iter()
            .map(|entry| TimelineLine {
                at_seconds: entry.at.seconds_since(simulation.started_at),
                action: entry.action,
            })
            .collect(),
    }
}

/// `3d 04:05:06` for a number of seconds.
fn duration(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "{days}d {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn render(report: &Report) -> String {
    let config = &report.config;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "schedule: PERIOD_LENGTH={} FRAG_LATENCY={}s CYCLE_LATENCY={}s PERIOD_LATENCY={}s TIMEOUT={}d",
        config.period_length,
        config.frag_latency,
        config.cycle_latency,
        config.period_latency,
        config.timeout
    );
    let fragments: BTreeMap<u64, u32> = report
        .packages
        .iter()
        .map(|p| (p.id, p.fragments))
        .collect();
    for line in &report.timeline {
        let what = match line.action {
            Action::Fetch { package, fragment } => format!(
                "fetch    {package} fragment {fragment}/{}",
                fragments.get(&package.0).copied().unwrap_or(fragment)
            ),
            Action::Execute { package } => format!("execute  {package}"),
            Action::Report { package, result } => format!("report   {package} {result}"),
            Action::Wait { .. } | Action::Idle => continue,
        };
        let _ = writeln!(
            out,
            "{:>10}s  {}  {what}",
            line.at_seconds,
            duration(line.at_seconds)
        );
    }
    let _ = writeln!(out, "packages:");
    for package in &report.packages {
        let result = package.result.as_deref().unwrap_or("not finished");
        let when = package
            .completed_after_seconds
            .map_or_else(String::new, |s| format!(" after {}", duration(s)));
        let _ = writeln!(
            out,
            "  {} PRI {} {} fragment(s): {result}{when}",
            package.id, package.priority, package.fragments
        );
    }
    let failed = report
        .packages
        .iter()
        .filter(|p| {
            p.result
                .as_deref()
                .is_none_or(|r| !r.starts_with("SUCCESS"))
        })
        .count();
    let volume = report
        .total_bytes
        .map_or_else(String::new, |bytes| format!(", {bytes} bytes"));
    let _ = writeln!(
        out,
        "total: {} package(s){volume}, complete after {} ({} s)",
        report.packages.len(),
        duration(report.total_seconds),
        report.total_seconds
    );
    if failed > 0 {
        let _ = writeln!(
            out,
            "warning: {failed} package(s) would not succeed (ERR_TIMEOUT means TIMEOUT={} days is \
             shorter than this schedule needs: raise TIMEOUT or lower the latencies)",
            config.timeout
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }

    fn args(packages: PathBuf, config: Option<PathBuf>) -> SimulateArgs {
        SimulateArgs {
            packages,
            config,
            json: false,
            max_steps: 1_000_000,
        }
    }

    #[test]
    fn json_config_and_packages_give_the_hand_computed_timeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packages = write(
            &dir,
            "p.json",
            r#"[{"id": 1, "priority": 1, "fragments": 2, "fragment_size": 1000},
                {"id": 2, "priority": 2, "fragments": 1, "fragment_size": 500}]"#,
        );
        let config = write(
            &dir,
            "c.json",
            r#"{"period_length": 10, "frag_latency": 1, "cycle_latency": 10, "period_latency": 100, "timeout": 7}"#,
        );
        let report = simulate_files(&args(packages, Some(config))).expect("simulation");
        // Same trace as crates/schedule/tests/traces.rs (mixed priorities).
        let times: Vec<u64> = report.timeline.iter().map(|l| l.at_seconds).collect();
        assert_eq!(times, [0, 11, 12, 23, 23, 34, 34]);
        assert_eq!(report.total_seconds, 34);
        assert_eq!(report.total_bytes, Some(2500));
        let text = render(&report);
        assert!(text.contains("fetch    1 fragment 2/2"), "{text}");
        assert!(text.contains("complete after 0d 00:00:34 (34 s)"), "{text}");
        assert!(!text.contains("warning"), "{text}");
    }

    #[test]
    fn toml_config_is_read_by_extension_and_timeouts_are_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packages = write(
            &dir,
            "p.json",
            r#"[{"id": 5, "priority": 10, "fragments": 50}]"#,
        );
        let config = write(
            &dir,
            "c.toml",
            "period_length = 10\nfrag_latency = 60\ncycle_latency = 3600\nperiod_latency = 0\ntimeout = 1\n",
        );
        let report = simulate_files(&args(packages, Some(config))).expect("simulation");
        assert_eq!(report.packages[0].result.as_deref(), Some("ERR_TIMEOUT"));
        assert!(render(&report).contains("warning: 1 package(s) would not succeed"));
    }

    #[test]
    fn bad_inputs_name_the_file_and_the_expected_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packages = write(&dir, "p.json", r#"[{"id": 1, "prio": 1}]"#);
        let err = simulate_files(&args(packages.clone(), None)).expect_err("bad packages");
        let text = format!("{err:#}");
        assert!(
            text.contains("p.json") && text.contains("JSON array"),
            "{text}"
        );

        let good = write(
            &dir,
            "q.json",
            r#"[{"id": 1, "priority": 1, "fragments": 1}]"#,
        );
        let config = write(&dir, "c.toml", "period_length = 0\n");
        let err = simulate_files(&args(good.clone(), Some(config))).expect_err("bad config");
        let text = format!("{err:#}");
        assert!(
            text.contains("c.toml") && text.contains("period_length"),
            "{text}"
        );

        let missing = dir.path().join("nope.json");
        let err = simulate_files(&args(missing, None)).expect_err("missing file");
        assert!(format!("{err:#}").contains("nope.json"));

        let dup = write(
            &dir,
            "d.json",
            r#"[{"id": 1, "priority": 1, "fragments": 1}, {"id": 1, "priority": 2, "fragments": 1}]"#,
        );
        let err = simulate_files(&args(dup, None)).expect_err("duplicate id");
        assert!(format!("{err:#}").contains("listed twice"));
    }

    #[test]
    fn only_an_explicit_config_option_names_the_schedule_configuration() {
        let argv = |args: &[&str]| {
            args.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert!(config_on_command_line(argv(&[
            "a", "schedule", "simulate", "--config", "c.toml"
        ])));
        assert!(config_on_command_line(argv(&["a", "--config=c.json"])));
        assert!(!config_on_command_line(argv(&[
            "a",
            "schedule",
            "simulate",
            "--packages",
            "p"
        ])));
    }

    #[test]
    fn json_output_is_machine_readable() {
        let report = simulate_entries(
            ScheduleConfig::default(),
            &[PackageEntry {
                id: 3,
                priority: 0,
                fragments: 1,
                fragment_size: None,
            }],
            1000,
        )
        .expect("simulation");
        let value: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
        assert_eq!(value["timeline"][0]["action"], "fetch");
        assert_eq!(value["timeline"][0]["package"], 3);
        assert_eq!(value["packages"][0]["result"], "SUCCESS");
        assert_eq!(value["total_seconds"], 60);
    }
}
