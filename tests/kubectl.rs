//! Real kubectl against a real `skiff serve`: every command the control-plane issue names.

mod common;

use common::{Server, eventually, write_file};
use serde_json::Value;

fn example(name: &str) -> String {
    format!("{}/examples/manifests/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn version_api_resources_and_api_versions() {
    let server = Server::start();
    let version = server.kubectl_ok(&["version", "-o", "json"]);
    assert_eq!(json(&version)["serverVersion"]["major"], "1");
    let resources = server.kubectl_ok(&["api-resources"]);
    for line in [
        "deployments",
        "deploy",
        "cronjobs",
        "cj",
        "namespaces",
        "ns",
        "leases",
    ] {
        assert!(
            resources.contains(line),
            "api-resources lacks {line}:\n{resources}"
        );
    }
    let versions = server.kubectl_ok(&["api-versions"]);
    for gv in ["apps/v1", "batch/v1", "coordination.k8s.io/v1", "v1"] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}:\n{versions}"
        );
    }
    let view = server.kubectl_ok(&["config", "view", "-o", "json"]);
    assert_eq!(
        json(&view)["clusters"][0]["cluster"]["server"],
        server.base.as_str()
    );
}

#[test]
fn auth_can_i_and_whoami_answer_for_the_admin() {
    let server = Server::start();
    assert_eq!(
        server
            .kubectl_ok(&["auth", "can-i", "create", "deployments"])
            .trim(),
        "yes"
    );
    let whoami = server.kubectl_ok(&["auth", "whoami"]);
    assert!(whoami.contains("skiff-admin"), "{whoami}");
}

#[test]
fn apply_creates_then_reapply_configures_client_side() {
    let server = Server::start();
    let path = example("nginx-deploy.yaml");
    let out = server.kubectl_ok(&["apply", "-f", &path]);
    assert_eq!(out.trim(), "deployment.apps/nginx-deploy created");
    let out = server.kubectl_ok(&["apply", "-f", &path]);
    assert_eq!(out.trim(), "deployment.apps/nginx-deploy unchanged");

    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("replicas: 3", "replicas: 5")
        .replace("nginx:1.27", "nginx:1.28");
    let changed_path = write_file(&server, "nginx-changed.yaml", &changed);
    let out = server.kubectl_ok(&["apply", "-f", changed_path.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/nginx-deploy configured");
    let got = json(&server.kubectl_ok(&["get", "deploy", "nginx-deploy", "-o", "json"]));
    assert_eq!(got["spec"]["replicas"], 5);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(got["metadata"]["generation"], 2);
    // Defaults a Kubernetes user expects.
    assert_eq!(got["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(got["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(got["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(
        got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
}

#[test]
fn apply_server_side_directories_and_multi_document_files() {
    let server = Server::start();
    let dir = server.dir.path().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(example("app-stack.yaml"), dir.join("app-stack.yaml")).unwrap();
    std::fs::copy(example("nginx-deploy.yaml"), dir.join("nginx.yaml")).unwrap();
    let out = server.kubectl_ok(&["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    for line in [
        "namespace/shop serverside-applied",
        "configmap/shop-config serverside-applied",
        "service/shop serverside-applied",
        "job.batch/migrate serverside-applied",
        "cronjob.batch/nightly-report serverside-applied",
        "deployment.apps/nginx-deploy serverside-applied",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let cm = json(&server.kubectl_ok(&[
        "get",
        "cm",
        "shop-config",
        "-n",
        "shop",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");
    // A conflicting change from another manager is refused, then forced.
    server.kubectl_ok(&["scale", "deploy/nginx-deploy", "--replicas=2"]);
    let err = server.kubectl_err(&[
        "apply",
        "--server-side",
        "-f",
        dir.join("nginx.yaml").to_str().unwrap(),
    ]);
    assert!(err.contains("conflict"), "{err}");
    server.kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        dir.join("nginx.yaml").to_str().unwrap(),
    ]);
    let got = json(&server.kubectl_ok(&["get", "deploy", "nginx-deploy", "-o", "json"]));
    assert_eq!(got["spec"]["replicas"], 3);
}

#[test]
fn create_get_outputs_selectors_and_all_namespaces() {
    let server = Server::start();
    server.kubectl_ok(&["create", "namespace", "team-a"]);
    server.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "-n",
        "team-a",
    ]);
    server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    server.kubectl_ok(&["create", "job", "once", "--image=busybox", "-n", "team-a"]);

    let table = server.kubectl_ok(&["get", "deployments"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("web") && table.contains("0/2"), "{table}");
    let wide = server.kubectl_ok(&["get", "deploy", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.27") && wide.contains("app=web"),
        "{wide}"
    );

    let jobs = server.kubectl_ok(&["get", "jobs", "-n", "team-a"]);
    let header: Vec<&str> = jobs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);

    assert_eq!(
        server
            .kubectl_ok(&["get", "deploy", "web", "-o", "name"])
            .trim(),
        "deployment.apps/web"
    );
    let yaml = server.kubectl_ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("replicas: 2"),
        "{yaml}"
    );
    let jp = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(jp, "nginx:1.27");

    let all_ns = server.kubectl_ok(&["get", "configmaps", "-A"]);
    assert!(
        all_ns
            .lines()
            .any(|l| l.starts_with("team-a") && l.contains("settings")),
        "{all_ns}"
    );
    let by_label = server.kubectl_ok(&["get", "deploy", "-l", "app=web", "-o", "name"]);
    assert_eq!(by_label.trim(), "deployment.apps/web");
    let none = server.kubectl(&["get", "deploy", "-l", "app=nope"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found in default namespace.")
    );
    let by_field = server.kubectl_ok(&[
        "get",
        "ns",
        "--field-selector",
        "metadata.name=team-a",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "namespace/team-a");
    let bad_field = server.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=x"]);
    assert!(
        bad_field.contains("field label not supported"),
        "{bad_field}"
    );

    let all = server.kubectl_ok(&["get", "all", "-n", "team-a"]);
    assert!(all.contains("job.batch/once"), "{all}");
    let all_default = server.kubectl_ok(&["get", "all"]);
    assert!(all_default.contains("deployment.apps/web"), "{all_default}");
}

#[test]
fn get_watch_streams_changes() {
    let server = Server::start();
    server.kubectl_ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    let mut child = std::process::Command::new(common::kubectl())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .env("KUBECONFIG", server.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    server.kubectl_ok(&["create", "configmap", "arrived", "--from-literal=b=2"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("configmap/watched"), "{text}");
    assert!(text.contains("configmap/arrived"), "{text}");
}

#[test]
fn describe_shows_events() {
    let server = Server::start();
    server.kubectl_ok(&["create", "deployment", "web", "--image=nginx:1.27"]);
    let uid = server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"web.1","namespace":"default"}},
        "involvedObject":{{"apiVersion":"apps/v1","kind":"Deployment","name":"web","namespace":"default","uid":"{uid}"}},
        "reason":"ScalingReplicaSet","message":"Scaled up replica set web-abc to 1","type":"Normal",
        "source":{{"component":"deployment-controller"}},"count":1,
        "firstTimestamp":"2026-01-01T00:00:00Z","lastTimestamp":"2026-01-01T00:00:00Z"}}"#
    );
    let out = server.kubectl_stdin(&["create", "-f", "-"], Some(&event));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let described = server.kubectl_ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
    assert!(described.contains("Replicas:"), "{described}");
    assert!(
        described.contains("ScalingReplicaSet")
            && described.contains("Scaled up replica set web-abc to 1"),
        "{described}"
    );
}

#[test]
fn edit_patch_label_annotate_scale() {
    let server = Server::start();
    server.kubectl_ok(&["create", "deployment", "web", "--image=nginx:1.27"]);

    // kubectl edit through an "editor" that rewrites the image.
    let editor = write_file(
        &server,
        "editor.sh",
        "#!/bin/sh\nsed -i 's/nginx:1.27/nginx:1.29/' \"$1\"\n",
    );
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = std::process::Command::new(common::kubectl())
        .args(["edit", "deployment/web"])
        .env("KUBECONFIG", server.kubeconfig())
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web edited"));
    let image = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.29");

    // Strategic merge keeps the container list keyed by name.
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let names = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(names, "sidecar nginx");
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]"#,
    ]);
    let got = json(&server.kubectl_ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(got["spec"]["minReadySeconds"], 5);
    assert_eq!(got["spec"]["revisionHistoryLimit"], 3);
    let bad = server.kubectl_err(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":42}]"#,
    ]);
    assert!(
        bad.contains("is invalid") && bad.contains("/spec/replicas"),
        "{bad}"
    );

    server.kubectl_ok(&["label", "deploy", "web", "tier=front"]);
    server.kubectl_ok(&["annotate", "deploy", "web", "owner=team-a"]);
    let got = json(&server.kubectl_ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(got["metadata"]["labels"]["tier"], "front");
    assert_eq!(got["metadata"]["annotations"]["owner"], "team-a");
    let err = server.kubectl_err(&["label", "deploy", "web", "tier=back"]);
    assert!(err.contains("already has a value"), "{err}");
    server.kubectl_ok(&["label", "deploy", "web", "tier-"]);

    assert!(
        server
            .kubectl_ok(&["scale", "deploy", "web", "--replicas=4"])
            .contains("scaled")
    );
    let replicas = server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "4");
}

#[test]
fn delete_cascades_background_foreground_and_orphan() {
    let server = Server::start();
    let owner_yaml =
        |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    for mode in ["background", "foreground", "orphan"] {
        let owner = format!("owner-{mode}");
        let out = server.kubectl_stdin(&["create", "-f", "-"], Some(&owner_yaml(&owner)));
        assert!(out.status.success());
        let uid = server.kubectl_ok(&["get", "cm", &owner, "-o", "jsonpath={.metadata.uid}"]);
        let dependent = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dep-{mode}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: true\n"
        );
        let out = server.kubectl_stdin(&["create", "-f", "-"], Some(&dependent));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = server.kubectl_ok(&[
            "delete",
            "cm",
            &owner,
            &format!("--cascade={mode}"),
            "--timeout=30s",
        ]);
        assert!(
            out.contains(&format!("configmap \"{owner}\" deleted")),
            "{out}"
        );
        let dep = format!("dep-{mode}");
        if mode == "orphan" {
            let refs = server.kubectl_ok(&[
                "get",
                "cm",
                &dep,
                "-o",
                "jsonpath={.metadata.ownerReferences}",
            ]);
            assert_eq!(refs, "", "orphaned dependents lose their owner reference");
        } else {
            eventually(20, || {
                let out = server.kubectl(&["get", "cm", &dep]);
                (!out.status.success()).then_some(())
            });
        }
    }
}

#[test]
fn namespace_deletion_removes_contents() {
    let server = Server::start();
    server.kubectl_ok(&["create", "namespace", "doomed"]);
    server.kubectl_ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        "doomed",
        "--from-literal=a=b",
    ]);
    server.kubectl_ok(&["delete", "namespace", "doomed", "--timeout=30s"]);
    let err = server.kubectl_err(&["get", "namespace", "doomed"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let err = server.kubectl_err(&["create", "configmap", "late", "-n", "doomed"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn explain_answers_from_openapi() {
    let server = Server::start();
    let out = server.kubectl_ok(&["explain", "deployment.spec"]);
    assert!(out.contains("replicas"), "{out}");
    assert!(out.contains("strategy"), "{out}");
    let out = server.kubectl_ok(&["explain", "pods.spec.containers.image"]);
    assert!(out.to_lowercase().contains("image"), "{out}");
}

#[test]
fn strict_validation_rejects_unknown_fields_and_invalid_objects() {
    let server = Server::start();
    let typo = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndatta:\n  a: b\n";
    let out = server.kubectl_stdin(&["apply", "-f", "-"], Some(typo));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field") && err.contains("datta"),
        "{err}"
    );

    let bad_name = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n";
    let out = server.kubectl_stdin(&["apply", "-f", "-"], Some(bad_name));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid") && err.contains("RFC 1123"), "{err}");

    let no_image =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n";
    let out = server.kubectl_stdin(&["apply", "-f", "-"], Some(no_image));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.containers[0].image") && err.contains("Required value"),
        "{err}"
    );
}

#[test]
fn without_a_node_pods_stay_pending_and_logs_explain_why() {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--no-node"]);
    server.kubectl_ok(&["run", "hello", "--image=hello.wasm", "--restart=Never"]);
    let table = server.kubectl_ok(&["get", "pods"]);
    assert!(
        table.contains("hello") && table.contains("Pending"),
        "{table}"
    );
    let err = server.kubectl_err(&["logs", "hello"]);
    assert!(err.contains("does not have a host assigned"), "{err}");
    server.kubectl_ok(&["delete", "pod", "hello", "--timeout=20s"]);
}
