//! `tessera-agent install` and `uninstall` (not written yet).

use clap::Args;

/// Arguments of `install`.
#[derive(Args, Debug)]
pub(crate) struct InstallArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// Arguments of `uninstall`.
#[derive(Args, Debug)]
pub(crate) struct UninstallArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// `tessera-agent install`.
pub(crate) fn install(
    _config: &std::path::Path,
    _args: &InstallArgs,
) -> anyhow::Result<std::process::ExitCode> {
    Err(tessera_cli::not_yet_available("install", 10))
}

/// `tessera-agent uninstall`.
pub(crate) fn uninstall(
    _config: &std::path::Path,
    _args: &UninstallArgs,
) -> anyhow::Result<std::process::ExitCode> {
    Err(tessera_cli::not_yet_available("uninstall", 10))
}
