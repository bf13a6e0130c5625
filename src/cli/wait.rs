//! `skiff wait job/NAME...`: waits for Jobs to finish and returns their outcome as the exit
//! status (0 when every Job completed, 1 when one failed, 2 on timeout), so a shell CI
//! script can run a pipeline and act on its result.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Api;

use super::session::Session;
use super::target::Target;
use super::{CliError, ClientArgs};

/// `skiff wait` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    /// Jobs to wait for, as `job/NAME`
    #[arg(value_name = "job/NAME", required = true)]
    pub targets: Vec<String>,
    /// Give up after this long (`90s`, `10m`, `1h`); 0 waits forever
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `90`, `90s`, `10m`, `1h` or `1h30m` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("{text:?} is not a duration such as 90s, 10m or 1h")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        total += number
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a duration"))?;
    }
    Ok(Duration::from_secs(total))
}

/// How a Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished yet.
    Running,
    /// The `Complete` condition is True.
    Complete,
    /// The `Failed` condition is True, with its reason and message.
    Failed { reason: String, message: String },
}

/// The outcome of a Job, from its status conditions.
pub fn outcome(job: &serde_json::Value) -> Outcome {
    let conditions = job["status"]["conditions"].as_array();
    let find = |kind: &str| {
        conditions.and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == kind && c["status"] == "True")
        })
    };
    if find("Complete").is_some() {
        Outcome::Complete
    } else if let Some(c) = find("Failed") {
        Outcome::Failed {
            reason: c["reason"].as_str().unwrap_or_default().to_string(),
            message: c["message"].as_str().unwrap_or_default().to_string(),
        }
    } else {
        Outcome::Running
    }
}

/// Polls one Job until it finishes (a NotFound error if it is deleted meanwhile).
pub async fn until_finished(api: &Api<Job>, name: &str) -> Result<Outcome, kube::Error> {
    loop {
        let job = api.get(name).await?;
        let value = serde_json::to_value(&job).unwrap_or_default();
        match outcome(&value) {
            Outcome::Running => {}
            done => return Ok(done),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `skiff wait`.
pub async fn run(client_args: &ClientArgs, args: &WaitArgs) -> Result<(), CliError> {
    let session = Session::connect(client_args).await?;
    let mut names = Vec::new();
    for target in &args.targets {
        match Target::parse(target) {
            Some(Target::Job(name)) => names.push(name),
            _ => {
                return Err(CliError::Usage(format!(
                    "skiff wait takes Jobs as job/NAME, not {target:?}"
                )));
            }
        }
    }
    let api: Api<Job> = Api::namespaced(session.client.clone(), &session.namespace);
    let all = futures::future::try_join_all(names.iter().map(|name| {
        let api = api.clone();
        async move {
            let outcome = until_finished(&api, name).await?;
            match &outcome {
                Outcome::Complete => println!("job.batch/{name} complete"),
                Outcome::Failed { reason, message } => {
                    println!("job.batch/{name} failed: {reason}: {message}")
                }
                Outcome::Running => {}
            }
            Ok::<_, kube::Error>(outcome)
        }
    }));
    let outcomes = if args.timeout.is_zero() {
        all.await
    } else {
        match tokio::time::timeout(args.timeout, all).await {
            Ok(result) => result,
            Err(_) => {
                return Err(CliError::TimedOut(format!(
                    "timed out after {:?} waiting for {}",
                    args.timeout,
                    args.targets.join(", ")
                )));
            }
        }
    };
    let outcomes = outcomes.map_err(|e| match e {
        kube::Error::Api(status) => CliError::Server(status),
        other => session.error(other),
    })?;
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed { .. }))
        .count();
    if failed > 0 {
        return Err(CliError::Failed { failed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_kubectl_style() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn outcome_follows_the_terminal_conditions() {
        assert_eq!(outcome(&json!({})), Outcome::Running);
        let done = json!({"status": {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        assert_eq!(outcome(&done), Outcome::Complete);
        let failed = json!({"status": {"conditions": [{"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "m"}]}});
        assert_eq!(
            outcome(&failed),
            Outcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "m".into()
            }
        );
        let target_only =
            json!({"status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}});
        assert_eq!(outcome(&target_only), Outcome::Running);
    }
}
