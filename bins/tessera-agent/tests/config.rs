//! `tessera-agent config …` as a real process, the way an admin or a script drives it.

use std::path::{Path, PathBuf};
use std::process::Output;

const SITE: &str = r#"# Managed by the desktop team; ask before changing.
servers = ["https://primary.example:8443"] # the main one

# read by the next agent version
proxy = "http://squid:3128"

[log]
level = "info"   # raise when debugging
"#;

struct Config {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Config {
    fn with(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        if !text.is_empty() {
            std::fs::write(&path, text).unwrap();
        }
        Self { _dir: dir, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        agent(&self.path, args)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }
}

fn agent(config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera-agent"))
        .arg("--config")
        .arg(config)
        .arg("config")
        .args(args)
        .env_remove("TESSERA_AGENT_CONFIG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn set_keeps_comments_order_and_unknown_keys() {
    let config = Config::with(SITE);
    let out = config.run(&[
        "set",
        "log.level=debug",
        r#"servers=["https://primary.example:8443", "https://backup.example:8443"]"#,
        "schedule.frag_latency=30",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        config.text(),
        r#"# Managed by the desktop team; ask before changing.
servers = ["https://primary.example:8443", "https://backup.example:8443"] # the main one

# read by the next agent version
proxy = "http://squid:3128"

[log]
level = "debug"   # raise when debugging

[schedule]
frag_latency = 30
"#
    );
    // The unknown key is kept but pointed out: the agent itself refuses it.
    assert!(stderr(&out).contains("proxy"), "{}", stderr(&out));

    let out = config.run(&["unset", "schedule.frag_latency", "proxy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!config.text().contains("frag_latency = 30"));
    assert!(!config.text().contains("squid"));
    assert!(config.text().starts_with("# Managed by the desktop team"));
}

#[test]
fn refused_edits_write_nothing_and_name_the_key() {
    let config = Config::with(SITE);
    let before = std::fs::metadata(&config.path).unwrap().modified().unwrap();
    for (args, named) in [
        (
            &["set", "schedule.frag_latency=soon"][..],
            "schedule.frag_latency",
        ),
        (
            &["set", "log.level=warn", "keystore.kind=vault"][..],
            "keystore.kind",
        ),
        (&["set", "servers=http://plain.example"][..], "https://"),
        (&["set", "sevrers=https://a"][..], "sevrers"),
        (&["set", "log.level"][..], "KEY=VALUE"),
        (&["unset", "servers"][..], "servers"),
    ] {
        let out = config.run(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = stderr(&out);
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(err.contains("error: "), "{err}");
        assert_eq!(config.text(), SITE, "{args:?} changed the file");
    }
    assert_eq!(
        std::fs::metadata(&config.path).unwrap().modified().unwrap(),
        before
    );
    // Only the file itself in the directory: no temporary file left behind.
    let entries = std::fs::read_dir(config.path.parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(entries, 1);
}

#[test]
fn get_prints_values_and_defaults() {
    let config = Config::with(SITE);
    let get = |key: &str| {
        let out = config.run(&["get", key]);
        (out.status.success(), stdout(&out))
    };
    assert_eq!(get("log.level"), (true, "info\n".to_owned()));
    assert_eq!(get("data_dir"), (true, "/var/lib/tessera\n".to_owned()));
    assert_eq!(
        get("servers"),
        (true, "[\"https://primary.example:8443\"]\n".to_owned())
    );
    assert_eq!(get("proxy"), (true, "http://squid:3128\n".to_owned()));
    assert_eq!(get("device.hostname"), (false, String::new()));
    let out = config.run(&["get", "log.levle"]);
    assert!(stderr(&out).contains("unknown configuration key `log.levle`"));
}

#[test]
fn show_prints_the_effective_configuration() {
    let config = Config::with("servers = [\"https://a.example\"]\n[schedule]\nfrag_latency = 5\n");
    let out = config.run(&["show", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["servers"][0], "https://a.example");
    assert_eq!(json["data_dir"], "/var/lib/tessera");
    assert_eq!(json["log"]["level"], "info");
    assert_eq!(json["schedule"]["frag_latency"], 5);
    let out = config.run(&["show"]);
    let text = stdout(&out);
    let shown = text.split_once('\n').unwrap().1;
    let reparsed = tessera_agent::config::AgentConfig::parse(shown).unwrap();
    assert_eq!(reparsed.schedule.frag_latency, Some(5));
}

#[test]
fn set_on_a_missing_file_writes_the_commented_template() {
    let config = Config::with("");
    let out = config.run(&["set", "log.level=debug"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("servers"), "{}", stderr(&out));
    assert!(!config.path.exists());

    let out = config.run(&["set", "servers=https://a.example:8443", "log.level=debug"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = config.text();
    assert!(text.starts_with("# Tessera agent configuration."), "{text}");
    assert!(
        text.contains("\nservers = [\"https://a.example:8443\"]\n"),
        "{text}"
    );
    assert!(text.contains("# data_dir = \"/var/lib/tessera\""), "{text}");
    assert!(text.contains("[log]\nlevel = \"debug\"\n"), "{text}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&config.path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);

    let out = config.run(&["show"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn show_and_get_without_a_file_say_how_to_make_one() {
    let config = Config::with("");
    let out = config.run(&["show"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("tessera-agent install --server"),
        "{}",
        stderr(&out)
    );
}
