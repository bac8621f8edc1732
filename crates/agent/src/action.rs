//! Running a package's action exactly once: reassemble, verify, unpack, act, record.
//!
//! `LAUNCH` and `EXECUTE` run under a small `/bin/sh` supervisor in their own process group.
//! The supervisor writes `action.pid` when it starts and `action.status` (the exit code)
//! when the action ends, so the outcome survives the agent being killed: a restarted agent
//! waits for a running action or reads its status instead of starting it again. Only an
//! action whose supervisor died without a status is reported `ERR_EXECUTE_INTERRUPTED`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_package::{Action, Assembler, ExtractLimits, PackageInfo, extract_file};
use tessera_schedule::ResultCode;

use crate::error::{AgentError, Result};
use crate::journal::{ActionRecord, PackageDir};

/// Everything an action needs.
#[derive(Debug, Clone)]
pub(crate) struct ActionPlan {
    /// The package's files.
    pub package: PackageDir,
    /// Its verified `info`.
    pub info: PackageInfo,
    /// What `INSTALL_PATH` in a `STORE` path stands for (the data directory).
    pub install_path: PathBuf,
    /// How long the action may run before its process group is killed.
    pub timeout: Duration,
}

/// The supervisor: records its pid, runs the action, records the exit code.
/// `$1` = command, `$2` = pid file, `$3` = status file.
const SUPERVISOR: &str = r#"printf '%s\n' "$$" > "$2.tmp" && mv -f "$2.tmp" "$2" || exit 125
/bin/sh -c "$1"
code=$?
printf '%s\n' "$code" > "$3.tmp" && mv -f "$3.tmp" "$3"
"#;

/// How long a restarted agent waits for a supervisor that may have been started just
/// before the crash to write its pid.
const PID_GRACE: Duration = Duration::from_secs(2);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the action of a package whose `Execute` was just handed out (and saved).
pub(crate) async fn perform(plan: &ActionPlan) -> Result<ResultCode> {
    plan.package.save_action(&ActionRecord::Preparing)?;
    let prepared = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || prepare(&plan))
            .await
            .map_err(|e| AgentError::Server(format!("preparing the package panicked: {e}")))?
    };
    if let Err(code) = prepared {
        return finish(plan, code);
    }
    let deadline = now_secs().saturating_add(plan.timeout.as_secs());
    plan.package
        .save_action(&ActionRecord::Launching { deadline })?;
    let code = match &plan.info.action {
        Action::Store { path } => store(plan, path),
        Action::Launch { name } => {
            if let Some(command) = launch_command(&plan.package.work(), name) {
                run_supervised(plan, &command, deadline).await?
            } else {
                note(plan, &format!("LAUNCH: no file {name:?} in the package"));
                ResultCode::ErrExecute
            }
        }
        Action::Execute { command } => run_supervised(plan, command, deadline).await?,
    };
    finish(plan, code)
}

/// Finds out how the action of a package left in `Executing` by a previous agent ended,
/// running it only if it provably never started.
pub(crate) async fn resume(plan: &ActionPlan) -> Result<ResultCode> {
    match plan.package.load_action()? {
        None | Some(ActionRecord::Preparing) => perform(plan).await,
        Some(ActionRecord::Finished { result }) => Ok(parse_code(&result)),
        Some(ActionRecord::Launching { deadline }) => {
            if let Some(code) = read_status(plan)? {
                return finish(plan, code);
            }
            if matches!(plan.info.action, Action::Store { .. }) {
                // Copying is idempotent: do it again.
                tracing::info!("resuming an interrupted STORE");
                return finish(plan, store(plan, store_path(plan)));
            }
            let mut pid = read_pid(plan);
            if pid.is_none() {
                tokio::time::sleep(PID_GRACE).await;
                pid = read_pid(plan);
            }
            match pid {
                None => {
                    tracing::info!(
                        "the action never started before the agent stopped; starting it now"
                    );
                    perform(plan).await
                }
                Some(pid) => {
                    tracing::info!(pid, "waiting for the action a previous agent started");
                    let code = wait_detached(plan, pid, deadline).await?;
                    finish(plan, code)
                }
            }
        }
    }
}

fn store_path(plan: &ActionPlan) -> &str {
    match &plan.info.action {
        Action::Store { path } => path,
        _ => "",
    }
}

fn finish(plan: &ActionPlan, code: ResultCode) -> Result<ResultCode> {
    plan.package.save_action(&ActionRecord::Finished {
        result: code.to_string(),
    })?;
    // The unpacked payload is no longer needed; the record is.
    let _ = std::fs::remove_dir_all(plan.package.work());
    Ok(code)
}

fn parse_code(text: &str) -> ResultCode {
    text.parse().unwrap_or(ResultCode::ErrExecute)
}

/// Appends a line to the action log (what a support person reads first).
fn note(plan: &ActionPlan, line: &str) {
    use std::io::Write as _;
    tracing::warn!(package = %plan.info.id.get(), "{line}");
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(plan.package.action_log())
    {
        let _ = writeln!(log, "tessera-agent: {line}");
    }
}

/// Reassembles the fragments, checks the payload's digests and unpacks it into `work/`.
fn prepare(plan: &ActionPlan) -> Result<(), ResultCode> {
    let work = plan.package.work();
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = std::fs::create_dir_all(&work) {
        note(plan, &format!("cannot create {}: {e}", work.display()));
        return Err(ResultCode::ErrBuild);
    }
    let count = plan.info.fragment_count;
    if count == 0 {
        return Ok(());
    }
    let payload = plan.package.root().join("payload");
    let sink = std::fs::File::create(&payload).map_err(|e| {
        note(plan, &format!("cannot create {}: {e}", payload.display()));
        ResultCode::ErrBuild
    })?;
    let mut assembler = Assembler::new(&plan.info, std::io::BufWriter::new(sink));
    for n in 1..=count {
        let data = std::fs::read(plan.package.fragment(n)).map_err(|e| {
            note(plan, &format!("fragment {n} is missing: {e}"));
            ResultCode::ErrBuild
        })?;
        assembler.append(n, &data).map_err(|e| {
            note(plan, &format!("fragment {n}: {e}"));
            ResultCode::ErrBadDigest
        })?;
    }
    assembler.finish().map_err(|e| {
        note(plan, &format!("the payload does not match its digest: {e}"));
        match e {
            tessera_package::Error::Io { .. } => ResultCode::ErrBuild,
            _ => ResultCode::ErrBadDigest,
        }
    })?;
    let extracted = extract_file(&payload, &work, ExtractLimits::default());
    let _ = std::fs::remove_file(&payload);
    extracted.map(drop).map_err(|e| {
        note(plan, &format!("cannot unpack the payload: {e}"));
        ResultCode::ErrBuild
    })
}

/// `STORE`: copies the unpacked files to the path (`INSTALL_PATH` = the data directory).
fn store(plan: &ActionPlan, path: &str) -> ResultCode {
    let install = plan.install_path.to_string_lossy();
    let target = PathBuf::from(path.replace("INSTALL_PATH", &install));
    if !target.is_absolute() {
        note(plan, &format!("STORE path {path:?} is not absolute"));
        return ResultCode::ErrExecute;
    }
    match copy_tree(&plan.package.work(), &target) {
        Ok(()) => ResultCode::Success,
        Err(e) => {
            note(plan, &format!("STORE into {}: {e}", target.display()));
            ResultCode::ErrExecute
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `LAUNCH`: the file is the name cut at the first space or `-`, as the OCS agent does.
fn launch_command(work: &Path, name: &str) -> Option<String> {
    let exe = name.split([' ', '-']).next().filter(|e| !e.is_empty())?;
    let path = work.join(exe);
    if exe.contains('/') || !path.is_file() {
        return None;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    Some(format!("./'{}'", exe.replace('\'', r"'\''")))
}

async fn run_supervised(plan: &ActionPlan, command: &str, deadline: u64) -> Result<ResultCode> {
    let package = &plan.package;
    for stale in [package.action_pid(), package.action_status()] {
        let _ = std::fs::remove_file(stale);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(package.action_log())
        .map_err(|e| AgentError::io("opening", package.action_log(), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| AgentError::io("opening", package.action_log(), e))?;
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("tessera-action")
        .arg(command)
        .arg(package.action_pid())
        .arg(package.action_status())
        .current_dir(package.work())
        .env("TESSERA_PACKAGE_ID", plan.info.id.get().to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own group, so a timeout kills everything the action started, and a signal
        // to the agent's group (Ctrl-C) does not kill the action half-way.
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| AgentError::io("starting", "/bin/sh", e))?;
    let pid = child.id().map_or(0, u32::cast_signed);
    let remaining = Duration::from_secs(deadline.saturating_sub(now_secs()));
    let exited = tokio::time::timeout(remaining, child.wait()).await;
    if exited.is_err() {
        kill_group(pid);
        let _ = child.wait().await;
        note(
            plan,
            &format!(
                "the action ran longer than EXECUTION_TIMEOUT ({} min) and was killed",
                plan.timeout.as_secs() / 60
            ),
        );
        return Ok(ResultCode::ErrExecute);
    }
    if let Some(code) = read_status(plan)? {
        Ok(code)
    } else {
        note(plan, "the action's supervisor ended without an exit status");
        Ok(ResultCode::ErrExecuteInterrupted)
    }
}

/// Waits for an action started by a previous agent process.
async fn wait_detached(plan: &ActionPlan, pid: i32, deadline: u64) -> Result<ResultCode> {
    loop {
        if let Some(code) = read_status(plan)? {
            return Ok(code);
        }
        if !alive(pid) {
            // The status may have landed between the two checks.
            if let Some(code) = read_status(plan)? {
                return Ok(code);
            }
            note(
                plan,
                "the action stopped without an exit status while the agent was down",
            );
            return Ok(ResultCode::ErrExecuteInterrupted);
        }
        if now_secs() >= deadline {
            kill_group(pid);
            note(
                plan,
                "the action ran longer than EXECUTION_TIMEOUT and was killed",
            );
            return Ok(ResultCode::ErrExecute);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The exit status the supervisor recorded, as a result code for this action.
fn read_status(plan: &ActionPlan) -> Result<Option<ResultCode>> {
    let path = plan.package.action_status();
    let Some(text) = crate::fsio::read_optional(&path)? else {
        return Ok(None);
    };
    let exit: i32 = String::from_utf8_lossy(&text).trim().parse().unwrap_or(-1);
    Ok(Some(match plan.info.action {
        Action::Launch { .. } => ResultCode::SuccessExit(exit),
        _ if exit == 0 => ResultCode::Success,
        _ => {
            note(plan, &format!("the action exited with status {exit}"));
            ResultCode::ErrExecute
        }
    }))
}

fn read_pid(plan: &ActionPlan) -> Option<i32> {
    let text = std::fs::read_to_string(plan.package.action_pid()).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 1)
}

fn alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

fn kill_group(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        // Already gone is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
