//! Client commands (`skiff apply|get|delete`), speaking the Kubernetes API like kubectl.
//!
//! - [`apply()`]: server-side apply of manifests (files, directories, stdin);
//! - [`get()`]: server-side Tables (or YAML/JSON/names) for any resource type;
//! - [`delete()`]: deletion by name, selector, `--all` or manifest;
//! - [`logs::run`]: the logs of a pod or of every pod of a Job, followed with `-f`;
//! - [`wait::run`]: waits for Jobs and exits with their outcome.
//!
//! Resource types are resolved through API discovery, so they work against skiff and
//! against any Kubernetes API server, custom resources included.

mod apply;
mod delete;
mod get;
pub mod image;
pub mod logs;
pub mod manifest;
pub mod printer;
mod request;
pub mod resolve;
mod session;
pub mod target;
pub mod wait;
pub mod yaml;

use std::path::PathBuf;

use kube::core::Status;

/// Arguments shared by client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Kubeconfig to use [default: DATA_DIR/kubeconfig]
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// skiff's data directory, whose kubeconfig is used by default
    #[arg(
        long,
        global = true,
        default_value = "./skiff-data",
        env = "SKIFF_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Namespace (default: the kubeconfig context's, else "default")
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// `skiff apply`: server-side apply of manifests.
#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    /// Manifest file, directory of *.yaml/*.yml/*.json files (not recursive), or - for stdin
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filenames: Vec<PathBuf>,
    /// Accepted for kubectl compatibility: skiff apply is always server-side
    #[arg(long)]
    pub server_side: bool,
    /// Field manager recorded for the applied fields
    #[arg(long, default_value = "skiff")]
    pub field_manager: String,
    /// Take ownership of fields other managers own instead of failing on conflicts
    #[arg(long)]
    pub force_conflicts: bool,
    /// Only "server" (or "none"): have the server validate without persisting
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "server")]
    pub dry_run: Option<DryRun>,
}

/// `skiff get`: show resources.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// Resource type (`pods`, `po`, `deploy`, `deployments.apps`, `all`, `deploy,svc`),
    /// or TYPE/NAME
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// Names of the objects to show (default: all of them)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// List across all namespaces
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (`app=web,tier!=db`)
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (`metadata.name=web`)
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Don't print table headers
    #[arg(long)]
    pub no_headers: bool,
}

/// `skiff delete`: delete resources.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// Resource type (`deploy`, `pods`, `deploy,svc`), or TYPE/NAME
    #[arg(value_name = "KIND")]
    pub kind: Option<String>,
    /// Names of the objects to delete
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Delete the objects in these manifests (file, directory, or - for stdin)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filenames: Vec<PathBuf>,
    /// What happens to dependents: deleted in the background, deleted before the owner
    /// (foreground), or left alone (orphan)
    #[arg(long, value_enum, default_value = "background")]
    pub cascade: Cascade,
    /// Delete every object of the given types in the namespace
    #[arg(long)]
    pub all: bool,
    /// With --all or -l: across all namespaces
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Delete the objects matching this label selector
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Treat objects that don't exist as deleted
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Only "server" (or "none"): have the server validate without deleting
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "server")]
    pub dry_run: Option<DryRun>,
}

/// `-o` formats for `skiff get`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The table with its extra columns
    Wide,
    /// The object (one NAME) or a List of them, as YAML
    Yaml,
    /// The object (one NAME) or a List of them, as JSON
    Json,
    /// `kind.group/name` per object
    Name,
}

/// `--cascade` for `skiff delete`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cascade {
    #[value(alias = "true")]
    Background,
    Foreground,
    #[value(alias = "false")]
    Orphan,
}

/// `--dry-run` modes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Really make the change
    None,
    /// Have the server run the request without persisting it
    Server,
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No kubeconfig where one was expected.
    #[error("{}", missing_kubeconfig(path, *explicit))]
    KubeconfigMissing { path: PathBuf, explicit: bool },
    /// The kubeconfig could not be read or used.
    #[error("loading kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The server could not be reached, or answered with something that isn't a Status.
    #[error("{}", connection_message(server, source))]
    Connection {
        server: String,
        #[source]
        source: kube::Error,
    },
    /// The server refused a request that the whole command depends on.
    #[error("{}", server_error(.0))]
    Server(Box<Status>),
    /// A `-f` path that doesn't exist.
    #[error("the path \"{0}\" does not exist")]
    PathNotFound(String),
    /// A manifest that could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A manifest that isn't valid YAML/JSON.
    #[error("error parsing {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// A manifest document that isn't a Kubernetes object.
    #[error("error validating \"{source_name}\": {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    /// The manifests held no objects.
    #[error("no objects passed to {0}")]
    NoObjects(&'static str),
    /// A resource type the server doesn't know.
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    /// Arguments that don't make sense together.
    #[error("{0}")]
    Usage(String),
    /// Waiting took longer than allowed.
    #[error("{0}")]
    TimedOut(String),
    /// Some objects failed; each failure has already been reported on stderr.
    #[error("{failed} of the requested objects failed")]
    Failed { failed: usize },
}

fn missing_kubeconfig(path: &std::path::Path, explicit: bool) -> String {
    if explicit {
        format!("kubeconfig {} does not exist", path.display())
    } else {
        format!(
            "no kubeconfig at {}: start the server with `skiff serve` (or pass --kubeconfig, or --data-dir for a server with another data directory)",
            path.display()
        )
    }
}

fn connection_message(server: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Service(_) | kube::Error::HyperError(_) => format!(
            "cannot reach the server at {server} (is `skiff serve` running?): {}",
            error_chain(err)
        ),
        other => format!("talking to the server at {server}: {}", error_chain(other)),
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `Error from server (Reason): message`, as kubectl prints API errors.
pub fn server_error(status: &Status) -> String {
    if status.code == 401 || status.reason == "Unauthorized" {
        return format!(
            "error: You must be logged in to the server ({})",
            non_empty(&status.message, "Unauthorized")
        );
    }
    if status.reason.is_empty() || status.reason == "Failed to parse error data" {
        format!(
            "Error from server: {}",
            non_empty(&status.message, "unknown error")
        )
    } else {
        format!("Error from server ({}): {}", status.reason, status.message)
    }
}

fn non_empty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() { fallback } else { s }
}

/// How a request about one object failed, as one kubectl-style line.
fn object_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => server_error(status),
        other => format!("error: {}", error_chain(other)),
    }
}

impl CliError {
    /// The line(s) to print on stderr, or `None` when the failure was already reported.
    pub fn message(&self) -> Option<String> {
        match self {
            CliError::Failed { .. } => None,
            CliError::Server(status) => Some(server_error(status)),
            other => Some(format!("error: {other}")),
        }
    }
}

/// Server-side apply of every object in `args.filenames`.
pub async fn apply(client: &ClientArgs, args: &ApplyArgs) -> Result<(), CliError> {
    apply::run(client, args).await
}

/// Shows resources: a server-side table, or YAML/JSON/names with `-o`.
pub async fn get(client: &ClientArgs, args: &GetArgs) -> Result<(), CliError> {
    get::run(client, args).await
}

/// Deletes resources by name, selector, `--all`, or manifest.
pub async fn delete(client: &ClientArgs, args: &DeleteArgs) -> Result<(), CliError> {
    delete::run(client, args).await
}

/// The process exit code for a command's result: 0 on success, 1 on any failure.
pub fn exit_code(result: &Result<(), CliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(CliError::TimedOut(_)) => 2,
        Err(_) => 1,
    }
}

/// Prints a failed command's error to stderr (unless already reported) and returns
/// the exit code: `std::process::exit(skiff::cli::report(&result))`.
pub fn report(result: &Result<(), CliError>) -> i32 {
    if let Err(err) = result
        && let Some(message) = err.message()
    {
        eprintln!("{message}");
    }
    exit_code(result)
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
        Apply {
            #[command(flatten)]
            client: ClientArgs,
            #[command(flatten)]
            args: ApplyArgs,
        },
        Get {
            #[command(flatten)]
            client: ClientArgs,
            #[command(flatten)]
            args: GetArgs,
        },
        Delete {
            #[command(flatten)]
            client: ClientArgs,
            #[command(flatten)]
            args: DeleteArgs,
        },
    }

    fn parse(args: &[&str]) -> TestCommand {
        TestCli::try_parse_from(std::iter::once("skiff").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    #[test]
    fn argument_wiring() {
        TestCli::command_for_tests().debug_assert();
        let TestCommand::Apply { client, args } = parse(&[
            "apply",
            "-f",
            "a.yaml",
            "-f",
            "-",
            "-n",
            "prod",
            "--dry-run",
            "--force-conflicts",
        ]) else {
            panic!()
        };
        assert_eq!(
            args.filenames,
            [PathBuf::from("a.yaml"), PathBuf::from("-")]
        );
        assert_eq!(client.namespace.as_deref(), Some("prod"));
        assert_eq!(args.dry_run, Some(DryRun::Server));
        assert_eq!(args.field_manager, "skiff");
        assert!(args.force_conflicts);

        let TestCommand::Get { client, args } = parse(&[
            "get",
            "deploy",
            "web",
            "api",
            "-o",
            "wide",
            "--kubeconfig",
            "/k",
        ]) else {
            panic!()
        };
        assert_eq!(args.kind, "deploy");
        assert_eq!(args.names, ["web", "api"]);
        assert_eq!(args.output, Some(OutputFormat::Wide));
        assert_eq!(client.kubeconfig, Some(PathBuf::from("/k")));

        let TestCommand::Delete { args, .. } = parse(&[
            "delete",
            "deploy",
            "web",
            "--cascade",
            "foreground",
            "--dry-run=server",
        ]) else {
            panic!()
        };
        assert_eq!(args.cascade, Cascade::Foreground);
        assert_eq!(args.dry_run, Some(DryRun::Server));
        let TestCommand::Delete { args, .. } = parse(&["delete", "--dry-run", "-f", "x.yaml"])
        else {
            panic!()
        };
        assert_eq!(args.cascade, Cascade::Background);
        assert_eq!(args.kind, None);
        assert_eq!(args.dry_run, Some(DryRun::Server));
        let TestCommand::Delete { args, .. } = parse(&["delete", "po", "x", "--cascade=false"])
        else {
            panic!()
        };
        assert_eq!(args.cascade, Cascade::Orphan);
    }

    impl TestCli {
        fn command_for_tests() -> clap::Command {
            <TestCli as clap::CommandFactory>::command()
        }
    }

    #[test]
    fn error_messages() {
        let status = Status::failure("deployments.apps \"x\" not found", "NotFound").with_code(404);
        assert_eq!(
            server_error(&status),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
        let err = CliError::Server(Box::new(status));
        assert_eq!(
            err.message().unwrap(),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
        assert_eq!(exit_code(&Err(err)), 1);
        assert_eq!(exit_code(&Ok(())), 0);
        assert_eq!(CliError::Failed { failed: 2 }.message(), None);
        let missing = CliError::KubeconfigMissing {
            path: PathBuf::from("./skiff-data/kubeconfig"),
            explicit: false,
        };
        assert!(missing.message().unwrap().contains("skiff serve"));
        let plain = Status::failure("404 page not found", "Failed to parse error data");
        assert_eq!(
            server_error(&plain),
            "Error from server: 404 page not found"
        );
    }
}
