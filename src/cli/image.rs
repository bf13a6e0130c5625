//! `skiff image import|ls|rm`: the local image store under `DATA_DIR/images`.
//!
//! These work on the store's files directly, whether or not `skiff serve` runs: the store
//! is safe to change from two processes at once (see `skiff_runtime::image`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use skiff_runtime::image::{ImageError, ImageRecord, ImageStore};

use super::printer::{align, human_duration};

/// `skiff image …` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ImageCommand {
    /// Import a .wasm or .wat file, an OCI image layout directory, or an OCI/docker-save
    /// tarball, and tag it REFERENCE (e.g. `hello:v1`, `localhost/app:1.0`).
    Import {
        /// skiff's data directory; images live in DATA_DIR/images
        #[arg(long, default_value = "./skiff-data", env = "SKIFF_DATA_DIR")]
        data_dir: PathBuf,
        /// The file or directory to import
        file: PathBuf,
        /// The name to give it (normalized like Docker: `hello` is docker.io/library/hello:latest)
        reference: String,
    },
    /// List the images in the local store.
    #[command(visible_alias = "list")]
    Ls {
        /// skiff's data directory; images live in DATA_DIR/images
        #[arg(long, default_value = "./skiff-data", env = "SKIFF_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Remove an image's tag, and the content no other tag uses.
    #[command(visible_alias = "remove")]
    Rm {
        /// skiff's data directory; images live in DATA_DIR/images
        #[arg(long, default_value = "./skiff-data", env = "SKIFF_DATA_DIR")]
        data_dir: PathBuf,
        /// Reference (`hello:v1`) or digest (`sha256:…`, or a unique prefix) of the image
        reference: String,
    },
}

/// Why an image command failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageCliError {
    /// The store could not be opened.
    #[error("opening the image store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    /// An import, listing or removal failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The blocking store task died.
    #[error("image store task failed: {0}")]
    Task(String),
}

/// Runs an image command, printing its result on stdout.
pub async fn run(cmd: &ImageCommand) -> Result<(), ImageCliError> {
    let cmd = cmd.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        run_blocking(&cmd, Utc::now(), &mut out)
    })
    .await
    .map_err(|e| ImageCliError::Task(e.to_string()))?
}

/// Prints a failed command's error (`error: …`) to stderr and returns the exit code.
pub fn report(result: &Result<(), ImageCliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("images")
}

fn open(data_dir: &Path) -> Result<ImageStore, ImageCliError> {
    let path = store_dir(data_dir);
    ImageStore::open(&path).map_err(|source| ImageCliError::Open { path, source })
}

fn run_blocking(
    cmd: &ImageCommand,
    now: DateTime<Utc>,
    out: &mut dyn std::io::Write,
) -> Result<(), ImageCliError> {
    let write = |out: &mut dyn std::io::Write, text: &str| {
        // A closed stdout (`skiff image ls | head -1`) is not an error worth reporting.
        let _ = out.write_all(text.as_bytes());
    };
    match cmd {
        ImageCommand::Import {
            data_dir,
            file,
            reference,
        } => {
            let record = open(data_dir)?.import(file, reference)?;
            write(
                out,
                &format!(
                    "Imported {} ({}, {}, {})\n",
                    record.reference,
                    record.kind,
                    record.digest,
                    human_size(record.size)
                ),
            );
        }
        ImageCommand::Ls { data_dir } => {
            // Listing an absent store shows an empty table rather than creating it.
            let records = if store_dir(data_dir).is_dir() {
                open(data_dir)?.list()?
            } else {
                Vec::new()
            };
            write(out, &render_list(&records, now));
        }
        ImageCommand::Rm {
            data_dir,
            reference,
        } => {
            if !store_dir(data_dir).is_dir() {
                return Err(ImageError::NotFound(reference.clone()).into());
            }
            let store = open(data_dir)?;
            let removed = store.remove(reference)?;
            let mut text = format!("Untagged: {}\n", removed.reference);
            if store.resolve(&removed.digest)?.is_none() {
                text.push_str(&format!("Deleted: {}\n", removed.digest));
            }
            write(out, &text);
        }
    }
    Ok(())
}

/// The `ls` table: REFERENCE, KIND, DIGEST (12 hex, like Docker's IDs), SIZE, CREATED (age).
fn render_list(records: &[ImageRecord], now: DateTime<Utc>) -> String {
    let mut lines = vec![
        ["REFERENCE", "KIND", "DIGEST", "SIZE", "CREATED"]
            .map(String::from)
            .to_vec(),
    ];
    for r in records {
        let created = DateTime::parse_from_rfc3339(&r.created)
            .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&Utc))))
            .unwrap_or_else(|_| "<unknown>".to_string());
        lines.push(vec![
            r.reference.clone(),
            r.kind.to_string(),
            short_digest(&r.digest),
            human_size(r.size),
            created,
        ]);
    }
    align(&lines)
}

/// The first 12 hex digits of a digest.
fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Sizes as Docker prints them: decimal units, at most 4 significant digits
/// (`532B`, `13.26kB`, `1.5MB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 1000.0 || unit == 0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(clap::Subcommand, Debug)]
    enum TestCommand {
        Image {
            #[command(subcommand)]
            command: ImageCommand,
        },
    }

    fn parse(args: &[&str]) -> ImageCommand {
        let TestCommand::Image { command } =
            TestCli::try_parse_from(std::iter::once("skiff").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
                .command;
        command
    }

    #[test]
    fn arguments() {
        <TestCli as clap::CommandFactory>::command().debug_assert();
        match parse(&["image", "import", "--data-dir", "/d", "m.wasm", "hello:v1"]) {
            ImageCommand::Import {
                data_dir,
                file,
                reference,
            } => {
                assert_eq!(data_dir, PathBuf::from("/d"));
                assert_eq!(file, PathBuf::from("m.wasm"));
                assert_eq!(reference, "hello:v1");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&["image", "ls"]), ImageCommand::Ls { .. }));
        assert!(matches!(parse(&["image", "list"]), ImageCommand::Ls { .. }));
        assert!(matches!(
            parse(&["image", "rm", "hello"]),
            ImageCommand::Rm { reference, .. } if reference == "hello"
        ));
    }

    #[test]
    fn sizes_and_digests() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(532), "532B");
        assert_eq!(human_size(13_256), "13.26kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(999_999), "1000kB");
        assert_eq!(human_size(7_000_000_000), "7GB");
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123456789abcdef"),
            "0123456789ab"
        );
    }

    fn run_to_string(cmd: ImageCommand, now: DateTime<Utc>) -> Result<String, ImageCliError> {
        let mut out = Vec::new();
        run_blocking(&cmd, now, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn import_ls_rm() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let now = Utc::now();
        let ls = || ImageCommand::Ls {
            data_dir: data_dir.clone(),
        };
        assert_eq!(
            run_to_string(ls(), now).unwrap(),
            "REFERENCE   KIND   DIGEST   SIZE   CREATED\n"
        );
        assert!(!data_dir.exists(), "ls does not create the store");

        let wat = tmp.path().join("hello.wat");
        std::fs::write(&wat, r#"(module (func (export "_start")))"#).unwrap();
        let out = run_to_string(
            ImageCommand::Import {
                data_dir: data_dir.clone(),
                file: wat.clone(),
                reference: "hello:v1".into(),
            },
            now,
        )
        .unwrap();
        assert!(
            out.starts_with("Imported docker.io/library/hello:v1 (wasm-module, sha256:"),
            "{out}"
        );
        let component = tmp.path().join("c.wat");
        std::fs::write(&component, "(component)").unwrap();
        run_to_string(
            ImageCommand::Import {
                data_dir: data_dir.clone(),
                file: component,
                reference: "localhost/comp".into(),
            },
            now,
        )
        .unwrap();

        let later = now + chrono::TimeDelta::seconds(3 * 60);
        let table = run_to_string(ls(), later).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(header, ["REFERENCE", "KIND", "DIGEST", "SIZE", "CREATED"]);
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(row[0], "docker.io/library/hello:v1");
        assert_eq!(row[1], "wasm-module");
        assert_eq!(row[2].len(), 12);
        assert!(row[2].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(row[3].ends_with('B'), "{}", row[3]);
        assert!(
            row[4] == "3m" || row[4].starts_with("3m") || row[4] == "2m59s",
            "{}",
            row[4]
        );
        let row: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&row[..2], ["localhost/comp:latest", "wasm-component"]);

        let out = run_to_string(
            ImageCommand::Rm {
                data_dir: data_dir.clone(),
                reference: "hello:v1".into(),
            },
            now,
        )
        .unwrap();
        assert!(
            out.starts_with("Untagged: docker.io/library/hello:v1\nDeleted: sha256:"),
            "{out}"
        );
        let err = run_to_string(
            ImageCommand::Rm {
                data_dir: data_dir.clone(),
                reference: "hello:v1".into(),
            },
            now,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "image \"hello:v1\" not found");
        assert_eq!(report(&Err(err)), 1);
        assert_eq!(run_to_string(ls(), later).unwrap().lines().count(), 2);
    }
}
