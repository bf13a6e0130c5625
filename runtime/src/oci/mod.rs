//! OCI containers run by `runc`.
//!
//! A container attempt is: an overlay root filesystem over the image's unpacked layers (a
//! fresh writable layer each attempt; a copy of the layers where overlayfs cannot be mounted),
//! a check that the command is in it ([`executable::missing`]), a `config.json` built by
//! [`spec::build`], and a foreground `runc run --keep` whose exit status is the container's
//! and whose stdout and stderr are piped into the caller's sinks. A failure before runc runs is
//! [`Exit::CreateFailed`]. Stopping sends SIGTERM, then SIGKILL after the
//! grace period. After the exit the cgroup's OOM counter is read (before `runc delete`
//! removes it), then the container, its mounts and its writable layer are removed.
//!
//! A pod's containers share one network namespace, made by [`host::create_netns`] and
//! bind-mounted on a file, so it needs no process to keep it alive. Cgroups are
//! `/skiff/<pod uid>/<container>`. [`OciRuntime::clean_up_leftovers`] removes whatever a
//! previous process left behind (containers, mounts) when the node starts.

pub mod executable;
pub mod host;
pub mod runc;
pub mod spec;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

pub use spec::{BindMount, ContainerConfig, Limits};

use crate::wasm::{CancelToken, Exit, OutputSink};

/// Runs containers with runc, keeping runc's state under the node's data directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    runc: runc::Runc,
}

/// One attempt of a container.
pub struct RunRequest {
    /// runc's container id (unique on the host).
    pub id: String,
    /// The bundle directory: `config.json`, `rootfs`, the writable layer, runc's log.
    pub bundle: PathBuf,
    /// The image's unpacked layers, bottom first.
    pub layers: Vec<PathBuf>,
    /// The container; its `rootfs` is set here.
    pub config: ContainerConfig,
    /// Receives the container's stdout.
    pub stdout: Arc<dyn OutputSink>,
    /// Receives the container's stderr.
    pub stderr: Arc<dyn OutputSink>,
    /// Stops the container: SIGTERM, then SIGKILL after `grace`.
    pub terminate: CancelToken,
    /// Kills the container at once (SIGKILL).
    pub kill: CancelToken,
    /// `terminationGracePeriodSeconds`.
    pub grace: Duration,
    /// The pod's active deadline: the container is killed when it passes.
    pub deadline: Option<Instant>,
    /// Told once runc has created the container's process.
    pub started: Option<tokio::sync::oneshot::Sender<()>>,
}

impl OciRuntime {
    /// A runtime keeping runc's state in `state_dir`.
    pub fn new(state_dir: PathBuf) -> OciRuntime {
        OciRuntime {
            runc: runc::Runc::new(state_dir),
        }
    }

    /// Whether runc is installed.
    pub async fn available(&self) -> bool {
        self.runc.available().await
    }

    /// Runs one attempt to its end.
    pub async fn run(&self, mut req: RunRequest) -> Exit {
        if req.kill.is_cancelled() || req.terminate.is_cancelled() {
            return Exit::Killed;
        }
        let begun = Instant::now();
        let rootfs = req.bundle.join("rootfs");
        let (upper, work) = (req.bundle.join("upper"), req.bundle.join("work"));
        let log = req.bundle.join("runc.log");
        if self.runc.exists(&req.id) {
            self.runc.delete(&req.id).await;
        }
        clear_bundle(&req.bundle);
        let prepared = (|| -> Result<(), String> {
            std::fs::create_dir_all(&req.bundle).map_err(|e| e.to_string())?;
            if let Err(overlay) = host::mount_overlay(&req.layers, &upper, &work, &rootfs) {
                // No overlayfs here (or too many layers for one mount): copy instead.
                host::unmount(&rootfs);
                let _ = std::fs::remove_dir_all(&rootfs);
                host::copy_layers(&req.layers, &rootfs).map_err(|e| {
                    format!("preparing the root filesystem: overlay: {overlay}; copy: {e}")
                })?;
            }
            req.config.rootfs = rootfs.clone();
            let mounted: Vec<&str> = req.config.mounts.iter().map(|m| m.guest.as_str()).collect();
            if let Some(program) = req.config.args.first()
                && let Some(reason) = executable::missing(
                    &rootfs,
                    program,
                    &req.config.env,
                    &req.config.cwd,
                    &mounted,
                )
            {
                return Err(reason);
            }
            let spec = spec::build(&req.config)?;
            spec.save(req.bundle.join("config.json"))
                .map_err(|e| format!("writing config.json: {e}"))
        })();
        if let Err(reason) = prepared {
            clear_bundle(&req.bundle);
            return Exit::CreateFailed { reason };
        }
        tracing::debug!(id = %req.id, took = ?begun.elapsed(), "container bundle prepared");
        let pid_file = req.bundle.join("pid");
        let mut child = match self.runc.run(&req.id, &req.bundle, &log, &pid_file) {
            Ok(c) => c,
            Err(e) => {
                clear_bundle(&req.bundle);
                return Exit::StartFailed {
                    reason: format!("running runc: {e}"),
                };
            }
        };
        let pipes = [
            child.stdout.take().map(|p| pump(p, req.stdout.clone())),
            child.stderr.take().map(|p| pump(p, req.stderr.clone())),
        ];
        let deadline = async {
            match req.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let mut started = req.started.take();
        let watch_start = async {
            while started.is_some() {
                if pid_file.exists()
                    && let Some(tx) = started.take()
                {
                    tracing::debug!(id = %req.id, took = ?begun.elapsed(), "container process created");
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            std::future::pending::<()>().await
        };
        let mut stopped_by_deadline = false;
        let status = tokio::select! {
            status = child.wait() => status,
            () = watch_start => unreachable!("never completes"),
            () = req.terminate.cancelled() => {
                self.stop(&req.id, req.grace, &mut child, &req.kill).await
            }
            () = req.kill.cancelled() => {
                self.stop(&req.id, Duration::ZERO, &mut child, &req.kill).await
            }
            () = deadline => {
                stopped_by_deadline = true;
                self.stop(&req.id, Duration::ZERO, &mut child, &req.kill).await
            }
        };
        for pipe in pipes.into_iter().flatten() {
            let _ = pipe.await;
        }
        let oom = host::oom_kills(&req.config.cgroups_path) > 0;
        self.runc.delete(&req.id).await;
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        clear_bundle(&req.bundle);
        let code = match status {
            Ok(s) => s.code().unwrap_or(137),
            Err(e) => {
                return Exit::StartFailed {
                    reason: format!("waiting for runc: {e}"),
                };
            }
        };
        if stopped_by_deadline {
            return Exit::DeadlineExceeded;
        }
        if oom {
            return Exit::OomKilled;
        }
        if code != 0
            && let Some(message) = runc::logged_error(&logged)
        {
            return Exit::StartFailed {
                reason: message.trim_start_matches("runc run failed: ").to_string(),
            };
        }
        Exit::Code(code)
    }

    /// SIGTERM, then SIGKILL once `grace` has passed or `kill` is cancelled; returns the
    /// exit status. SIGKILL is repeated until runc exits: a container runc has not finished
    /// creating cannot be signalled yet.
    async fn stop(
        &self,
        id: &str,
        grace: Duration,
        child: &mut tokio::process::Child,
        kill: &CancelToken,
    ) -> std::io::Result<std::process::ExitStatus> {
        if !grace.is_zero() && !kill.is_cancelled() {
            self.runc.kill(id, "TERM").await;
            tokio::select! {
                status = child.wait() => return status,
                () = tokio::time::sleep(grace) => {}
                () = kill.cancelled() => {}
            }
        }
        loop {
            self.runc.kill(id, "KILL").await;
            if let Ok(status) = tokio::time::timeout(Duration::from_millis(100), child.wait()).await
            {
                return status;
            }
        }
    }

    /// Runs `args` in a running container (an `exec` probe): its exit code, `None` when it
    /// could not run or ran past `timeout`.
    pub async fn exec(
        &self,
        id: &str,
        args: &[String],
        timeout: Duration,
    ) -> (Option<i32>, String) {
        self.runc.exec(id, args, timeout).await
    }

    /// Removes what a previous process left: every container in skiff's runc state (killed),
    /// and every mount under `dirs` (bundles' root filesystems, network namespaces). Returns
    /// the ids of the containers removed.
    pub async fn clean_up_leftovers(&self, dirs: &[&Path]) -> Vec<String> {
        let mut removed = Vec::new();
        for c in self.runc.list().await {
            self.runc.delete(&c.id).await;
            removed.push(c.id);
        }
        for dir in dirs {
            for m in host::mounts_under(dir) {
                host::unmount(&m);
            }
        }
        removed
    }
}

/// Unmounts a bundle's root filesystem and removes the bundle.
fn clear_bundle(bundle: &Path) {
    host::unmount(&bundle.join("rootfs"));
    let _ = std::fs::remove_dir_all(bundle);
}

/// Copies a pipe into a sink until the container closes it.
fn pump(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    sink: Arc<dyn OutputSink>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.write(&buf[..n]),
            }
        }
        sink.flush();
    })
}
