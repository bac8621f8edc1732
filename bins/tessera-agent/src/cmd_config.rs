//! `tessera-agent config get/set/show` (not written yet).

use clap::Args;

/// Arguments of `config`.
#[derive(Args, Debug)]
pub(crate) struct ConfigArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// `tessera-agent config`.
pub(crate) fn run(
    _config: &std::path::Path,
    _args: &ConfigArgs,
) -> anyhow::Result<std::process::ExitCode> {
    Err(tessera_cli::not_yet_available("config", 10))
}
