//! The CI example pipeline (`examples/ci/run.sh`) end to end: a Wasm checker fanned out over
//! a read-only source tree, artifacts on a shared claim, a dependent report Job, streamed with
//! `skiff logs -f job/NAME`, and the outcome as `skiff wait`'s exit status.

mod common;

use std::process::{Command, Output};

use common::{Server, example_guests};

fn run_pipeline(server: &Server, source: &std::path::Path) -> Output {
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci/run.sh"))
        .arg(source)
        .env("SKIFF", env!("CARGO_BIN_EXE_skiff"))
        .env("SKIFF_DATA_DIR", server.dir.path())
        .output()
        .expect("run examples/ci/run.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_ci_example_streams_its_shards_and_exits_with_the_outcome() {
    example_guests();
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--node-name", "test-node"]);
    let source = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(
            source.path().join(format!("module{i}.rs")),
            format!("fn f{i}() {{}}\n"),
        )
        .unwrap();
    }
    std::fs::create_dir(source.path().join("docs")).unwrap();
    std::fs::write(source.path().join("docs/notes.md"), "fine\ntrailing \n").unwrap();
    std::fs::create_dir(source.path().join("target")).unwrap();
    std::fs::write(source.path().join("target/skipped.rs"), "\tnot checked \n").unwrap();

    // A problem in the tree: the report fails, and so does the run.
    let out = run_pipeline(&server, source.path());
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    for shard in 0..4 {
        assert!(
            log.contains(&format!("shard {shard}/4: checking")),
            "shard {shard} missing from the streamed logs: {log}"
        );
    }
    assert!(
        log.contains("docs/notes.md:2: trailing whitespace"),
        "{log}"
    );
    assert!(
        log.contains("4 shards, 13 files, 14 lines checked, 1 problems"),
        "{log}"
    );
    assert!(log.contains("FAIL"), "{log}");
    assert!(log.contains("job.batch/report failed"), "{log}");
    assert!(!log.contains("skipped.rs"), "{log}");

    // Fixed: a fresh run passes and exits 0. The guests could not write to the tree.
    std::fs::write(source.path().join("docs/notes.md"), "fine\nclean\n").unwrap();
    let out = run_pipeline(&server, source.path());
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("0 problems") && log.contains("PASS"), "{log}");
    assert!(log.contains("job.batch/report complete"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(source.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 14, "the tree changed: {names:?}");
}
