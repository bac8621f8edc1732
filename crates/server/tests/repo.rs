//! The Munki repository over real TLS with device certificates from a real enrollment:
//! each device reads only its own manifests; ranges and validators work on packages.

mod common;

use tessera_manifest::Manifest;

#[tokio::test]
async fn devices_read_only_their_own_manifests() {
    let node = common::Node::start().await;
    let (data, repo, ca, port) = (&node.data, &node.repo, node.ca.clone(), node.port);

    // A private group only device B's manifest includes (inside a conditional item).
    let mut private = Manifest::new();
    private.catalogs = vec!["production".into()];
    repo.write_manifest("groups/private", &private).unwrap();
    std::fs::create_dir_all(data.repo().join("catalogs")).unwrap();
    std::fs::write(data.repo().join("catalogs/production"), b"<plist/>").unwrap();
    std::fs::write(data.repo().join("pkgs/Tool 1.0.pkg"), vec![7u8; 5000]).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.repo().join("pkgs/escape")).unwrap();

    let a = common::enroll(port, &ca, "MAC-A", "SERIAL-A").await;
    let b = common::enroll(port, &ca, "MAC-B", "SERIAL-B").await;
    let mut b_manifest = repo.read_manifest("computers/SERIAL-B").unwrap();
    let mut conditional = tessera_manifest::ConditionalItem {
        condition: Some(tessera_manifest::Condition::new(
            "os_vers BEGINSWITH \"14\"",
        )),
        body: Manifest::new(),
    };
    conditional.body.included_manifests = vec!["groups/private".into()];
    b_manifest.conditional_items.push(conditional);
    repo.write_manifest("computers/SERIAL-B", &b_manifest)
        .unwrap();

    let get = |identity: Option<&common::Identity>, path: &str, headers: &str| {
        let identity = identity.map(|(chain, key)| (chain.clone(), key.clone_key()));
        let request = common::get(path, headers);
        let ca = ca.clone();
        async move { common::https(port, &ca, identity, &request).await.unwrap() }
    };
    let cases = [
        (Some(&a), "/repo/manifests/computers/SERIAL-A", 200),
        (Some(&a), "/repo/manifests/groups/default", 200),
        (Some(&a), "/repo/manifests/site_default", 200),
        (Some(&a), "/repo/manifests/computers/SERIAL-B", 404),
        (Some(&a), "/repo/manifests/groups/private", 404),
        (Some(&b), "/repo/manifests/groups/private", 200),
        (Some(&b), "/repo/manifests/computers/SERIAL-A", 404),
        (Some(&a), "/repo/catalogs/production", 200),
        (Some(&a), "/repo/pkgs/Tool%201.0.pkg", 200),
        (Some(&a), "/repo/pkgs/escape", 404),
        (Some(&a), "/repo/pkgs/..%2F..%2Fconfig.toml", 404),
        (Some(&a), "/repo/pkgsinfo/anything", 404),
        (None, "/repo/catalogs/production", 401),
    ];
    for (identity, path, expected) in cases {
        let reply = get(identity, path, "").await;
        assert_eq!(reply.status, expected, "{path}");
    }

    // Ranges and validators on a package, the same validators on 206 and 200.
    let full = get(Some(&a), "/repo/pkgs/Tool%201.0.pkg", "").await;
    let etag = full
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_owned();
    let part = get(
        Some(&a),
        "/repo/pkgs/Tool%201.0.pkg",
        "Range: bytes=4000-\r\n",
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 1000);
    assert!(part.headers.contains(&format!("etag: {etag}")));
    let again = get(
        Some(&a),
        "/repo/pkgs/Tool%201.0.pkg",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(again.status, 304);

    // Joining a group makes its manifest readable; leaving takes it away again.
    let join = |identity: Option<&common::Identity>, body: &'static str| {
        let identity = identity.map(|(chain, key)| (chain.clone(), key.clone_key()));
        let request = common::post("/enroll/join", "application/json", body.as_bytes());
        let ca = ca.clone();
        async move { common::https(port, &ca, identity, &request).await.unwrap() }
    };
    let joined = join(Some(&a), r#"{"group": "groups/private"}"#).await;
    assert_eq!(
        joined.status,
        200,
        "{}",
        String::from_utf8_lossy(&joined.body)
    );
    assert!(String::from_utf8_lossy(&joined.body).contains("groups/private"));
    assert_eq!(
        get(Some(&a), "/repo/manifests/groups/private", "")
            .await
            .status,
        200
    );
    assert_eq!(
        join(Some(&a), r#"{"group": "groups/private", "leave": true}"#)
            .await
            .status,
        200
    );
    assert_eq!(
        get(Some(&a), "/repo/manifests/groups/private", "")
            .await
            .status,
        404
    );
    for (identity, body, expected) in [
        (
            Some(&a),
            r#"{"group": "groups/../computers/SERIAL-B"}"#,
            404,
        ),
        (Some(&a), r#"{"group": "computers/SERIAL-B"}"#, 404),
        (Some(&a), r#"{"group": "groups/nope"}"#, 404),
        (None, r#"{"group": "groups/private"}"#, 401),
    ] {
        assert_eq!(join(identity, body).await.status, expected, "{body}");
    }
    assert!(
        !repo
            .read_manifest("computers/SERIAL-B")
            .unwrap()
            .included_manifests
            .is_empty(),
        "B untouched"
    );

    node.stop().await;
}
