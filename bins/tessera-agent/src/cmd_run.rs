//! `tessera-agent run`: the service loop, or one pass in the foreground with `--once`.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tessera_agent::config::AgentConfig;
use tessera_agent::run::{LogProgress, Progress, RunOptions, run};

/// Arguments of `run`.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Check in once, deliver everything offered, then exit (with progress bars on a
    /// terminal).
    #[arg(long)]
    once: bool,
    /// With --once: print what was delivered as JSON.
    #[arg(long, requires = "once")]
    json: bool,
    /// Legacy mode: talk to an unmodified OCS Inventory server (no client certificate;
    /// trust the servers through `ca_file`). Same as `ocs_compat = true`.
    #[arg(long)]
    ocs_compat: bool,
}

/// One bar per package.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<u64, ProgressBar>,
}

impl Bars {
    fn bar(&mut self, id: u64) -> &ProgressBar {
        let multi = &self.multi;
        self.bars.entry(id).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(id.to_string());
            bar
        })
    }
}

impl Progress for Bars {
    fn package(&mut self, id: u64, fragments: u32, bytes: Option<u64>) {
        let bar = self.bar(id);
        bar.set_length(bytes.unwrap_or(0));
        bar.set_message(format!("{fragments} fragments"));
    }
    fn downloaded(&mut self, id: u64, bytes: u64) {
        self.bar(id).set_position(bytes);
    }
    fn fragment_verified(&mut self, id: u64, fragment: u32, of: u32) {
        self.bar(id)
            .set_message(format!("fragment {fragment}/{of} verified"));
    }
    fn acting(&mut self, id: u64) {
        self.bar(id).set_message("installing");
    }
    fn finished(&mut self, id: u64, result: &str) {
        self.bar(id).finish_with_message(result.to_owned());
    }
}

/// `tessera-agent run`.
pub(crate) fn execute(config_path: &Path, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(config_path)?;
    if config.ocs_compat {
        tracing::warn!(
            "ocs_compat is set: this agent talks to an unmodified OCS server without a client certificate"
        );
    }
    let runtime = crate::runtime()?;
    let options = RunOptions {
        once: args.once,
        ocs_compat: args.ocs_compat,
    };
    let mut progress: Box<dyn Progress> = if args.once && std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::new(),
            bars: HashMap::new(),
        })
    } else {
        Box::new(LogProgress)
    };
    let summary = runtime.block_on(async {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        run(&config, options, &mut *progress, shutdown).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if args.once {
        if summary.results.is_empty() {
            println!("Checked in; nothing to deliver.");
        }
        for (id, result) in &summary.results {
            println!("{id}: {result}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
