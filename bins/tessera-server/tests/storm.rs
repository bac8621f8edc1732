//! A check-in storm against the real binary, killed with SIGKILL half-way: after a restart,
//! every result the server acknowledged is there.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, https_request, start};
use serde_json::{Value, json};
use tessera_protocol::body::encode_zlib;

const DEVICES: usize = 240;
const WORKERS: usize = 4;

fn device_id(i: usize) -> String {
    format!("dev{i}-2024-05-01-10-20-30")
}

fn ocs(addr: &str, ca: &std::path::Path, xml: &str) -> Result<u16, String> {
    let head = "POST /ocsinventory HTTP/1.1\r\nContent-Type: application/x-compress";
    https_request(addr, ca, head, &encode_zlib(xml.as_bytes())).map(|(status, _)| status)
}

fn admin(
    addr: &str,
    ca: &std::path::Path,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> Value {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json"
    );
    let payload = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (status, reply) = https_request(addr, ca, &head, &payload).unwrap();
    assert!(
        status < 300,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&reply)
    );
    if reply.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply).unwrap()
    }
}

#[test]
fn acknowledged_results_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("config.toml"), "[ocs]\ncompat = true\n").unwrap();
    let server = start(&data);
    let token = server
        .output
        .iter()
        .find_map(|l| l.split("): ").nth(1).filter(|t| t.starts_with("tsa_")))
        .expect("the first run prints the admin token")
        .to_owned();
    let ca = data.join("ca-certificate.pem");

    let payload = dir.path().join("payload.tar.gz");
    std::fs::write(&payload, b"not really a tarball").unwrap();
    let built = Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "package",
            "build",
            payload.to_str().unwrap(),
        ])
        .args([
            "--name",
            "hello",
            "--version",
            "1",
            "--execute",
            "true",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let package = serde_json::from_slice::<Value>(&built.stdout).unwrap()["id"]
        .as_u64()
        .unwrap();

    for i in 0..DEVICES {
        let prolog = format!(
            "<REQUEST><DEVICEID>{}</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>",
            device_id(i)
        );
        assert_eq!(ocs(&server.https, &ca, &prolog), Ok(200));
    }
    let devices = admin(
        &server.https,
        &ca,
        &token,
        "GET",
        "/api/v1/devices",
        &Value::Null,
    );
    let keys: Vec<(String, i64)> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ocs_device_id"].as_str().unwrap().to_owned(),
                d["key"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), DEVICES);
    for (_, key) in &keys {
        admin(
            &server.https,
            &ca,
            &token,
            "POST",
            "/api/v1/assignments",
            &json!({"device": key, "package": package}),
        );
    }

    // The storm: results from every device, acknowledged ones remembered.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (addr, ca, acknowledged) = (server.https.clone(), ca.clone(), Arc::clone(&acknowledged));
            std::thread::spawn(move || {
                for i in (w..DEVICES).step_by(WORKERS) {
                    let result = format!(
                        "<REQUEST DEVICEID=\"{}\" ERR=\"SUCCESS\" ID=\"{package}\" QUERY=\"DOWNLOAD\" />\n",
                        device_id(i)
                    );
                    match ocs(&addr, &ca, &result) {
                        Ok(200) => acknowledged.lock().unwrap().push(device_id(i)),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < DEVICES / 3 {
        assert!(Instant::now() < deadline, "the storm made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for worker in workers {
        worker.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < DEVICES,
        "the kill came before the storm ended"
    );

    let server = start(&data);
    for device in &acknowledged {
        let key = keys.iter().find(|(id, _)| id == device).unwrap().1;
        let detail = admin(
            &server.https,
            &ca,
            &token,
            "GET",
            &format!("/api/v1/devices/{key}"),
            &Value::Null,
        );
        assert_eq!(
            detail["deployments"][0]["state"], "success",
            "{device} was acknowledged"
        );
        assert_eq!(detail["deployments"][0]["code"], "SUCCESS");
    }
    eprintln!(
        "{} of {DEVICES} results acknowledged before SIGKILL; all kept",
        acknowledged.len()
    );
    common::stop(server);
}
