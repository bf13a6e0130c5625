//! The API over plain HTTPS, as curl or any client would use it.

mod common;

use std::time::Duration;

use common::Server;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "demo"}}, "data": {"k": "v"}})
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401() {
    let server = Server::start();
    let http = server.http();
    let response = http
        .get(format!("{}/api/v1/namespaces", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");
    let response = http
        .get(format!("{}/api/v1/namespaces", server.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn crud_errors_are_kubernetes_statuses() {
    let server = Server::start();
    let (code, created) = server
        .call(server.request(Method::POST, CMS).json(&cm("a")))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(created["metadata"]["uid"].is_string());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, dup) = server
        .call(server.request(Method::POST, CMS).json(&cm("a")))
        .await;
    assert_eq!((code, dup["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(dup["message"], "configmaps \"a\" already exists");

    let (code, missing) = server
        .call(server.request(Method::GET, &format!("{CMS}/nope")))
        .await;
    assert_eq!((code, missing["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(missing["details"]["name"], "nope");

    // Update with the current version succeeds; a second update with the same (stale) one conflicts.
    let mut update = created.clone();
    update["data"]["k"] = json!("v2");
    let (code, updated) = server
        .call(
            server
                .request(Method::PUT, &format!("{CMS}/a"))
                .json(&update),
        )
        .await;
    assert_eq!(code, 200, "{updated}");
    assert_ne!(updated["metadata"]["resourceVersion"].as_str().unwrap(), rv);
    let (code, stale) = server
        .call(
            server
                .request(Method::PUT, &format!("{CMS}/a"))
                .json(&update),
        )
        .await;
    assert_eq!((code, stale["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified")
    );

    let (code, bad) = server
        .call(
            server
                .request(Method::POST, CMS)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!((code, bad["reason"].as_str()), (400, Some("BadRequest")));

    let (code, invalid) = server
        .call(server.request(Method::POST, CMS).json(&cm("Not_Valid")))
        .await;
    assert_eq!((code, invalid["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(invalid["details"]["causes"][0]["field"], "metadata.name");

    let long = "a".repeat(254);
    let (code, _) = server
        .call(server.request(Method::POST, CMS).json(&cm(&long)))
        .await;
    assert_eq!(code, 422);

    let huge = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"k": "x".repeat(4 << 20)}});
    let (code, too_big) = server
        .call(server.request(Method::POST, CMS).json(&huge))
        .await;
    assert_eq!(
        (code, too_big["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    let (code, _) = server
        .call(server.request(Method::GET, "/api/v1/namespaces/default/widgets"))
        .await;
    assert_eq!(code, 404);

    let (code, nons) = server
        .call(
            server
                .request(Method::POST, "/api/v1/namespaces/ghost/configmaps")
                .json(&cm("x")),
        )
        .await;
    assert_eq!(
        (code, nons["message"].as_str()),
        (404, Some("namespaces \"ghost\" not found"))
    );
}

#[tokio::test]
async fn yaml_bodies_and_field_validation_modes() {
    let server = Server::start();
    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\nbogus: 1\n";
    let response = server
        .request(Method::POST, &format!("{CMS}?fieldValidation=Warn"))
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let warning = response
        .headers()
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(warning.contains("unknown field \\\"bogus\\\""), "{warning}");
    let strict = yaml.replace("from-yaml", "strict");
    let (code, body) = server
        .call(
            server
                .request(Method::POST, &format!("{CMS}?fieldValidation=Strict"))
                .header("content-type", "application/yaml")
                .body(strict),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("strict decoding error: unknown field \"bogus\""),
        "{body}"
    );
}

#[tokio::test]
async fn generation_and_status_subresource() {
    let server = Server::start();
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let (code, created) = server
        .call(server.request(Method::POST, path).json(&deploy))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let merge = |body: Value| {
        server
            .request(Method::PATCH, &format!("{path}/web"))
            .header("content-type", "application/merge-patch+json")
            .json(&body)
    };
    let (_, labelled) = server
        .call(merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await;
    assert_eq!(
        labelled["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );
    let (_, scaled) = server.call(merge(json!({"spec": {"replicas": 3}}))).await;
    assert_eq!(scaled["metadata"]["generation"], 2);
    let (_, ignored) = server.call(merge(json!({"status": {"replicas": 9}}))).await;
    // (The Deployment controller may have written a real status meanwhile.)
    assert_ne!(
        ignored["status"]["replicas"], 9,
        "status changes go through /status only"
    );
    let (code, status) = server
        .call(
            server
                .request(Method::PATCH, &format!("{path}/web/status"))
                .header("content-type", "application/merge-patch+json")
                .json(&json!({"status": {"replicas": 2}, "spec": {"replicas": 7}})),
        )
        .await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["status"]["replicas"], 2);
    assert_eq!(status["spec"]["replicas"], 3);
    assert_eq!(status["metadata"]["generation"], 2);
    let (_, scale) = server
        .call(server.request(Method::GET, &format!("{path}/web/scale")))
        .await;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
}

#[tokio::test]
async fn list_paging_and_label_selectors() {
    let server = Server::start();
    for i in 0..7 {
        let mut obj = cm(&format!("cm-{i}"));
        if i % 2 == 0 {
            obj["metadata"]["labels"]["even"] = json!("true");
        }
        server
            .call(server.request(Method::POST, CMS).json(&obj))
            .await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let url = format!("{CMS}?limit=3&continue={token}");
        let (code, page) = server.call(server.request(Method::GET, &url)).await;
        assert_eq!(code, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        names.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    let (_, even) = server
        .call(server.request(Method::GET, &format!("{CMS}?labelSelector=even%3Dtrue")))
        .await;
    assert_eq!(even["items"].as_array().unwrap().len(), 4);
    let (_, odd) = server
        .call(server.request(Method::GET, &format!("{CMS}?labelSelector=!even")))
        .await;
    assert_eq!(odd["items"].as_array().unwrap().len(), 3);
    let (code, deleted) = server
        .call(server.request(Method::DELETE, &format!("{CMS}?labelSelector=even%3Dtrue")))
        .await;
    assert_eq!(code, 200);
    assert_eq!(deleted["items"].as_array().unwrap().len(), 4);
    let (_, rest) = server.call(server.request(Method::GET, CMS)).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
}

/// Reads watch lines until `n` have arrived (or 10 s pass).
async fn read_events(response: reqwest::Response, n: usize) -> Vec<Value> {
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watch timed out")
            .expect("stream ended")
            .unwrap();
        buffer.extend_from_slice(&chunk);
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            events.push(serde_json::from_slice(&line).unwrap());
        }
    }
    events
}

#[tokio::test]
async fn watch_from_a_revision_sees_every_change_in_order() {
    let server = Server::start();
    let (_, first) = server
        .call(server.request(Method::POST, CMS).json(&cm("w1")))
        .await;
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call(server.request(Method::POST, CMS).json(&cm("w2")))
        .await;
    let response = server
        .request(
            Method::GET,
            &format!("{CMS}?watch=true&resourceVersion={rv}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server
        .call(server.request(Method::DELETE, &format!("{CMS}/w1")))
        .await;
    server
        .call(
            server
                .request(Method::PATCH, &format!("{CMS}/w2"))
                .header("content-type", "application/merge-patch+json")
                .json(&json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await;
    let events = read_events(response, 3).await;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ADDED".into(), "w2".into()),
            ("DELETED".into(), "w1".into()),
            ("MODIFIED".into(), "w2".into())
        ]
    );
    let revisions: Vec<i64> = events
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");

    // A label-selected watch sees the object leave its selection as DELETED.
    let response = server
        .request(
            Method::GET,
            &format!("{CMS}?watch=true&labelSelector=app%3Ddemo"),
        )
        .send()
        .await
        .unwrap();
    server
        .call(server.request(Method::POST, CMS).json(&cm("w3")))
        .await;
    server
        .call(
            server
                .request(Method::PATCH, &format!("{CMS}/w3"))
                .header("content-type", "application/merge-patch+json")
                .json(&json!({"metadata": {"labels": {"app": "gone"}}})),
        )
        .await;
    let events = read_events(response, 2).await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "DELETED");
}

#[tokio::test]
async fn watch_past_compaction_is_410_gone() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--compaction-interval-seconds", "1"],
    );
    let (_, first) = server
        .call(server.request(Method::POST, CMS).json(&cm("old")))
        .await;
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..3 {
        server
            .call(
                server
                    .request(Method::POST, CMS)
                    .json(&cm(&format!("n{i}"))),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let response = server
        .request(
            Method::GET,
            &format!("{CMS}?watch=true&resourceVersion={rv}"),
        )
        .send()
        .await
        .unwrap();
    let events = read_events(response, 1).await;
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let server = Server::start();
    let mut obj = cm("held");
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    server
        .call(server.request(Method::POST, CMS).json(&obj))
        .await;
    let (code, pending) = server
        .call(server.request(Method::DELETE, &format!("{CMS}/held")))
        .await;
    assert_eq!(code, 200);
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "a pending delete answers the object"
    );
    let (code, _) = server
        .call(server.request(Method::GET, &format!("{CMS}/held")))
        .await;
    assert_eq!(code, 200, "still there while a finalizer remains");
    let (code, _) = server
        .call(
            server
                .request(Method::PATCH, &format!("{CMS}/held"))
                .header("content-type", "application/json-patch+json")
                .body(r#"[{"op":"remove","path":"/metadata/finalizers"}]"#),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = server
        .call(server.request(Method::GET, &format!("{CMS}/held")))
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn apply_endpoint_takes_a_multi_document_stream() {
    let server = Server::start();
    let stream = std::fs::read_to_string(format!(
        "{}/examples/manifests/app-stack.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let send = |body: String| {
        server
            .request(Method::POST, "/apply?fieldManager=ci")
            .header("content-type", "application/yaml")
            .body(body)
    };
    let (code, first) = server.call(send(stream.clone())).await;
    assert_eq!(code, 200, "{first}");
    let results: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["created"; 5]);
    let (_, second) = server.call(send(stream.clone())).await;
    let results: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["unchanged"; 5]);
    let changed = stream.replace("LOG_LEVEL: info", "LOG_LEVEL: debug");
    let (_, third) = server.call(send(changed)).await;
    assert_eq!(third["items"][1]["result"], "configured");
    let (code, broken) = server
        .call(send(
            "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n".into(),
        ))
        .await;
    assert_eq!(code, 404);
    assert_eq!(broken["items"][0]["result"], "failed");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_restart_keeps_credentials() {
    let server = Server::start();
    let mut names = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let name = format!("durable-{i}");
        names.push(name.clone());
        tasks.push(server.call(server.request(Method::POST, CMS).json(&cm(&name))));
    }
    for (code, _) in futures::future::join_all(tasks).await {
        assert_eq!(code, 201);
    }
    let token = server.token.clone();
    let ca = server.ca_pem.clone();
    let dir = server.into_dir();
    let server = Server::start_with(dir, &[]);
    assert_eq!(server.token, token);
    assert_eq!(server.ca_pem, ca);
    let (_, list) = server.call(server.request(Method::GET, CMS)).await;
    let found: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(found.contains(&name.as_str()), "{name} lost after kill -9");
    }
    // Revisions keep increasing after the restart.
    let before: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, next) = server
        .call(server.request(Method::POST, CMS).json(&cm("after")))
        .await;
    let after: i64 = next["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after > before);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = Server::start();
    let _watch = server
        .request(Method::GET, &format!("{CMS}?watch=true"))
        .send()
        .await
        .unwrap();
    assert!(server.terminate(), "skiff serve exits 0 on SIGTERM");
}
