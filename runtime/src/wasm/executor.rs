//! The guest threads: a tokio runtime of its own whose threads run at a lower CPU priority,
//! so that guests busy on every core never starve the tasks of the process embedding them.

use std::future::Future;
use std::time::Instant;

use tokio::task::JoinHandle;

use super::{Exit, GUEST_NICE, Outcome, Usage};

/// A multi-threaded executor for guest runs.
pub(crate) struct GuestExecutor {
    /// Always `Some` until dropped; taken in `drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestExecutor {
    /// Starts `threads` guest threads (at least one).
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("skiff-guest")
            .on_thread_start(lower_priority)
            // I/O for functions' outgoing HTTP requests.
            .enable_all()
            .build()?;
        Ok(GuestExecutor {
            runtime: Some(runtime),
        })
    }

    /// Runs `run` on the guest threads and waits for its outcome. Dropping the returned future
    /// aborts the run (the guest's store is dropped on its own thread).
    pub(crate) async fn run<F>(&self, run: F) -> Outcome
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let started = Instant::now();
        let runtime = self
            .runtime
            .as_ref()
            .expect("guest runtime present until drop");
        let mut task = AbortOnDrop(runtime.spawn(run));
        match (&mut task.0).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                exit: Exit::Trap {
                    message: format!("the sandbox task failed: {e}"),
                },
                usage: Usage {
                    wall: started.elapsed(),
                    ..Usage::default()
                },
            },
        }
    }

    /// Starts `task` on the guest threads without waiting for it (an HTTP request whose
    /// response body the guest is still writing outlives the call that started it).
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime
            .as_ref()
            .expect("guest runtime present until drop")
            .spawn(task);
    }
}

impl Drop for GuestExecutor {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which is not allowed from async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts the task when the waiting future is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Lowers the calling thread's priority to [`GUEST_NICE`]. On Linux a thread id names one
/// thread, so the rest of the process keeps its priority. Failure only costs fairness.
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority on our own thread id with a positive
    // increment needs no privilege and touches no memory.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, GUEST_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: see lower_priority.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[tokio::test]
    async fn runs_on_lower_priority_threads_and_aborts_when_dropped() {
        let guests = GuestExecutor::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let outcome = guests
            .run(async move {
                let _ = tx.send(nice_of_this_thread());
                Outcome {
                    exit: Exit::Code(0),
                    usage: Usage::default(),
                }
            })
            .await;
        assert_eq!(outcome.exit, Exit::Code(0));
        assert_eq!(rx.await.unwrap(), GUEST_NICE);

        // A run whose waiter goes away is stopped: its future is dropped on the guest thread.
        struct Flag(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                let _ = self.0.take().unwrap().send(());
            }
        }
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
        let flag = Flag(Some(dropped_tx));
        let waiting = guests.run(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            unreachable!()
        });
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), waiting).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), dropped_rx)
            .await
            .expect("the abandoned run was dropped")
            .unwrap();
    }
}
