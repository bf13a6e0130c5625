//! `skiff logs [-f] pod/NAME | job/NAME`: a pod's logs, or every pod of a Job.
//!
//! For a Job, unlike `kubectl logs job/NAME` (one pod), every pod's containers are shown,
//! each line prefixed `[POD CONTAINER]` when the Job runs more than one pod. With `-f` the
//! command follows pods as the Job creates them (also while it waits on `suspend` or
//! `skiff.dev/after`) and returns once the Job has finished and every stream has ended.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use tokio::sync::Mutex;

use super::session::Session;
use super::target::Target;
use super::wait::{Outcome, outcome};
use super::{CliError, ClientArgs};

/// How often a followed Job's pods are listed.
const POLL: Duration = Duration::from_millis(250);

/// `skiff logs` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    /// `pod/NAME` (or `NAME`) or `job/NAME`
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Follow the output as it is written
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only this container (default: every container, init containers first)
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Prefix each line with its pod and container (default: only for multi-pod Jobs)
    #[arg(long)]
    pub prefix: bool,
}

/// The containers of a pod whose logs are shown, init containers first.
fn containers(pod: &Pod, only: Option<&str>) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone())
        .filter(|name| only.is_none_or(|o| o == name))
        .collect()
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Prints one container's log, following it when asked. A container that has not started
/// yet is waited for (while its pod has not finished).
async fn stream(
    pods: Api<Pod>,
    pod: String,
    container: String,
    follow: bool,
    prefix: Option<String>,
    out: Arc<Mutex<()>>,
) -> Result<(), kube::Error> {
    let params = LogParams {
        container: Some(container),
        follow,
        ..LogParams::default()
    };
    let reader = loop {
        match pods.log_stream(&pod, &params).await {
            Ok(reader) => break reader,
            // Not started yet (400) while the pod still runs: try again.
            Err(kube::Error::Api(status)) if status.code == 400 && follow => {
                match pods.get_opt(&pod).await? {
                    Some(p) if !finished(&p) => tokio::time::sleep(POLL).await,
                    _ => return Ok(()),
                }
            }
            Err(kube::Error::Api(status)) if status.code == 400 || status.code == 404 => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    };
    let mut lines = reader.lines();
    while let Some(line) = lines.next().await {
        let line = line.map_err(kube::Error::ReadEvents)?;
        let _guard = out.lock().await;
        match &prefix {
            Some(p) => println!("[{p}] {line}"),
            None => println!("{line}"),
        }
    }
    Ok(())
}

/// Streams every container of one pod, one after another (init containers end first).
async fn stream_pod(
    pods: Api<Pod>,
    pod: Pod,
    args: LogsArgs,
    prefixed: bool,
    out: Arc<Mutex<()>>,
) -> Result<(), kube::Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    for container in containers(&pod, args.container.as_deref()) {
        let prefix = prefixed.then(|| format!("{name} {container}"));
        stream(
            pods.clone(),
            name.clone(),
            container,
            args.follow,
            prefix,
            out.clone(),
        )
        .await?;
    }
    Ok(())
}

/// Runs `skiff logs`.
pub async fn run(client_args: &ClientArgs, args: &LogsArgs) -> Result<(), CliError> {
    let session = Session::connect(client_args).await?;
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let out = Arc::new(Mutex::new(()));
    let fail = |e: kube::Error| match e {
        kube::Error::Api(status) => CliError::Server(status),
        other => session.error(other),
    };
    match Target::parse(&args.target) {
        Some(Target::Pod(name)) => {
            let pod = pods.get(&name).await.map_err(fail)?;
            stream_pod(pods, pod, args.clone(), args.prefix, out)
                .await
                .map_err(fail)
        }
        Some(Target::Job(name)) => {
            let jobs: Api<Job> = Api::namespaced(session.client.clone(), &session.namespace);
            job_logs(&jobs, &pods, &name, args, out).await.map_err(fail)
        }
        None => Err(CliError::Usage(format!(
            "skiff logs takes pod/NAME, NAME or job/NAME, not {:?}",
            args.target
        ))),
    }
}

/// The logs of every pod of a Job, following new pods until the Job finishes with `-f`.
async fn job_logs(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    name: &str,
    args: &LogsArgs,
    out: Arc<Mutex<()>>,
) -> Result<(), kube::Error> {
    let job = jobs.get(name).await?;
    let spec = job.spec.clone().unwrap_or_default();
    let prefixed =
        args.prefix || spec.parallelism.unwrap_or(1) > 1 || spec.completions.unwrap_or(1) > 1;
    let selector = format!("batch.kubernetes.io/job-name={name}");
    let mut seen = HashSet::new();
    let mut streams = tokio::task::JoinSet::new();
    loop {
        let done = {
            let job = jobs.get(name).await?;
            outcome(&serde_json::to_value(&job).unwrap_or_default()) != Outcome::Running
        };
        let mut listed = pods
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        listed.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        for pod in listed {
            let owned = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Job" && Some(&o.uid) == job.metadata.uid.as_ref());
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            if owned && seen.insert(pod_name) {
                let task = stream_pod(pods.clone(), pod, args.clone(), prefixed, out.clone());
                if args.follow {
                    streams.spawn(task);
                } else {
                    task.await?;
                }
            }
        }
        if !args.follow || done {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    while let Some(result) = streams.join_next().await {
        if let Ok(Err(e)) = result {
            return Err(e);
        }
    }
    Ok(())
}
