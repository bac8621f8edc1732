//! Deployments decided from manifests: a PROLOG offers the OCS packages a device's manifest
//! asks for — resolved as Munki resolves it, against the facts the device reported — and
//! nothing once the device has a result for them; edits to manifests are seen.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use tessera_manifest::Repo;
use tessera_protocol::body::{decode, encode_zlib};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_store::{DeploymentState, PackageRecord, SqliteStore, Store};
use tower::ServiceExt as _;

const DEVICE: &str = "linux01-2026-11-23-10-20-30";

fn prolog() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  <DEVICEID>{DEVICE}</DEVICEID>\n  \
         <QUERY>PROLOG</QUERY>\n</REQUEST>\n"
    )
}

fn inventory(os_version: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  <CONTENT>\n    <HARDWARE><NAME>linux01</NAME>\
         <OSNAME>Debian GNU/Linux</OSNAME><OSVERSION>{os_version}</OSVERSION></HARDWARE>\n  </CONTENT>\n  \
         <DEVICEID>{DEVICE}</DEVICEID>\n  <QUERY>INVENTORY</QUERY>\n</REQUEST>\n"
    )
}

fn result(code: &str, id: i64) -> String {
    format!("<REQUEST DEVICEID=\"{DEVICE}\" ERR=\"{code}\" ID=\"{id}\" QUERY=\"DOWNLOAD\" />\n")
}

fn package(id: i64, name: &str, version: &str) -> PackageRecord {
    PackageRecord {
        id,
        name: name.into(),
        version: version.into(),
        priority: 5,
        action: "EXECUTE".into(),
        fragments: 1,
        size: 10,
        created_at: time::OffsetDateTime::now_utc(),
    }
}

/// Writes a manifest plist into the repository, as an admin's `git pull` would.
fn write_manifest(
    repo: &Repo,
    name: &str,
    catalogs: &[&str],
    includes: &[&str],
    installs: &[&str],
    conditional: &str,
) {
    let array = |items: &[&str]| {
        items.iter().fold(String::new(), |mut out, item| {
            out.push_str("<string>");
            out.push_str(item);
            out.push_str("</string>");
            out
        })
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\"><dict>\
         <key>catalogs</key><array>{}</array>\
         <key>included_manifests</key><array>{}</array>\
         <key>managed_installs</key><array>{}</array>{conditional}\
         </dict></plist>\n",
        array(catalogs),
        array(includes),
        array(installs)
    );
    let path = repo.root().join("manifests").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, xml).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    repo: Repo,
    router: axum::Router,
    app: Arc<App<SqliteStore>>,
}

/// A compat-path server whose `site_default` includes `groups/linux`, with packages
/// `editor` 1.0 (ID 10) and 2.0 (ID 11), `tools` 1.0 (ID 20) and `legacy` 1.0 (ID 30).
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::create(dir.path().join("repo")).unwrap();
    write_manifest(
        &repo,
        "site_default",
        &["production"],
        &["groups/linux"],
        &[],
        "",
    );
    // `tools` only for recent systems: `os_vers_major` comes from the inventory's OSVERSION.
    write_manifest(
        &repo,
        "groups/linux",
        &[],
        &[],
        &["editor", "no-such-package"],
        "<key>conditional_items</key><array><dict>\
         <key>condition</key><string>os_vers_major &gt;= 12</string>\
         <key>managed_installs</key><array><string>tools</string></array>\
         </dict></array>",
    );

    let mut config = Config::default();
    config.ocs.compat = true;
    let packages = tessera_package::Repository::new(dir.path().join("repo/download"));
    let app = App::new(SqliteStore::in_memory().await.unwrap(), config, packages)
        .with_manifests(Repo::open(dir.path().join("repo")).unwrap())
        .shared();
    for record in [
        package(10, "editor", "1.0"),
        package(11, "editor", "2.0"),
        package(20, "tools", "1.0"),
        package(30, "legacy", "1.0"),
    ] {
        app.store.put_package(&record).await.unwrap();
    }
    app.packages_changed().await.unwrap();
    let router = tessera_server::ocs::routes::<SqliteStore>().with_state(Arc::clone(&app));
    Setup {
        _dir: dir,
        repo,
        router,
        app,
    }
}

async fn post(router: &axum::Router, xml: &str) -> (StatusCode, String) {
    let request = Request::post("/ocsinventory")
        .header("content-type", "application/x-compress")
        .body(Body::from(encode_zlib(xml.as_bytes())))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    let text = if body.is_empty() {
        String::new()
    } else {
        String::from_utf8(decode(&body, 1 << 20).unwrap().0).unwrap()
    };
    (status, text)
}

/// The package IDs a PROLOG reply offers, in order.
async fn offers(router: &axum::Router) -> Vec<i64> {
    let (status, xml) = post(router, &prolog()).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let reply =
        tessera_protocol::xml::parse(xml.as_bytes(), tessera_protocol::xml::XmlLimits::default())
            .unwrap();
    reply
        .child("OPTION")
        .map(|option| {
            option
                .children_named("PARAM")
                .filter(|p| p.attribute("TYPE") == Some("PACK"))
                .map(|p| p.attribute("ID").unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_manifest_decides_what_is_offered() {
    let s = setup().await;

    // First sight, no facts yet: the group's unconditional item, newest version only;
    // an item with no package is skipped.
    assert_eq!(offers(&s.router).await, [11]);
    let device = s.app.store.device_by_ocs_id(DEVICE).await.unwrap().unwrap();
    let deployments = s.app.store.deployments_for(device.key).await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(
        (deployments[0].package_id, deployments[0].state),
        (11, DeploymentState::Notified)
    );
    let history: Vec<_> = s
        .app
        .store
        .deployment_history(device.key, 11)
        .await
        .unwrap()
        .iter()
        .map(|h| h.state)
        .collect();
    assert_eq!(
        history,
        [DeploymentState::Waiting, DeploymentState::Notified]
    );

    // An inventory from an old system does not satisfy the condition; a newer one does.
    let (status, _) = post(&s.router, &inventory("11.9")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offers(&s.router).await, [11]);
    let (status, _) = post(&s.router, &inventory("12.5")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offers(&s.router).await, [11, 20]);

    // A result is final: neither a success nor a failure is offered again.
    post(&s.router, &result("SUCCESS", 11)).await;
    post(&s.router, &result("ERR_BAD_DIGEST", 20)).await;
    assert_eq!(offers(&s.router).await, Vec::<i64>::new());
    let stats = s.app.store.package_stats(20).await.unwrap();
    assert_eq!((stats.success, stats.error), (0, 1));

    // An assignment still works beside the manifest.
    s.app
        .store
        .assign(device.key, 30, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(offers(&s.router).await, [30]);
}

#[tokio::test]
async fn manifest_edits_and_new_packages_are_seen() {
    let s = setup().await;
    assert_eq!(offers(&s.router).await, [11]);

    // Edited on disk (as `git pull` would) and announced as the watcher does.
    write_manifest(&s.repo, "groups/linux", &[], &[], &["editor", "legacy"], "");
    assert_eq!(
        offers(&s.router).await,
        [11],
        "nothing is read again before the change is noticed"
    );
    s.app.manifests_changed();
    assert_eq!(offers(&s.router).await, [11, 30]);

    // A pin asks for one version; a new package joins the catalog when packages change.
    write_manifest(
        &s.repo,
        "groups/linux",
        &[],
        &[],
        &["editor-1.0", "viewer"],
        "",
    );
    s.app
        .store
        .put_package(&package(40, "viewer", "0.9"))
        .await
        .unwrap();
    s.app.manifests_changed();
    assert_eq!(
        offers(&s.router).await,
        [10, 11, 30],
        "editor 1.0 pinned; the notified 2.0 and legacy stay offered until they get a result; viewer not yet known"
    );
    s.app.packages_changed().await.unwrap();
    assert_eq!(offers(&s.router).await, [10, 11, 30, 40]);
}

#[tokio::test]
async fn a_missing_manifest_offers_assignments_only() {
    let s = setup().await;
    std::fs::remove_file(s.repo.root().join("manifests/site_default")).unwrap();
    s.app.manifests_changed();
    assert_eq!(offers(&s.router).await, Vec::<i64>::new());
    let device = s.app.store.device_by_ocs_id(DEVICE).await.unwrap().unwrap();
    let decided = s
        .app
        .decisions
        .as_ref()
        .unwrap()
        .decide(&device, time::OffsetDateTime::now_utc());
    assert!(
        decided.error.as_deref().unwrap().contains("site_default"),
        "{decided:?}"
    );
    s.app
        .store
        .assign(device.key, 20, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(offers(&s.router).await, [20]);
}

/// Files changed behind the server's back — a manifest from `git pull`, a package built by
/// the CLI — are noticed by the repository watcher and decided from.
#[tokio::test]
async fn the_watcher_sees_files_changed_behind_the_servers_back() {
    use tessera_package::{
        Action, Label, Notification, PackageSpec, PayloadSource, Priority, Protocol,
    };

    let s = setup().await;
    assert_eq!(offers(&s.router).await, [11]);
    let watcher = tokio::spawn(tessera_server::decide::watch_every(
        Arc::clone(&s.app),
        std::time::Duration::from_millis(20),
    ));
    // Let it take its first look before anything changes.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let built = s
        .app
        .packages
        .build(
            PackageSpec {
                label: Label::new("fresh", "3.0").unwrap(),
                priority: Priority::new(5).unwrap(),
                action: Action::execute("true").unwrap(),
                protocol: Protocol::Https,
                notification: Notification::default(),
            },
            PayloadSource::Reader(&mut &b"payload"[..]),
            1024,
            std::time::SystemTime::now(),
            &mut |_| {},
        )
        .unwrap();
    let fresh = i64::try_from(built.id().get()).unwrap();
    write_manifest(&s.repo, "groups/linux", &[], &[], &["editor", "fresh"], "");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let offered = offers(&s.router).await;
        if offered == [11, fresh] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher did not pick up the new manifest and package: {offered:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        s.app.store.package(fresh).await.unwrap().is_some(),
        "recorded in the store"
    );
    watcher.abort();
}
