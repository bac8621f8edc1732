//! Every OS command the agent runs, declared once with its privilege class, and the one
//! runner that checks the class before running it.
//!
//! Secrets never go on a command line: credentials are handed over on stdin or in the
//! environment, as the declaration says. The only exception is the one-time PKCS#12 password
//! of `security import` (see docs/privileged-commands.md for why), and the runner refuses a
//! secret argument for every other command.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};
use crate::keystore::{Keystore, SecretName, SecretValue};
use crate::system::{EffectiveUid, ProcessUid};

/// What a command needs before the runner lets it start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "class")]
pub enum PrivilegeClass {
    /// Any user may run it.
    RootNotRequired,
    /// The agent must run as root (effective uid 0).
    RootRequired,
    /// Root, plus a credential from the keystore handed to the tool as declared.
    CredentialsRequired(CredentialRequirement),
}

impl PrivilegeClass {
    /// The class name used in the documentation table.
    pub fn label(&self) -> &'static str {
        match self {
            Self::RootNotRequired => "root not required",
            Self::RootRequired => "root required",
            Self::CredentialsRequired(_) => "credentials required",
        }
    }
}

/// Which keystore secret a command needs and how the tool receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CredentialRequirement {
    /// The keystore secret name: the setting an operator must configure.
    pub secret: &'static str,
    /// How the secret reaches the tool.
    pub delivery: CredentialDelivery,
}

/// How a credential reaches a tool (never argv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialDelivery {
    /// Written to the tool's standard input, followed by a newline.
    Stdin,
    /// Put in this environment variable of the child only.
    Environment(&'static str),
}

/// One OS command the agent may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PrivilegedCommand {
    /// Short stable name, used in errors and logs.
    pub name: &'static str,
    /// Absolute path of the program (never looked up in PATH).
    pub program: &'static str,
    /// Fixed leading arguments (the subcommand).
    pub subcommand: &'static [&'static str],
    /// The privilege class the runner enforces.
    pub class: PrivilegeClass,
    /// Whether a one-time secret may appear in argv (only `security import -P`).
    pub one_time_secret_on_argv: bool,
    /// Which platform runs it.
    pub platform: &'static str,
    /// What the agent uses it for.
    pub purpose: &'static str,
}

/// The declarations. Add a command here before running it anywhere in the agent.
pub mod commands {
    use super::{CredentialDelivery, CredentialRequirement, PrivilegeClass, PrivilegedCommand};

    const SECURITY: &str = "/usr/bin/security";

    const fn security(
        name: &'static str,
        subcommand: &'static [&'static str],
        class: PrivilegeClass,
        purpose: &'static str,
    ) -> PrivilegedCommand {
        PrivilegedCommand {
            name,
            program: SECURITY,
            subcommand,
            class,
            one_time_secret_on_argv: false,
            platform: "macOS",
            purpose,
        }
    }

    /// `security import`: the device identity from a PKCS#12 file into the System keychain.
    pub const SECURITY_IMPORT: PrivilegedCommand = PrivilegedCommand {
        one_time_secret_on_argv: true,
        ..security(
            "security import",
            &["import"],
            PrivilegeClass::RootRequired,
            "import the device identity (PKCS#12, one-time password) into the System keychain",
        )
    };
    /// `security find-identity`: list identities with their SHA-1 hashes.
    pub const SECURITY_FIND_IDENTITY: PrivilegedCommand = security(
        "security find-identity",
        &["find-identity"],
        PrivilegeClass::RootNotRequired,
        "find the device identity again by its certificate SHA-1",
    );
    /// `security find-certificate`: certificates of a keychain as PEM.
    pub const SECURITY_FIND_CERTIFICATE: PrivilegedCommand = security(
        "security find-certificate",
        &["find-certificate"],
        PrivilegeClass::RootNotRequired,
        "read certificates (leaf, chain, roots) back as PEM",
    );
    /// `security delete-identity`: remove a certificate and its key by SHA-1.
    pub const SECURITY_DELETE_IDENTITY: PrivilegedCommand = security(
        "security delete-identity",
        &["delete-identity"],
        PrivilegeClass::RootRequired,
        "remove a superseded or revoked device identity",
    );
    /// `security add-trusted-cert`: trust a root in the admin domain.
    pub const SECURITY_ADD_TRUSTED_CERT: PrivilegedCommand = security(
        "security add-trusted-cert",
        &["add-trusted-cert"],
        PrivilegeClass::RootRequired,
        "trust a root (macOS 11+ also demands an interactive admin; otherwise use MDM)",
    );
    /// `security remove-trusted-cert`: drop a root's trust settings.
    pub const SECURITY_REMOVE_TRUSTED_CERT: PrivilegedCommand = security(
        "security remove-trusted-cert",
        &["remove-trusted-cert"],
        PrivilegeClass::RootRequired,
        "drop the trust settings of a removed root",
    );
    /// `security delete-certificate`: remove a certificate by SHA-1.
    pub const SECURITY_DELETE_CERTIFICATE: PrivilegedCommand = security(
        "security delete-certificate",
        &["delete-certificate"],
        PrivilegeClass::RootRequired,
        "remove a root certificate from the System keychain",
    );
    /// `security -i`: commands read from stdin, so a secret value never appears in argv.
    pub const SECURITY_INTERACTIVE: PrivilegedCommand = security(
        "security -i",
        &["-i"],
        PrivilegeClass::RootRequired,
        "store a named secret or the current-identity record (add-generic-password, command on stdin)",
    );
    /// `security find-generic-password -w`: read a named secret (printed on stdout).
    pub const SECURITY_FIND_GENERIC_PASSWORD: PrivilegedCommand = security(
        "security find-generic-password",
        &["find-generic-password"],
        PrivilegeClass::RootRequired,
        "read a named secret or the current-identity record",
    );
    /// `security delete-generic-password`: remove a named secret.
    pub const SECURITY_DELETE_GENERIC_PASSWORD: PrivilegedCommand = security(
        "security delete-generic-password",
        &["delete-generic-password"],
        PrivilegeClass::RootRequired,
        "remove a named secret",
    );
    /// The Secure Token admin credential's keystore secret name.
    pub const SECURE_TOKEN_ADMIN_SECRET: &str = "macos.secure-token-admin";
    /// `sysadminctl -secureTokenOn`: needs a Secure Token admin's password.
    pub const SYSADMINCTL_SECURE_TOKEN_ON: PrivilegedCommand = PrivilegedCommand {
        name: "sysadminctl -secureTokenOn",
        program: "/usr/sbin/sysadminctl",
        subcommand: &["-secureTokenOn"],
        class: PrivilegeClass::CredentialsRequired(CredentialRequirement {
            secret: SECURE_TOKEN_ADMIN_SECRET,
            delivery: CredentialDelivery::Stdin,
        }),
        one_time_secret_on_argv: false,
        platform: "macOS",
        purpose: "grant a Secure Token (admin password answered on stdin via `-adminPassword -`)",
    };
    /// `installer -pkg`: install a flat package delivered to the device.
    pub const INSTALLER: PrivilegedCommand = PrivilegedCommand {
        name: "installer",
        program: "/usr/sbin/installer",
        subcommand: &["-pkg"],
        class: PrivilegeClass::RootRequired,
        one_time_secret_on_argv: false,
        platform: "macOS",
        purpose: "install a package to the boot volume",
    };

    /// `defaults write /Library/Preferences/ManagedInstalls`: point Munki at the Tessera
    /// repository with the device's client certificate (`enroll --configure-munki`).
    pub const DEFAULTS_WRITE_MANAGED_INSTALLS: PrivilegedCommand = PrivilegedCommand {
        name: "defaults write ManagedInstalls",
        program: "/usr/bin/defaults",
        subcommand: &["write", "/Library/Preferences/ManagedInstalls"],
        class: PrivilegeClass::RootRequired,
        one_time_secret_on_argv: false,
        platform: "macOS",
        purpose: "set Munki's repository URL, client identifier and client-certificate preferences",
    };

    // systemd and launchd: installing the agent as a service (`tessera-agent install`).
    // `/bin/systemctl` rather than `/usr/bin/systemctl`: it is the one path that exists both on
    // merged-/usr systems (where /bin links to /usr/bin) and on older Debian-family systems
    // that ship systemctl in /bin only.
    const SYSTEMCTL: &str = "/bin/systemctl";
    const LAUNCHCTL: &str = "/bin/launchctl";

    const fn service(
        name: &'static str,
        program: &'static str,
        subcommand: &'static [&'static str],
        platform: &'static str,
        purpose: &'static str,
    ) -> PrivilegedCommand {
        PrivilegedCommand {
            name,
            program,
            subcommand,
            class: PrivilegeClass::RootRequired,
            one_time_secret_on_argv: false,
            platform,
            purpose,
        }
    }

    /// `systemctl daemon-reload`: make systemd read a written or removed unit file.
    pub const SYSTEMCTL_DAEMON_RELOAD: PrivilegedCommand = service(
        "systemctl daemon-reload",
        SYSTEMCTL,
        &["daemon-reload"],
        "Linux",
        "reload unit files after the agent's unit was written or removed",
    );
    /// `systemctl enable --now`: start the agent service now and at every boot.
    pub const SYSTEMCTL_ENABLE_NOW: PrivilegedCommand = service(
        "systemctl enable --now",
        SYSTEMCTL,
        &["enable", "--now"],
        "Linux",
        "enable and start the agent service (install)",
    );
    /// `systemctl restart`: restart the agent service on the upgraded binary and config.
    pub const SYSTEMCTL_RESTART: PrivilegedCommand = service(
        "systemctl restart",
        SYSTEMCTL,
        &["restart"],
        "Linux",
        "restart the agent service after an upgrade",
    );
    /// `systemctl disable --now`: stop the agent service and keep it from starting at boot.
    pub const SYSTEMCTL_DISABLE_NOW: PrivilegedCommand = service(
        "systemctl disable --now",
        SYSTEMCTL,
        &["disable", "--now"],
        "Linux",
        "stop and disable the agent service (uninstall)",
    );
    /// `launchctl bootstrap system <plist>`: load and start the agent daemon.
    pub const LAUNCHCTL_BOOTSTRAP: PrivilegedCommand = service(
        "launchctl bootstrap",
        LAUNCHCTL,
        &["bootstrap"],
        "macOS",
        "load and start the agent daemon from its plist in /Library/LaunchDaemons (install)",
    );
    /// `launchctl bootout system/<label>`: stop and unload the agent daemon.
    pub const LAUNCHCTL_BOOTOUT: PrivilegedCommand = service(
        "launchctl bootout",
        LAUNCHCTL,
        &["bootout"],
        "macOS",
        "stop and unload the agent daemon (uninstall, or before loading a changed plist)",
    );
    /// `launchctl kickstart -k system/<label>`: restart the running agent daemon.
    pub const LAUNCHCTL_KICKSTART: PrivilegedCommand = service(
        "launchctl kickstart -k",
        LAUNCHCTL,
        &["kickstart", "-k"],
        "macOS",
        "restart the agent daemon after an upgrade that kept its plist",
    );

    /// Every declared command, in documentation order.
    pub const ALL: &[&PrivilegedCommand] = &[
        &SECURITY_IMPORT,
        &SECURITY_FIND_IDENTITY,
        &SECURITY_FIND_CERTIFICATE,
        &SECURITY_DELETE_IDENTITY,
        &SECURITY_ADD_TRUSTED_CERT,
        &SECURITY_REMOVE_TRUSTED_CERT,
        &SECURITY_DELETE_CERTIFICATE,
        &SECURITY_INTERACTIVE,
        &SECURITY_FIND_GENERIC_PASSWORD,
        &SECURITY_DELETE_GENERIC_PASSWORD,
        &SYSADMINCTL_SECURE_TOKEN_ON,
        &INSTALLER,
        &DEFAULTS_WRITE_MANAGED_INSTALLS,
        &SYSTEMCTL_DAEMON_RELOAD,
        &SYSTEMCTL_ENABLE_NOW,
        &SYSTEMCTL_RESTART,
        &SYSTEMCTL_DISABLE_NOW,
        &LAUNCHCTL_BOOTSTRAP,
        &LAUNCHCTL_BOOTOUT,
        &LAUNCHCTL_KICKSTART,
    ];
}

/// The declaration table as Markdown, the source of docs/privileged-commands.md.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Command | Program | Class | Credential | Secret on argv | Platform | Purpose |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in commands::ALL {
        let credential = match c.class {
            PrivilegeClass::CredentialsRequired(r) => match r.delivery {
                CredentialDelivery::Stdin => format!("`{}` on stdin", r.secret),
                CredentialDelivery::Environment(var) => format!("`{}` in `${var}`", r.secret),
            },
            _ => "—".to_owned(),
        };
        let argv = if c.one_time_secret_on_argv {
            "one-time PKCS#12 password"
        } else {
            "never"
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} | {} | {} |",
            c.name,
            c.program,
            c.class.label(),
            credential,
            argv,
            c.platform,
            c.purpose
        );
    }
    out
}

/// One argument of an invocation.
#[derive(Clone)]
pub enum Arg {
    /// An ordinary argument, shown in logs.
    Plain(OsString),
    /// A single-use secret, redacted in logs; allowed only where the declaration says so.
    OneTimeSecret(Zeroizing<String>),
}

impl std::fmt::Debug for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(s) => write!(f, "{s:?}"),
            Self::OneTimeSecret(_) => f.write_str("<one-time secret>"),
        }
    }
}

/// A declared command with this call's arguments and optional standard input.
#[derive(Debug)]
pub struct Invocation {
    command: &'static PrivilegedCommand,
    args: Vec<Arg>,
    stdin: Option<SecretValue>,
}

impl Invocation {
    /// Starts an invocation of a declared command.
    pub fn new(command: &'static PrivilegedCommand) -> Self {
        Self {
            command,
            args: Vec::new(),
            stdin: None,
        }
    }

    /// Appends a plain argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(Arg::Plain(arg.into()));
        self
    }

    /// Appends several plain arguments.
    #[must_use]
    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        args.into_iter().fold(self, Self::arg)
    }

    /// Appends a single-use secret argument (refused at run time unless declared).
    #[must_use]
    pub fn one_time_secret(mut self, secret: Zeroizing<String>) -> Self {
        self.args.push(Arg::OneTimeSecret(secret));
        self
    }

    /// Sends these bytes on standard input (never logged).
    #[must_use]
    pub fn stdin(mut self, data: SecretValue) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The declaration.
    pub fn command(&self) -> &'static PrivilegedCommand {
        self.command
    }

    /// The command line as it may appear in logs and errors: secrets replaced by a marker.
    pub fn redacted_command_line(&self, program: &Path) -> String {
        let mut line = program.display().to_string();
        for part in self.command.subcommand {
            line.push(' ');
            line.push_str(part);
        }
        for arg in &self.args {
            line.push(' ');
            match arg {
                Arg::Plain(s) => line.push_str(&s.to_string_lossy()),
                Arg::OneTimeSecret(_) => line.push_str("<redacted>"),
            }
        }
        line
    }
}

/// What a finished command produced.
pub struct CommandOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8); wiped on drop because it may carry a secret.
    pub stdout: Zeroizing<String>,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// The redacted command line, for error messages.
    pub command_line: String,
}

impl std::fmt::Debug for CommandOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandOutput")
            .field("status", &self.status)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr", &self.stderr)
            .field("command_line", &self.command_line)
            .finish()
    }
}

impl CommandOutput {
    /// Turns a non-zero exit into [`KeystoreError::CommandFailed`].
    pub fn success(self) -> Result<Self> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(self.failure())
        }
    }

    /// The error describing this (failed) run.
    pub fn failure(&self) -> KeystoreError {
        KeystoreError::CommandFailed {
            command: self.command_line.clone(),
            status: self.status.to_string(),
            stderr: self.stderr.lines().take(5).collect::<Vec<_>>().join(" / "),
        }
    }
}

/// Where the runner takes credentials from.
pub trait CredentialSource {
    /// The secret named `name`, if configured.
    fn credential(&self, name: &SecretName) -> Result<Option<SecretValue>>;
}

impl<K: Keystore + ?Sized> CredentialSource for K {
    fn credential(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        self.secret(name)
    }
}

/// A credential source with nothing in it, for commands that need none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn credential(&self, _name: &SecretName) -> Result<Option<SecretValue>> {
        Ok(None)
    }
}

/// The one way the agent runs OS commands.
#[derive(Debug, Clone)]
pub struct CommandRunner {
    uid: Arc<dyn EffectiveUid>,
    // Declared program path → the path actually run (tests point this at a fake).
    tool_paths: BTreeMap<&'static str, PathBuf>,
    // A hung tool must not hang the agent.
    timeout: Duration,
}

/// How long a command may run unless the runner is configured otherwise.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for CommandRunner {
    fn default() -> Self {
        Self::new(Arc::new(ProcessUid))
    }
}

/// The environment every command gets: nothing inherited but a fixed PATH and C locale.
const CHILD_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

impl CommandRunner {
    /// A runner that checks privileges against `uid`.
    pub fn new(uid: Arc<dyn EffectiveUid>) -> Self {
        Self {
            uid,
            tool_paths: BTreeMap::new(),
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Kills a command that runs longer than `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `actual` wherever a declaration names `declared` (for example a fake `security`).
    #[must_use]
    pub fn with_tool_path(mut self, declared: &'static str, actual: impl Into<PathBuf>) -> Self {
        self.tool_paths.insert(declared, actual.into());
        self
    }

    /// The path that will be executed for `command`.
    pub fn program_for(&self, command: &PrivilegedCommand) -> PathBuf {
        self.tool_paths
            .get(command.program)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(command.program))
    }

    /// Checks the class, then runs the command and collects its output (any exit status).
    pub fn run(
        &self,
        invocation: &Invocation,
        credentials: &dyn CredentialSource,
    ) -> Result<CommandOutput> {
        let command = invocation.command;
        let program = self.program_for(command);
        let command_line = invocation.redacted_command_line(&program);
        if !command.one_time_secret_on_argv
            && invocation
                .args
                .iter()
                .any(|a| matches!(a, Arg::OneTimeSecret(_)))
        {
            return Err(KeystoreError::SecretOnArgvRefused {
                command: command.name,
            });
        }
        let euid = self.uid.effective_uid();
        let credential = match command.class {
            PrivilegeClass::RootRequired | PrivilegeClass::CredentialsRequired(_) if euid != 0 => {
                return Err(KeystoreError::NotRoot {
                    command: command.name,
                    euid,
                });
            }
            PrivilegeClass::RootNotRequired | PrivilegeClass::RootRequired => None,
            PrivilegeClass::CredentialsRequired(req) => {
                let missing = || KeystoreError::MissingCredential {
                    command: command.name,
                    setting: req.secret,
                };
                let name = SecretName::new(req.secret).map_err(|_| missing())?;
                Some((req, credentials.credential(&name)?.ok_or_else(missing)?))
            }
        };

        let mut child = Command::new(&program);
        child
            .args(command.subcommand)
            .env_clear()
            .env("PATH", CHILD_PATH)
            .env("LANG", "C")
            // Its own process group, so a timeout can kill everything it started.
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for arg in &invocation.args {
            match arg {
                Arg::Plain(s) => child.arg(s),
                Arg::OneTimeSecret(s) => child.arg(s.as_str()),
            };
        }
        let mut stdin_data: Option<Zeroizing<Vec<u8>>> = invocation
            .stdin
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_vec()));
        if let Some((req, secret)) = &credential {
            match req.delivery {
                CredentialDelivery::Environment(var) => {
                    child.env(
                        var,
                        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                            secret.expose(),
                        ),
                    );
                }
                CredentialDelivery::Stdin => {
                    let buf = stdin_data.get_or_insert_with(|| Zeroizing::new(Vec::new()));
                    buf.extend_from_slice(secret.expose());
                    buf.push(b'\n');
                }
            }
        }
        child.stdin(if stdin_data.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut process = child.spawn().map_err(|source| KeystoreError::Spawn {
            program: program.clone(),
            source,
        })?;
        let (status, stdout, stderr) = wait_with_deadline(
            &mut process,
            stdin_data.as_deref().map(Vec::as_slice),
            self.timeout,
        )
        .map_err(|source| KeystoreError::Spawn {
            program: program.clone(),
            source,
        })?;
        let Some(status) = status else {
            return Err(KeystoreError::TimedOut {
                command: command_line,
                timeout: self.timeout,
            });
        };
        Ok(CommandOutput {
            status,
            stdout: Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned()),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            command_line,
        })
    }
}

/// Feeds `stdin`, collects stdout and stderr, and waits at most `timeout`; on timeout the
/// process is killed and the status is None. Separate threads for the pipes, so a tool that
/// writes before it reads cannot deadlock us.
fn wait_with_deadline(
    process: &mut std::process::Child,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<(Option<ExitStatus>, Vec<u8>, Vec<u8>)> {
    use std::io::Read as _;
    let writer = process.stdin.take();
    let mut out_pipe = process.stdout.take();
    let mut err_pipe = process.stderr.take();
    std::thread::scope(|scope| {
        if let (Some(mut pipe), Some(data)) = (writer, stdin) {
            // The tool may exit without reading; its exit status tells the story.
            scope.spawn(move || {
                let _ = pipe.write_all(data);
            });
        }
        let out = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let err = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = process.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                // Kill the whole process group, so grandchildren holding our pipes die too.
                // Already-exited races are harmless: kill then reports an error we ignore.
                let _ = rustix::process::kill_process_group(
                    rustix::process::Pid::from_child(process),
                    rustix::process::Signal::KILL,
                );
                let _ = process.kill();
                let _ = process.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok((status, stdout, stderr))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FixedUid;

    #[test]
    fn every_declared_program_is_absolute_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for c in commands::ALL {
            assert!(c.program.starts_with('/'), "{}", c.name);
            assert!(names.insert(c.name), "duplicate {}", c.name);
        }
    }

    #[test]
    fn only_security_import_may_carry_a_secret_on_argv() {
        let allowed: Vec<_> = commands::ALL
            .iter()
            .filter(|c| c.one_time_secret_on_argv)
            .map(|c| c.name)
            .collect();
        assert_eq!(allowed, ["security import"]);
    }

    #[test]
    fn secret_argument_refused_for_undeclared_command() {
        let runner = CommandRunner::new(Arc::new(FixedUid(0)));
        let inv = Invocation::new(&commands::SECURITY_FIND_IDENTITY)
            .one_time_secret(Zeroizing::new("pw".into()));
        let err = runner.run(&inv, &NoCredentials).unwrap_err();
        assert!(
            matches!(err, KeystoreError::SecretOnArgvRefused { .. }),
            "{err}"
        );
    }

    #[test]
    fn root_required_refused_for_non_root_before_spawning() {
        // The program does not exist: reaching spawn would give a Spawn error instead.
        let runner = CommandRunner::new(Arc::new(FixedUid(501)))
            .with_tool_path("/usr/bin/security", "/nonexistent/security");
        let err = runner
            .run(
                &Invocation::new(&commands::SECURITY_DELETE_IDENTITY),
                &NoCredentials,
            )
            .unwrap_err();
        assert!(
            matches!(err, KeystoreError::NotRoot { euid: 501, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("needs root"), "{err}");
    }

    #[test]
    fn missing_credential_names_the_setting() {
        let runner = CommandRunner::new(Arc::new(FixedUid(0)));
        let err = runner
            .run(
                &Invocation::new(&commands::SYSADMINCTL_SECURE_TOKEN_ON),
                &NoCredentials,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(commands::SECURE_TOKEN_ADMIN_SECRET),
            "{err}"
        );
    }

    #[test]
    fn redacted_command_line_hides_one_time_secret() {
        let inv = Invocation::new(&commands::SECURITY_IMPORT)
            .arg("/tmp/x.p12")
            .arg("-P")
            .one_time_secret(Zeroizing::new("s3cr3t-pw".into()));
        let line = inv.redacted_command_line(Path::new("/usr/bin/security"));
        assert_eq!(line, "/usr/bin/security import /tmp/x.p12 -P <redacted>");
        assert!(!format!("{inv:?}").contains("s3cr3t"));
    }

    #[test]
    fn table_lists_every_command_with_its_class() {
        let table = markdown_table();
        for c in commands::ALL {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", c.name)))
                .unwrap_or_else(|| panic!("{} missing", c.name));
            assert!(row.contains(c.class.label()), "{row}");
        }
    }
}
