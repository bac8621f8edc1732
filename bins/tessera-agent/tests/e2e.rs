//! End to end: a real `tessera-server` and a real `tessera-agent` on loopback, each in its
//! own temp data directory — enroll, assign, run, and read the outcome from the server.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Agent, Server, script_payload};

/// Random bytes without a dependency: the archive must not compress, so that fragment
/// counts follow the payload size.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// A server with the fast schedule (`period_length`), an agent enrolled with it, and the
/// device's key.
fn enrolled(dir: &Path, period_length: u32) -> (Server, Agent, i64) {
    let server = Server::start(dir, period_length);
    let agent = Agent::new(dir, &server);
    agent.enroll(&server);
    let device = server.device_key();
    (server, agent, device)
}

/// An EXECUTE package of `blob_len` incompressible bytes in 64 KiB fragments whose script
/// appends a line to the returned file (then runs `more`), so a test can count its runs.
fn counting_package(
    server: &Server,
    dir: &Path,
    name: &str,
    more: &str,
    blob_len: usize,
    seed: u64,
) -> (u64, std::path::PathBuf) {
    let ran = dir.join(format!("{name}-ran"));
    let src = script_payload(
        dir,
        name,
        &format!("echo ran >> '{}'\n{more}", ran.display()),
    );
    std::fs::write(src.join("blob"), noise(blob_len, seed)).unwrap();
    let id = server.package(
        &src,
        name,
        &["--execute", "sh install.sh", "--fragment-size", "64K"],
    );
    (id, ran)
}

#[test]
fn store_launch_execute_and_priorities_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent, device) = enrolled(dir.path(), 5);

    let ran = dir.path().join("execute-ran");
    let ok = server.package(
        &script_payload(
            dir.path(),
            "ok",
            &format!("echo ran >> '{}'\n", ran.display()),
        ),
        "execute-ok",
        &["--execute", "sh install.sh"],
    );
    let fails = server.package(
        &script_payload(dir.path(), "fails", "exit 1\n"),
        "execute-fails",
        &["--execute", "sh install.sh"],
    );
    let launch_dir = dir.path().join("launch");
    std::fs::create_dir_all(&launch_dir).unwrap();
    std::fs::write(launch_dir.join("setup"), "#!/bin/sh\nexit 3\n").unwrap();
    let launch = server.package(&launch_dir, "launch", &["--launch", "setup"]);
    let store_src = dir.path().join("store-src");
    std::fs::create_dir_all(store_src.join("sub")).unwrap();
    std::fs::write(store_src.join("a.txt"), "alpha").unwrap();
    std::fs::write(store_src.join("sub/b.txt"), "beta").unwrap();
    let stored = dir.path().join("stored");
    let store = server.package(&store_src, "store", &["--store", stored.to_str().unwrap()]);
    // Five fragments at priority 5 beside one fragment at priority 1.
    let big_src = script_payload(dir.path(), "big", "exit 0\n");
    std::fs::write(big_src.join("blob"), noise(300_000, 7)).unwrap();
    let big = server.package(
        &big_src,
        "big",
        &[
            "--execute",
            "sh install.sh",
            "--priority",
            "5",
            "--fragment-size",
            "64K",
        ],
    );
    let small = server.package(
        &script_payload(dir.path(), "small", "exit 0\n"),
        "small",
        &["--execute", "sh install.sh", "--priority", "1"],
    );
    for package in [ok, fails, launch, store, big, small] {
        server.assign(device, package);
    }

    let output = agent.run(&["run", "--once", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["results"].as_array().unwrap().len(), 6, "{summary}");

    assert_eq!(server.codes(ok), json!({"SUCCESS": 1}));
    assert_eq!(lines(&ran), 1, "the EXECUTE action ran once");
    assert_eq!(server.codes(fails), json!({"ERR_EXECUTE": 1}));
    assert_eq!(server.codes(launch), json!({"SUCCESS_3": 1}));
    assert_eq!(server.codes(store), json!({"SUCCESS": 1}));
    assert_eq!(
        std::fs::read_to_string(stored.join("a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read_to_string(stored.join("sub/b.txt")).unwrap(),
        "beta"
    );
    assert_eq!(server.codes(big), json!({"SUCCESS": 1}));
    assert_eq!(server.codes(small), json!({"SUCCESS": 1}));

    // The schedule: priority 1 goes in the first cycle, priority 5 only in the fifth, so
    // the small package's fragment comes before any of the big one's; each fragment of the
    // big package is fetched once, in order.
    let requests = server.fragment_requests();
    let position = |package, fragment| requests.iter().position(|r| *r == (package, fragment));
    assert!(
        position(small, 1).unwrap() < position(big, 1).unwrap(),
        "{requests:?}"
    );
    let big_fragments: Vec<u32> = requests
        .iter()
        .filter(|(p, _)| *p == big)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(big_fragments, vec![1, 2, 3, 4, 5]);

    // Status agrees: nothing in progress, the successes remembered.
    let status = agent.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["packages"], json!([]));
    let installed = status["installed"].as_array().unwrap();
    assert_eq!(installed.len(), 5, "{status}");
    assert!(!installed.contains(&json!(fails)));
    assert!(status["last_check_in"]["error"].is_null());

    // A second pass has nothing to do and fetches nothing.
    let before = server.fragment_requests().len();
    agent.run(&["run", "--once"]);
    assert_eq!(server.fragment_requests().len(), before);
    assert_eq!(lines(&ran), 1);
}

/// Overwrites one byte of the stored archive, returning what was there.
fn corrupt(server: &Server, package: u64, offset: u64, value: Option<u8>) -> u8 {
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    let path = server
        .data
        .join("repo/download")
        .join(package.to_string())
        .join("archive");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut old = [0u8];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut old).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[value.unwrap_or(!old[0])]).unwrap();
    old[0]
}

#[test]
fn corrupted_fragments_are_refetched_or_end_in_bad_digest_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent, device) = enrolled(dir.path(), 1);

    // 1. Fragment 2 is wrong on the server for a moment: rejected, fetched again, and the
    //    package still succeeds.
    let (transient, ran) = counting_package(&server, dir.path(), "transient", "", 200_000, 3);
    let original = corrupt(&server, transient, 70_000, None);
    server.assign(device, transient);
    let mut child = agent
        .command(&["run", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.fragment_requests().contains(&(transient, 2)) {
        assert!(Instant::now() < deadline, "fragment 2 never requested");
        std::thread::sleep(Duration::from_millis(10));
    }
    corrupt(&server, transient, 70_000, Some(original));
    assert!(child.wait().unwrap().success());
    assert_eq!(server.codes(transient), json!({"SUCCESS": 1}));
    assert_eq!(lines(&ran), 1);
    let second_fetches = server
        .fragment_requests()
        .iter()
        .filter(|r| **r == (transient, 2))
        .count();
    assert!(second_fetches >= 2, "the bad fragment was fetched again");

    // 2. The archive stays wrong: the package ends ERR_BAD_DIGEST and nothing runs.
    let (bad, never) = counting_package(&server, dir.path(), "bad", "", 200_000, 5);
    corrupt(&server, bad, 70_000, None);
    server.assign(device, bad);
    agent.run(&["run", "--once"]);
    assert_eq!(server.codes(bad), json!({"ERR_BAD_DIGEST": 1}));
    assert!(
        !never.exists(),
        "nothing may run from a package that fails its digest"
    );
}

#[test]
fn kill_9_at_20_random_points_still_delivers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent, device) = enrolled(dir.path(), 1);

    // The action sleeps, so that some kills land while it runs.
    let (package, ran) = counting_package(
        &server,
        dir.path(),
        "crash",
        "sleep 1\n",
        12 * 65_536 - 4_000,
        11,
    );
    let fragments = 12;
    server.assign(device, package);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points seeded with {seed}");
    let delays = noise(20, seed);
    let requests = || -> Vec<u32> {
        server
            .fragment_requests()
            .into_iter()
            .filter(|(p, _)| *p == package)
            .map(|(_, n)| n)
            .collect()
    };
    // Fragments the agent's journal holds as verified (renamed into place after SHA-256).
    let verified_on_disk = || -> BTreeSet<u32> {
        std::fs::read_dir(agent.data.join("packages").join(package.to_string()))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // After each run: no fragment the journal held as verified when the run started was
    // requested from the server during it.
    let mut verified_before = BTreeSet::new();
    let mut seen = 0;
    let mut check_run = |run: usize| {
        let all = requests();
        for n in &all[seen..] {
            assert!(
                !verified_before.contains(n),
                "run {run} fetched fragment {n} again although it was verified on disk: {all:?}"
            );
        }
        seen = all.len();
        verified_before = verified_on_disk();
    };
    let mut kills = 0;
    for (run, delay) in delays.into_iter().enumerate() {
        let mut child = agent
            .command(&["run", "--once"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // 0–1.5 s: start-up, check-in, fetches, verification, the action and the report.
        std::thread::sleep(Duration::from_millis(u64::from(delay) * 6));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        check_run(run);
    }
    eprintln!("{kills} of 20 runs were killed mid-way");
    // Then let it finish.
    agent.run(&["run", "--once"]);
    check_run(20);
    // A killed action's supervisor may still be finishing: it runs once either way.
    assert_eq!(server.codes(package), json!({"SUCCESS": 1}));
    assert_eq!(lines(&ran), 1, "the action ran exactly once");

    // Every fragment was fetched, and each kill cost at most the one fragment in flight.
    let requests = requests();
    for n in 1..=fragments {
        assert!(
            requests.contains(&n),
            "fragment {n} never fetched: {requests:?}"
        );
    }
    assert!(
        requests.len() <= fragments as usize + kills,
        "{} requests for {fragments} fragments and {kills} kills: {requests:?}",
        requests.len()
    );
}

#[test]
fn legacy_mode_works_without_enrollment_against_an_ocs_compatible_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), 1, "[ocs]\ncompat = true\n");
    let agent = Agent::new(dir.path(), &server);
    let mut config = std::fs::read_to_string(&agent.config).unwrap();
    config = config.replacen(
        "[device]",
        &format!(
            "ca_file = \"{}\"\n[device]",
            server.data.join("ca-certificate.pem").display()
        ),
        1,
    );
    std::fs::write(&agent.config, config).unwrap();

    // The first check-in makes the device known, as with an OCS agent.
    let first = agent.run(&["run", "--once", "--ocs-compat"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("OCS compatibility mode"), "{stderr}");
    let (_, devices) = server.api("GET", "/api/v1/devices", None);
    let status: serde_json::Value =
        serde_json::from_slice(&agent.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        devices[0]["ocs_device_id"], status["device_id"],
        "{devices}"
    );

    let ran = dir.path().join("legacy-ran");
    let package = server.package(
        &script_payload(
            dir.path(),
            "legacy",
            &format!("echo ran >> '{}'\n", ran.display()),
        ),
        "legacy",
        &["--execute", "sh install.sh"],
    );
    server.assign(server.device_key(), package);
    agent.run(&["run", "--once", "--ocs-compat"]);
    assert_eq!(server.codes(package), json!({"SUCCESS": 1}));
    assert_eq!(lines(&ran), 1);

    // Without the flag the agent wants an enrollment and says how to get one.
    let output = agent.command(&["run", "--once"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tessera-agent enroll"), "{stderr}");
}

#[test]
fn doctor_checks_the_stored_identity_and_sees_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 1);
    let agent = Agent::new(dir.path(), &server);

    let before = agent.command(&["doctor"]).output().unwrap();
    assert!(!before.status.success());
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(
        text.contains("FAIL enrollment"),
        "{text}\n{}",
        String::from_utf8_lossy(&before.stderr)
    );

    agent.enroll(&server);
    let healthy = agent.command(&["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&healthy.stdout);
    assert!(
        healthy.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    for line in [
        "ok   certificate policy",
        "ok   CRL",
        "ok   server",
        "ok   clock",
        "ok   data directory",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    let device = server.device_key();
    let (status, answer) = server.api(
        "POST",
        &format!("/api/v1/devices/{device}/revoke"),
        Some(&json!({"reason": "keyCompromise"})),
    );
    assert!(status < 300, "{status} {answer}");
    let revoked = agent.command(&["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&revoked.stdout);
    assert!(!revoked.status.success(), "{text}");
    assert!(text.contains("FAIL certificate policy"), "{text}");
    assert!(text.to_lowercase().contains("revoked"), "{text}");
    assert!(
        text.contains("FAIL server"),
        "the server refuses a revoked certificate:\n{text}"
    );
}

/// The certificates the server's CA issued to the one enrolled device, with their
/// revocations (`ca list --json`, the CA's ledger, which the store mirrors).
fn certificates(server: &Server) -> Vec<serde_json::Value> {
    let (status, devices) = server.api("GET", "/api/v1/devices", None);
    assert_eq!(status, 200, "{devices}");
    let name = devices[0]["computer_name"].clone();
    let listed: serde_json::Value =
        serde_json::from_str(&server.cli(&["ca", "list", "--json"])).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["computer_name"] == name)
        .cloned()
        .collect()
}

#[test]
fn renewal_by_command_and_at_check_in_replaces_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 1);
    let agent = Agent::new(dir.path(), &server);
    agent.enroll(&server);
    agent.run(&["run", "--once"]);
    let first = certificates(&server);
    assert_eq!(first.len(), 1, "{first:?}");

    // `renew` by hand.
    let output = agent.run(&["renew", "--json"]);
    let renewed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(renewed["manifest"], "computers/E2E-SERIAL-1");
    assert_eq!(renewed["hostname"], first[0]["computer_name"]);
    let listed = certificates(&server);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let old = listed
        .iter()
        .find(|c| c["serial"] == first[0]["serial"])
        .unwrap();
    assert_eq!(old["revoked"]["reason"], "superseded", "{listed:?}");
    let new = listed
        .iter()
        .find(|c| c["serial"] != first[0]["serial"])
        .unwrap();
    assert!(new["revoked"].is_null(), "{listed:?}");

    // The new certificate works (the old one is refused by TLS now): a check-in, and
    // doctor is all green, its server check included.
    agent.run(&["run", "--once"]);
    let doctor = agent.command(&["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&doctor.stderr)
    );
    for line in ["ok   certificate policy", "ok   CRL", "ok   server"] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(
        certificates(&server).len(),
        2,
        "not due: no renewal at check-in"
    );

    // With a renewal window longer than the lifetime, the next check-in renews by itself.
    let config = std::fs::read_to_string(&agent.config).unwrap();
    std::fs::write(&agent.config, format!("renew_days = 100000\n{config}")).unwrap();
    let output = agent.run(&["run", "--once"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("renewed"), "{log}");
    let listed = certificates(&server);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(
        listed.iter().filter(|c| c["revoked"].is_null()).count(),
        1,
        "{listed:?}"
    );
    // And the agent presents the newest one afterwards.
    std::fs::write(&agent.config, config).unwrap();
    agent.run(&["run", "--once"]);
    assert!(
        agent
            .command(&["doctor"])
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// The manifest decides: a package named in the default group (which every enrolled
/// device's computer manifest includes) is delivered without any assignment, once.
#[test]
fn a_package_named_in_the_default_group_is_deployed_without_an_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent, device) = enrolled(dir.path(), 1);
    let (id, ran) = counting_package(&server, dir.path(), "hello", "", 1000, 3);
    let (status, edited) = server.api(
        "POST",
        "/api/v1/groups/default/items",
        Some(&json!({"add": ["hello"]})),
    );
    assert_eq!(status, 200, "{edited}");

    // The admin API explains the decision: which package, from which manifest.
    let (status, why) = server.api("GET", &format!("/api/v1/devices/{device}/decisions"), None);
    assert_eq!(status, 200, "{why}");
    assert_eq!(why["manifest"], "computers/E2E-SERIAL-1");
    assert_eq!(
        why["packages"],
        json!([{"id": id, "name": "hello", "version": "1.0"}])
    );
    let install = &why["resolved"]["managed_installs"][0];
    assert_eq!(install["name"], "hello");
    let source = install["source"].as_u64().unwrap();
    let source = &why["resolved"]["sources"][usize::try_from(source).unwrap()];
    assert_eq!(source["manifest"], "groups/default");

    let output = agent.run(&["run", "--once", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["results"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(server.codes(id), json!({"SUCCESS": 1}));
    assert_eq!(lines(&ran), 1);

    // Decided once: the next check-in offers nothing and runs nothing.
    agent.run(&["run", "--once"]);
    assert_eq!(lines(&ran), 1);
    assert_eq!(server.codes(id), json!({"SUCCESS": 1}));
}
