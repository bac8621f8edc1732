//! `tessera-server package …`: build or import a package into the repository, show, list
//! and delete packages. Every decision (IDs, digests, fragment plan, atomic publish) is in
//! `tessera-package`.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tessera_package::import::{ConsolePackage, ImportOutcome, find_console_packages};
use tessera_package::{
    Action, Durability, Label, Notification, PackageId, PackageInfo, PackageSpec, PayloadSource,
    Priority, Protocol, Repository,
};
use tessera_store::Store as _;

/// `package` subcommands.
#[derive(Args, Debug, Clone)]
pub(crate) struct PackageArgs {
    #[command(subcommand)]
    command: PackageCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum PackageCommand {
    /// Build a package from a file, a directory (archived as .tar.gz) or stdin (`-`) into
    /// `<data>/repo/download/<ID>/`.
    // `--version` names the package version here, not the program's.
    #[command(disable_version_flag = true)]
    Build(BuildArgs),
    /// Show one package.
    Show(ShowArgs),
    /// List the packages in the repository.
    List(ListArgs),
    /// Import packages from an OCS Inventory NG server: each DIR is a package directory
    /// (`download/<ID>/` with `info` and `<ID>-1 … <ID>-N`) or a directory of them.
    #[command(disable_version_flag = true)]
    Import(ImportArgs),
    /// Delete a package: its directory in the repository and its record and deployments in
    /// the database. A running server notices within 10 seconds.
    Delete(DeleteArgs),
}

/// What the agent does with the payload; exactly one is required.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
struct ActionArgs {
    /// STORE: copy the unpacked files to DIR on the device (`INSTALL_PATH` = agent state dir).
    #[arg(long, value_name = "DIR")]
    store: Option<String>,
    /// LAUNCH: run the unpacked FILE; the result is SUCCESS_<exit code>.
    #[arg(long, value_name = "FILE")]
    launch: Option<String>,
    /// EXECUTE: run CMD with /bin/sh in the unpacked directory; exit 0 is SUCCESS.
    #[arg(long, value_name = "CMD")]
    execute: Option<String>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Proto {
    Http,
    Https,
}

#[derive(Args, Debug, Clone)]
struct BuildArgs {
    /// Payload: an archive (.tar.gz or .zip) stored as is, a directory, or `-` for stdin.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Package name.
    #[arg(long)]
    name: String,
    /// Package version.
    #[arg(long)]
    version: String,
    /// Priority 0-10 (0 = absolute priority, starves every other package).
    #[arg(long, default_value_t = 5)]
    priority: u8,
    #[command(flatten)]
    action: ActionArgs,
    /// Fragment size, e.g. 1M, 512K, 4MiB or a number of bytes.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    fragment_size: u64,
    /// Protocol agents use for fragments (`info` always travels over HTTPS).
    #[arg(long, value_enum, default_value_t = Proto::Https)]
    proto: Proto,
    /// Ask the user before running (Windows agents; Unix agents ignore it).
    #[arg(long)]
    notify_user: bool,
    /// Text of the notification.
    #[arg(long, value_name = "TEXT", default_value = "")]
    notify_text: String,
    /// Seconds before running anyway.
    #[arg(long, value_name = "SECONDS")]
    notify_countdown: Option<u32>,
    /// The user may cancel.
    #[arg(long)]
    notify_can_abort: bool,
    /// The user may postpone.
    #[arg(long)]
    notify_can_delay: bool,
    /// Show TEXT when done.
    #[arg(long, value_name = "TEXT")]
    done_action_text: Option<String>,
    /// Do not wait for the archive to reach the disk (faster; a crash may leave it short,
    /// which `package show` then reports).
    #[arg(long)]
    no_fsync: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct ShowArgs {
    /// Package ID (digits).
    id: String,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct ImportArgs {
    /// OCS package directories (`download/<ID>/`) or directories holding them
    /// (`download/`).
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,
    /// Package name shown by Tessera (only when importing a single package).
    #[arg(long, requires = "version")]
    name: Option<String>,
    /// Package version shown by Tessera (only when importing a single package).
    #[arg(long, requires = "name")]
    version: Option<String>,
    /// Do not wait for the archive to reach the disk (faster; a crash may leave it short,
    /// which `package show` then reports).
    #[arg(long)]
    no_fsync: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct DeleteArgs {
    /// Package ID (digits).
    id: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct ListArgs {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `package` subcommand against the repository of the data directory.
pub(crate) fn run(data: &Path, args: &PackageArgs) -> anyhow::Result<ExitCode> {
    let repo = Repository::in_data_dir(data);
    let mut stdout = std::io::stdout().lock();
    match &args.command {
        PackageCommand::Build(build_args) => build(&repo, build_args, &mut stdout),
        PackageCommand::Show(show_args) => show(&repo, show_args, &mut stdout),
        PackageCommand::List(list_args) => list(&repo, list_args, &mut stdout),
        PackageCommand::Import(import_args) => import(&repo, import_args, &mut stdout),
        PackageCommand::Delete(delete_args) => delete(data, &repo, delete_args, &mut stdout),
    }
}

/// `1M`, `512K`, `4MiB`, `2G`, `1000`: binary multiples, as fragment sizes usually are.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1M, 512K or 1048576"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {text:?}; use K, M or G")),
    };
    number
        .checked_mul(multiplier)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} must be between 1 byte and 16 EiB"))
}

fn spec(args: &BuildArgs) -> anyhow::Result<PackageSpec> {
    let action = match (
        &args.action.store,
        &args.action.launch,
        &args.action.execute,
    ) {
        (Some(dir), _, _) => Action::store(dir.clone()),
        (_, Some(file), _) => Action::launch(file.clone()),
        (_, _, Some(cmd)) => Action::execute(cmd.clone()),
        _ => anyhow::bail!("give one of --store DIR, --launch FILE or --execute CMD"),
    }?;
    let notification = Notification {
        notify_user: args.notify_user,
        text: args.notify_text.clone(),
        countdown: args.notify_countdown,
        can_abort: args.notify_can_abort,
        can_delay: args.notify_can_delay,
        need_done_action: args.done_action_text.is_some(),
        done_action_text: args.done_action_text.clone().unwrap_or_default(),
    };
    notification.validate()?;
    Ok(PackageSpec {
        label: Label::new(args.name.clone(), args.version.clone())?,
        priority: Priority::new(args.priority)?,
        action,
        protocol: match args.proto {
            Proto::Http => Protocol::Http,
            Proto::Https => Protocol::Https,
        },
        notification,
    })
}

fn progress_bar(length: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match length {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    }
}

fn build(repo: &Repository, args: &BuildArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let spec = spec(args)?;
    let durability = if args.no_fsync {
        Durability::WriteBack
    } else {
        Durability::Synced
    };
    let repo = repo.clone().with_durability(durability);
    let mut stdin;
    let (source, length) = if args.path.as_os_str() == "-" {
        stdin = std::io::stdin().lock();
        (PayloadSource::Reader(&mut stdin), None)
    } else {
        let meta = std::fs::metadata(&args.path)
            .with_context(|| format!("payload {}", args.path.display()))?;
        if meta.is_dir() {
            (PayloadSource::Directory(&args.path), None)
        } else {
            (PayloadSource::File(&args.path), Some(meta.len()))
        }
    };
    let bar = progress_bar(length);
    let package = repo.build(
        spec,
        source,
        args.fragment_size,
        SystemTime::now(),
        &mut |n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let package = package?;
    tracing::info!(id = %package.id(), dir = %repo.package_dir(package.id()).display(), "package built");
    let view = PackageView::new(&package.info(), &repo.package_dir(package.id()));
    print(&view, args.json, out)?;
    Ok(ExitCode::SUCCESS)
}

fn show(repo: &Repository, args: &ShowArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let id: PackageId = args
        .id
        .parse()
        .with_context(|| format!("package ID {:?}", args.id))?;
    let stored = repo.load(id)?;
    print(&PackageView::new(&stored.info, &stored.dir), args.json, out)?;
    Ok(ExitCode::SUCCESS)
}

fn list(repo: &Repository, args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut views = Vec::new();
    for id in repo.list()? {
        match repo.load(id) {
            Ok(stored) => views.push(PackageView::new(&stored.info, &stored.dir)),
            Err(e) => tracing::warn!(%id, "skipping unreadable package: {e}"),
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &views)?;
        writeln!(out)?;
    } else {
        for v in &views {
            writeln!(
                out,
                "{}\t{}\t{}\tPRI {}\t{}\t{} fragment(s)",
                v.id,
                v.name.as_deref().unwrap_or("-"),
                v.version.as_deref().unwrap_or("-"),
                v.priority,
                v.action,
                v.fragments
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One package directory's import, as `import --json` prints it.
#[derive(Serialize)]
struct ImportReport {
    source: PathBuf,
    /// `imported`, `unchanged` or `failed`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<PackageView>,
}

fn import(repo: &Repository, args: &ImportArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let label = match (&args.name, &args.version) {
        (Some(name), Some(version)) => Some(Label::new(name.clone(), version.clone())?),
        _ => None,
    };
    let mut sources = Vec::new();
    for dir in &args.dirs {
        sources.extend(
            find_console_packages(dir).with_context(|| format!("importing {}", dir.display()))?,
        );
    }
    if label.is_some() && sources.len() != 1 {
        anyhow::bail!(
            "--name and --version name one package, but {} package directories were found; import them without --name/--version",
            sources.len()
        );
    }
    let durability = if args.no_fsync {
        Durability::WriteBack
    } else {
        Durability::Synced
    };
    let repo = repo.clone().with_durability(durability);
    let mut reports = Vec::new();
    for source in sources {
        let result = ConsolePackage::read(&source).and_then(|package| {
            let bar = progress_bar(Some(package.payload_size()));
            let imported = repo.import(&package, label.clone(), &mut |n| bar.set_position(n));
            bar.finish_and_clear();
            imported
        });
        let report = match result {
            Ok(imported) => {
                let outcome = match imported.outcome {
                    ImportOutcome::Imported => "imported",
                    ImportOutcome::Unchanged => "unchanged",
                };
                tracing::info!(id = %imported.info.id, source = %source.display(), outcome, "package import");
                ImportReport {
                    source,
                    outcome,
                    error: None,
                    package: Some(PackageView::new(&imported.info, &imported.dir)),
                }
            }
            Err(error) => ImportReport {
                source,
                outcome: "failed",
                error: Some(error.to_string()),
                package: None,
            },
        };
        if !args.json {
            match (&report.package, &report.error) {
                (Some(view), _) if report.outcome == "unchanged" => writeln!(
                    out,
                    "package {} is already in the repository with the same content: unchanged ({})",
                    view.id,
                    report.source.display()
                )?,
                (Some(view), _) => {
                    writeln!(out, "imported {}", report.source.display())?;
                    print(view, false, out)?;
                }
                (None, Some(error)) => {
                    eprintln!("error: importing {}: {error}", report.source.display());
                }
                (None, None) => {}
            }
        }
        reports.push(report);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &reports)?;
        writeln!(out)?;
    }
    let failed = reports.iter().filter(|r| r.outcome == "failed").count();
    if failed > 0 {
        if !args.json {
            eprintln!(
                "{failed} of {} package(s) not imported; nothing of them was written",
                reports.len()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `delete --json` prints.
#[derive(Serialize)]
struct Deleted {
    id: u64,
    /// The package's directory was removed from the repository.
    directory_removed: bool,
    /// Its record and deployments were removed from the database.
    record_removed: bool,
}

fn delete(
    data: &Path,
    repo: &Repository,
    args: &DeleteArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id: PackageId = args
        .id
        .parse()
        .with_context(|| format!("package ID {:?}", args.id))?;
    // Directory first: a running server's watcher would otherwise record the package again
    // from disk between the two steps.
    let directory_removed = repo.remove(id)?;
    let database = tessera_server::datadir::DataDir::new(data).database();
    let record_removed = if database.exists() {
        let (runtime, store) = crate::local_store::open(data)?;
        let key = i64::try_from(id.get()).context("package ID out of the database's range")?;
        runtime.block_on(store.delete_package(key))?
    } else {
        false
    };
    if !directory_removed && !record_removed {
        anyhow::bail!(
            "package {id} not found: no directory {} and no record in the database",
            repo.package_dir(id).display()
        );
    }
    tracing::info!(%id, directory_removed, record_removed, "package deleted");
    if args.json {
        let deleted = Deleted {
            id: id.get(),
            directory_removed,
            record_removed,
        };
        serde_json::to_writer_pretty(&mut *out, &deleted)?;
        writeln!(out)?;
    } else {
        writeln!(out, "deleted package {id}")?;
        if directory_removed {
            writeln!(out, "  removed {}", repo.package_dir(id).display())?;
        }
        if record_removed {
            writeln!(
                out,
                "  removed its record and deployments from the database"
            )?;
        }
        writeln!(
            out,
            "  a running server stops offering it within 10 seconds"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `show` and `build` print (JSON field names are part of the CLI contract).
#[derive(Serialize)]
struct PackageView {
    id: u64,
    name: Option<String>,
    version: Option<String>,
    priority: u8,
    action: &'static str,
    argument: String,
    proto: &'static str,
    fragments: u32,
    payload_size: Option<u64>,
    fragment_size: Option<u64>,
    digest_algo: Option<&'static str>,
    digest: Option<String>,
    sha256: Option<String>,
    dir: PathBuf,
}

impl PackageView {
    fn new(info: &PackageInfo, dir: &Path) -> Self {
        let integrity = info.integrity.as_ref();
        Self {
            id: info.id.get(),
            name: info.label.as_ref().map(|l| l.name.clone()),
            version: info.label.as_ref().map(|l| l.version.clone()),
            priority: info.priority.get(),
            action: info.action.keyword(),
            argument: info.action.argument().1.to_owned(),
            proto: info.protocol.keyword(),
            fragments: info.fragment_count,
            payload_size: integrity.map(|i| i.plan().payload_size()),
            fragment_size: integrity.map(|i| i.plan().fragment_size()),
            digest_algo: info
                .digest
                .as_ref()
                .map(tessera_package::OcsDigest::algorithm_keyword),
            digest: info.digest.as_ref().map(|d| d.value.clone()),
            sha256: integrity.map(|i| i.sha256().to_hex()),
            dir: dir.to_owned(),
        }
    }
}

fn print(view: &PackageView, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, view)?;
        writeln!(out)?;
        return Ok(());
    }
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "package {}", view.id)?;
    writeln!(
        out,
        "  name        {} {}",
        or_dash(&view.name),
        or_dash(&view.version)
    )?;
    writeln!(out, "  priority    {}", view.priority)?;
    writeln!(out, "  action      {} {:?}", view.action, view.argument)?;
    writeln!(out, "  fragments   {} over {}", view.fragments, view.proto)?;
    if let (Some(size), Some(fragment)) = (view.payload_size, view.fragment_size) {
        writeln!(
            out,
            "  payload     {size} bytes, fragments of {fragment} bytes"
        )?;
    }
    if let (Some(algo), Some(digest)) = (view.digest_algo, &view.digest) {
        writeln!(out, "  {algo:<11} {digest}")?;
    }
    if let Some(sha) = &view.sha256 {
        writeln!(out, "  SHA-256     {sha}")?;
    }
    writeln!(out, "  directory   {}", view.dir.display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn build_then_show_json() {
        let data = tempfile::tempdir().unwrap();
        let payload = data.path().join("p.tar.gz");
        std::fs::write(&payload, b"not really an archive, stored as is").unwrap();
        let repo = Repository::in_data_dir(data.path());
        let args = BuildArgs {
            path: payload,
            name: "demo".into(),
            version: "1.0".into(),
            priority: 3,
            action: ActionArgs {
                store: None,
                launch: None,
                execute: Some("sh install.sh".into()),
            },
            fragment_size: 10,
            proto: Proto::Https,
            notify_user: false,
            notify_text: String::new(),
            notify_countdown: None,
            notify_can_abort: false,
            notify_can_delay: false,
            done_action_text: None,
            no_fsync: true,
            json: true,
        };
        let mut out = Vec::new();
        build(&repo, &args, &mut out).unwrap();
        let built: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(built["fragments"], 4);
        assert_eq!(built["name"], "demo");
        let id = built["id"].as_u64().unwrap().to_string();
        let mut shown = Vec::new();
        show(&repo, &ShowArgs { id, json: true }, &mut shown).unwrap();
        assert_eq!(out, shown);
        let err = show(
            &repo,
            &ShowArgs {
                id: "12x".into(),
                json: false,
            },
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("digits only"), "{err:#}");
    }
}
