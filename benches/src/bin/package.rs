//! `tessera-package` build vs what an OCS admin runs today.
//!
//! Payload: 1 GiB of pseudo-random bytes in a temporary directory under /tmp. Measured, in
//! the same run, each in its own process with a warm page cache:
//! - baseline: `md5sum FILE && split -n N FILE` (N = the number of 1 MiB fragments);
//! - floor: `md5sum FILE` alone;
//! - our MD5 engine alone (`Md5Hasher` over 64 KiB reads, as the build's reading thread
//!   does), the build's lower bound;
//! - ours: `Repository::build` (MD5 + whole SHA-256 + per-fragment SHA-256 on two cores,
//!   stored archive, published atomically), in both durability modes: `write-back` (the
//!   archive left to the page cache, like `split`) and `synced` (fsync'd before publishing);
//!   the peak RSS (VmHWM) of the build processes is reported.
//!
//! Run: `cargo run --release -p tessera-benches --bin package [-- SIZE_MIB RUNS]`.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, bail};
use tessera_benches::{Measurement, ratio_line};
use tessera_package::{
    Action, DEFAULT_FRAGMENT_SIZE, Durability, Label, Md5Hasher, Notification, PackageSpec,
    PayloadSource, Priority, Protocol, Repository,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child-build") {
        let durability = if args.get(4).map(String::as_str) == Some("write-back") {
            Durability::WriteBack
        } else {
            Durability::Synced
        };
        return child_build(Path::new(&args[2]), Path::new(&args[3]), durability);
    }
    if args.get(1).map(String::as_str) == Some("--child-md5") {
        return child_md5(Path::new(&args[2]));
    }
    let size_mib: u64 = args.get(1).map_or(Ok(1024), |s| s.parse())?;
    let runs: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let work = tempfile::Builder::new()
        .prefix("tessera-bench-package-")
        .tempdir_in("/tmp")?;
    let payload = work.path().join("payload.bin");
    write_payload(&payload, size_mib << 20)?;
    let fragments = (size_mib << 20).div_ceil(DEFAULT_FRAGMENT_SIZE);
    let me = std::env::current_exe()?;
    println!(
        "payload: {size_mib} MiB, {fragments} fragments of {DEFAULT_FRAGMENT_SIZE} bytes, {runs} runs each"
    );

    // Warm the page cache so that every contender reads from memory.
    run(Command::new("cat")
        .arg(&payload)
        .stdout(std::process::Stdio::null()))?;

    let mut ours = Vec::new();
    let mut ours_synced = Vec::new();
    let mut baseline = Vec::new();
    let mut md5_only = Vec::new();
    let mut engine_only = Vec::new();
    let mut expected_md5 = None;
    let mut peak_kib = 0u64;
    // Other work on a 2-core machine shows up in every figure: say how busy it was.
    let load_before = load_average();
    for run_index in 0..runs {
        // Interleaved so that drift on a shared machine hits all three alike.
        let split_dir = tempfile::tempdir_in(work.path())?;
        settle()?;
        let start = Instant::now();
        run(Command::new("sh")
            .arg("-c")
            .arg(format!(
                "md5sum \"$1\" >/dev/null && split -n {fragments} \"$1\" frag-"
            ))
            .arg("sh")
            .arg(&payload)
            .current_dir(split_dir.path()))?;
        baseline.push(start.elapsed());
        drop(split_dir);

        settle()?;
        let start = Instant::now();
        let out = Command::new("md5sum").arg(&payload).output()?;
        md5_only.push(start.elapsed());
        if !out.status.success() {
            bail!("md5sum failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let reference = String::from_utf8(out.stdout)?
            .split_whitespace()
            .next()
            .context("md5sum printed nothing")?
            .to_owned();
        let expected = expected_md5.get_or_insert(reference);

        settle()?;
        let start = Instant::now();
        let out = Command::new(&me)
            .arg("--child-md5")
            .arg(&payload)
            .output()?;
        engine_only.push(start.elapsed());
        check_md5(&out, expected, "MD5 engine")?;

        // The two modes swap places every run: whichever runs right after a contender's
        // files were deleted pays for that file system's online discard (see
        // docs/packages.md), and a fixed order once made write-back look slower than synced.
        let mut modes = [("write-back", &mut ours), ("synced", &mut ours_synced)];
        if run_index % 2 == 1 {
            modes.reverse();
        }
        for (mode, samples) in modes {
            let repo = tempfile::tempdir_in(work.path())?;
            settle()?;
            let start = Instant::now();
            let out = Command::new(&me)
                .arg("--child-build")
                .arg(&payload)
                .arg(repo.path())
                .arg(mode)
                .output()?;
            let elapsed = start.elapsed();
            samples.push(elapsed);
            check_md5(&out, expected, "build")?;
            let text = String::from_utf8(out.stdout)?;
            let cpu = text
                .lines()
                .find_map(|l| l.strip_prefix("CPU="))
                .unwrap_or("?");
            println!(
                "run {run_index}: {mode} build {:.3}s (CPU {cpu}); md5sum && split {:.3}s; md5sum {:.3}s; MD5 engine {:.3}s",
                elapsed.as_secs_f64(),
                baseline.last().map_or(0.0, Duration::as_secs_f64),
                md5_only.last().map_or(0.0, Duration::as_secs_f64),
                engine_only.last().map_or(0.0, Duration::as_secs_f64),
            );
            let kib = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM_KiB="))
                .context("child did not report VmHWM")?
                .parse::<u64>()?;
            peak_kib = peak_kib.max(kib);
        }
    }
    let ours = Measurement::from_samples("tessera package build (write-back)", ours);
    let ours_synced = Measurement::from_samples("tessera package build (fsync'd)", ours_synced);
    let baseline = Measurement::from_samples("md5sum && split -n", baseline);
    let md5_only = Measurement::from_samples("md5sum alone", md5_only);
    let engine_only = Measurement::from_samples("our MD5 engine alone", engine_only);
    println!("{}", ratio_line(&engine_only, &md5_only));
    println!("{}", ratio_line(&ours, &baseline));
    println!("{}", ratio_line(&ours, &md5_only));
    println!("{}", ratio_line(&ours_synced, &baseline));
    println!("{}", ratio_line(&ours_synced, &md5_only));
    println!(
        "throughput: ours {:.0} MiB/s, md5sum {:.0} MiB/s",
        mib_per_s(size_mib, ours.median()),
        mib_per_s(size_mib, md5_only.median())
    );
    println!(
        "peak RSS of the build process (VmHWM): {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    println!(
        "load average at start: {load_before}; at end: {}",
        load_average()
    );
    Ok(())
}

/// The child printed `md5=HEX` and it is `expected` (what `md5sum` printed).
fn check_md5(out: &std::process::Output, expected: &str, what: &str) -> anyhow::Result<()> {
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let got = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("md5="))
        .with_context(|| format!("{what} printed no md5="))?;
    if got != expected {
        bail!("{what} computed MD5 {got}, md5sum says {expected}");
    }
    Ok(())
}

/// Reads `payload` as the build's reading thread does (64 KiB at a time) through our MD5.
fn child_md5(payload: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(payload)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut hasher = Md5Hasher::new();
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    println!("md5={}", hasher.finalize());
    Ok(())
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minutes).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn mib_per_s(mib: u64, d: Duration) -> f64 {
    mib as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Outside the timed region: write back whatever the previous contender left dirty, so
/// that nobody pays for another's disk writes.
fn settle() -> anyhow::Result<()> {
    run(&mut Command::new("sync"))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Incompressible bytes (xorshift), written in 1 MiB blocks.
fn write_payload(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

fn child_build(payload: &Path, repo: &Path, durability: Durability) -> anyhow::Result<()> {
    let spec = PackageSpec {
        label: Label::new("bench", "1")?,
        priority: Priority::new(5)?,
        action: Action::execute("true")?,
        protocol: Protocol::Https,
        notification: Notification::default(),
    };
    let package = Repository::new(repo).with_durability(durability).build(
        spec,
        PayloadSource::File(payload),
        DEFAULT_FRAGMENT_SIZE,
        UNIX_EPOCH + Duration::from_secs(1_716_800_000),
        &mut |_| {},
    )?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("VmHWM not in /proc/self/status")?;
    println!("id={} md5={}", package.id(), package.md5());
    println!("VmHWM_KiB={hwm}");
    // utime and stime (fields 14 and 15) in clock ticks; USER_HZ is 100 on Linux x86 and
    // arm. The process's own threads only: the kernel's write-back runs elsewhere.
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(&stat[..], |(_, rest)| rest)
        .split_whitespace()
        .collect();
    if let (Some(Ok(user)), Some(Ok(sys))) = (
        fields.get(11).map(|v| v.parse::<u64>()),
        fields.get(12).map(|v| v.parse::<u64>()),
    ) {
        println!(
            "CPU=user {:.2}s + sys {:.2}s",
            user as f64 / 100.0,
            sys as f64 / 100.0
        );
    }
    Ok(())
}
