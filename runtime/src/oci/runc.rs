//! The `runc` command line: run, kill, delete, list, exec. Every call names skiff's own
//! state directory (`--root`), so skiff's containers are kept apart from anyone else's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::{Child, Command};

/// How to call runc.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
}

/// One container as `runc list` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerState {
    pub id: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub bundle: String,
}

impl Runc {
    /// runc from `$SKIFF_RUNC`, else `runc` on the `PATH`, keeping its state under `root`.
    pub fn new(root: PathBuf) -> Runc {
        let binary = std::env::var_os("SKIFF_RUNC")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("runc"));
        Runc { binary, root }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Whether runc holds state for a container of this id.
    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// Whether runc can be executed at all.
    pub async fn available(&self) -> bool {
        Command::new(&self.binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// `runc run --keep` in the foreground: the child's exit status is the container's (its
    /// process id is written to `pid_file` once created), and
    /// the container's stdout and stderr are the child's (piped). runc's own messages go to
    /// `log` as JSON lines. The stopped container is kept so its cgroup can be read; call
    /// [`Runc::delete`] after.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        log: &Path,
        pid_file: &Path,
    ) -> std::io::Result<Child> {
        let mut c = self.command();
        c.arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--keep")
            .arg("--pid-file")
            .arg(pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        c.spawn()
    }

    /// Sends `signal` (`TERM`, `KILL`) to the container's processes.
    pub async fn kill(&self, id: &str, signal: &str) {
        let _ = self
            .command()
            .args(["kill", "--all", id, signal])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }

    /// Kills (if needed) and deletes the container; a missing one is fine.
    pub async fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }

    /// The containers in skiff's state directory.
    pub async fn list(&self) -> Vec<ContainerState> {
        let Ok(out) = self
            .command()
            .args(["list", "--format", "json"])
            .stderr(Stdio::null())
            .output()
            .await
        else {
            return Vec::new();
        };
        serde_json::from_slice::<Option<Vec<ContainerState>>>(&out.stdout)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Runs `args` in the running container; its exit code (`None` when it did not finish
    /// within `timeout`, or could not be started at all), with its output.
    pub async fn exec(
        &self,
        id: &str,
        args: &[String],
        timeout: Duration,
    ) -> (Option<i32>, String) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid_file = std::env::temp_dir().join(format!(
            "skiff-exec-{}-{}.pid",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let result = self.exec_with(id, args, timeout, &pid_file).await;
        if result.0.is_none() {
            // Killing `runc exec` leaves the command running in the container: kill it.
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .filter(|p| *p > 1)
            {
                // SAFETY: sending a signal has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_file(&pid_file);
        result
    }

    async fn exec_with(
        &self,
        id: &str,
        args: &[String],
        timeout: Duration,
        pid_file: &Path,
    ) -> (Option<i32>, String) {
        let mut c = self.command();
        c.arg("exec")
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let Ok(child) = c.spawn() else {
            return (None, "runc could not be started".into());
        };
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                (out.status.code(), text)
            }
            Ok(Err(e)) => (None, e.to_string()),
            Err(_) => (None, format!("timed out after {}s", timeout.as_secs_f64())),
        }
    }
}

/// The error runc logged (`--log-format json`), if any: what to tell the user when a
/// container could not be started.
pub fn logged_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .find_map(|v| v["msg"].as_str().map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_logged_error_is_the_message() {
        let log = r#"{"level":"warning","msg":"x"}
{"level":"error","msg":"runc run failed: unable to start container process: exec: \"/nope\": stat /nope: no such file or directory","time":"t"}"#;
        assert!(logged_error(log).unwrap().contains("exec: \"/nope\""));
        assert_eq!(logged_error("{\"level\":\"info\",\"msg\":\"ok\"}"), None);
    }
}
