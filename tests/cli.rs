//! `skiff apply|get|delete` against a real `skiff serve`, using the data dir's kubeconfig.

mod common;

use std::process::{Command, Output};

use common::Server;

fn skiff(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .output()
        .expect("run skiff")
}

fn ok(server: &Server, args: &[&str]) -> String {
    let out = skiff(server, args);
    assert!(
        out.status.success(),
        "skiff {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apply_get_delete_round_trip() {
    let server = Server::start();
    let manifests = format!("{}/examples/manifests", env!("CARGO_MANIFEST_DIR"));
    let out = ok(&server, &["apply", "-f", &manifests]);
    assert!(
        out.contains("deployment.apps/nginx-deploy created"),
        "{out}"
    );
    assert!(out.contains("configmap/shop-config created"), "{out}");
    let again = ok(&server, &["apply", "-f", &manifests]);
    assert!(
        again.contains("deployment.apps/nginx-deploy unchanged"),
        "{again}"
    );

    let table = ok(&server, &["get", "deploy"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("nginx-deploy"), "{table}");
    let jobs = ok(&server, &["get", "jobs", "-n", "shop", "-o", "name"]);
    assert_eq!(jobs.trim(), "job.batch/migrate");
    let all = ok(&server, &["get", "cm", "-A"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with("shop") && l.contains("shop-config")),
        "{all}"
    );

    let missing = skiff(&server, &["get", "deploy", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));

    let out = ok(&server, &["delete", "deploy", "nginx-deploy"]);
    assert!(
        out.contains("deployment.apps \"nginx-deploy\" deleted"),
        "{out}"
    );
    // kubectl sees the same state.
    let err = server.kubectl_err(&["get", "deploy", "nginx-deploy"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_missing_kubeconfig_says_to_start_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["get", "pods", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("skiff serve"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
