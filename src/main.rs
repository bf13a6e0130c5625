//! The `skiff` binary: argument parsing and dispatch only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the server allocates from many threads at once (JSON
/// objects on every API write, watch event and reconcile), and glibc's arena locks and
/// consolidation were a quarter of its CPU under a 10,000-pod Job.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A lightweight, Kubernetes-compatible workload orchestrator.
#[derive(Parser)]
#[command(name = "skiff", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (and its controllers) on this machine.
    Serve(ServeArgs),
    /// Create or update objects from manifests (server-side apply).
    Apply {
        #[command(flatten)]
        client: skiff::cli::ClientArgs,
        #[command(flatten)]
        args: skiff::cli::ApplyArgs,
    },
    /// Show resources, with the server's columns.
    Get {
        #[command(flatten)]
        client: skiff::cli::ClientArgs,
        #[command(flatten)]
        args: skiff::cli::GetArgs,
    },
    /// Manage the local image store (works whether or not the server runs).
    Image {
        #[command(subcommand)]
        command: skiff::cli::image::ImageCommand,
    },
    /// Delete resources.
    Delete {
        #[command(flatten)]
        client: skiff::cli::ClientArgs,
        #[command(flatten)]
        args: skiff::cli::DeleteArgs,
    },
    /// Print the logs of a pod, or of every pod of a Job (-f follows them).
    Logs {
        #[command(flatten)]
        client: skiff::cli::ClientArgs,
        #[command(flatten)]
        args: skiff::cli::logs::LogsArgs,
    },
    /// Wait for Jobs to finish; the exit status is their outcome (0 complete, 1 failed,
    /// 2 timed out).
    Wait {
        #[command(flatten)]
        client: skiff::cli::ClientArgs,
        #[command(flatten)]
        args: skiff::cli::wait::WaitArgs,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory for the database, certificates, token and kubeconfig.
    #[arg(long, default_value = "./skiff-data", env = "SKIFF_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Datastore URL [default: sqlite://DATA_DIR/skiff.db].
    #[arg(long)]
    datastore: Option<String>,
    /// How often watch history is compacted, in seconds (Kubernetes: 300).
    #[arg(long, default_value_t = 300)]
    compaction_interval_seconds: u64,
    /// Normal Events each component (kubelet, scheduler, each controller) may write per
    /// second once its burst is spent, as the kubelet's `--event-qps`; 0 for no limit.
    /// Warnings are never dropped for the rate.
    #[arg(long, default_value_t = 50.0)]
    event_qps: f64,
    /// Normal Events each component may write at once, as the kubelet's `--event-burst`.
    #[arg(long, default_value_t = 100)]
    event_burst: u32,
    /// Name of the embedded node [default: the host name].
    #[arg(long)]
    node_name: Option<String>,
    /// Run the control plane only, without the embedded node.
    #[arg(long)]
    no_node: bool,
    /// A registry that may be reached over plain HTTP (repeatable; loopback always may).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// First restart delay of a crashing container, in seconds (doubles up to the maximum).
    #[arg(long, default_value_t = 10.0)]
    restart_backoff_seconds: f64,
    /// Longest restart delay of a crashing container, in seconds.
    #[arg(long, default_value_t = 300.0)]
    restart_backoff_max_seconds: f64,
    /// Size at which a container's log file is rotated, as a quantity (kubelet's
    /// `containerLogMaxSize`).
    #[arg(long, default_value = "10Mi", value_parser = parse_bytes)]
    container_log_max_size: u64,
    /// Log files kept per container attempt, the live one included (kubelet's
    /// `containerLogMaxFiles`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    container_log_max_files: u32,
    /// Most processes an OCI container may have (`pids.max`); 0 for no limit.
    #[arg(long, default_value_t = 4096)]
    container_pids_limit: i64,
    /// Plain-HTTP address of the gateway (Ingress and Services); port 0 picks a free port
    /// (written to DATA_DIR/gateway-address); `off` serves none.
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway: String,
    /// Largest request body the gateway accepts, as a quantity (larger ones get 413).
    #[arg(long, default_value = "16Mi", value_parser = parse_bytes)]
    gateway_max_body: u64,
}

/// Parses a byte quantity such as `10Mi`, `512Ki` or `1048576`.
fn parse_bytes(s: &str) -> Result<u64, String> {
    match skiff::api::validation::parse_quantity(s) {
        Some(milli) if milli >= 1000 => u64::try_from(milli / 1000).map_err(|e| e.to_string()),
        _ => Err(format!(
            "{s:?} is not a positive byte quantity (for example 10Mi)"
        )),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                let node = (!args.no_node).then(|| {
                    let mut node = skiff::node::NodeConfig::for_host(args.data_dir.clone());
                    if let Some(name) = args.node_name.clone() {
                        node.name = name;
                    }
                    node.insecure_registries = args.insecure_registries.clone();
                    node.backoff_initial =
                        Duration::from_secs_f64(args.restart_backoff_seconds.max(0.001));
                    node.backoff_max =
                        Duration::from_secs_f64(args.restart_backoff_max_seconds.max(0.001));
                    node.log_limits = skiff::node::logs::LogLimits {
                        max_file_bytes: args.container_log_max_size,
                        max_files: args.container_log_max_files,
                    };
                    node.pids_limit =
                        (args.container_pids_limit > 0).then_some(args.container_pids_limit);
                    node
                });
                let gateway = match args.gateway.as_str() {
                    "off" => None,
                    addr => Some(addr.parse::<SocketAddr>().with_context(|| {
                        format!("--gateway {addr:?}: expected HOST:PORT or off")
                    })?),
                };
                let config = skiff::server::ServeConfig {
                    gateway,
                    gateway_config: skiff::gateway::GatewayConfig {
                        max_body_bytes: usize::try_from(args.gateway_max_body)
                            .unwrap_or(usize::MAX),
                    },
                    node,
                    data_dir: args.data_dir,
                    listen: args.listen,
                    datastore: args.datastore,
                    compaction_interval: Duration::from_secs(
                        args.compaction_interval_seconds.max(1),
                    ),
                    event_rate: skiff::api::objects::EventRate {
                        qps: args.event_qps.max(0.0),
                        burst: args.event_burst,
                    },
                };
                skiff::server::serve(config).await.context("skiff serve")
            }
            Command::Apply { client, args } => {
                let result = skiff::cli::apply(&client, &args).await;
                std::process::exit(skiff::cli::report(&result))
            }
            Command::Get { client, args } => {
                let result = skiff::cli::get(&client, &args).await;
                std::process::exit(skiff::cli::report(&result))
            }
            Command::Image { command } => {
                let result = skiff::cli::image::run(&command).await;
                std::process::exit(skiff::cli::image::report(&result))
            }
            Command::Delete { client, args } => {
                let result = skiff::cli::delete(&client, &args).await;
                std::process::exit(skiff::cli::report(&result))
            }
            Command::Logs { client, args } => {
                let result = skiff::cli::logs::run(&client, &args).await;
                std::process::exit(skiff::cli::report(&result))
            }
            Command::Wait { client, args } => {
                let result = skiff::cli::wait::run(&client, &args).await;
                std::process::exit(skiff::cli::report(&result))
            }
        }
    })
}
