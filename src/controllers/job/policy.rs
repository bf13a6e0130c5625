//! The Job's rules as pure functions over JSON: which failed pod a `podFailurePolicy` rule
//! matches, whether a `successPolicy` is met, and the retry delay.

use std::time::Duration;

use serde_json::Value;

use super::indexes::IndexSet;

/// Annotation on an Indexed Job's pod: how many counted failures its index had before it.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Annotation on an Indexed Job's pod: how many failures of its index a rule ignored.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// First delay before recreating a pod after a failure (Kubernetes: 10 s, doubling to 6 min).
const FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(360);

/// What a `podFailurePolicy` rule does with the failed pod it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Fail the whole Job at once (reason `PodFailurePolicy`).
    FailJob,
    /// Fail the pod's index without further retries (needs `backoffLimitPerIndex`).
    FailIndex,
    /// Do not count the failure; the pod is replaced.
    Ignore,
    /// Count the failure toward the limits, as without a policy.
    Count,
}

/// The first rule of `policy` that the failed `pod` matches: its action and a message naming
/// the rule, as Kubernetes words it. `None` means no rule matched (the failure counts).
pub fn match_failure_policy(policy: &Value, pod: &Value) -> Option<(FailureAction, String)> {
    let rules = policy["rules"].as_array()?;
    let pod_name = format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    );
    for (index, rule) in rules.iter().enumerate() {
        let action = match rule["action"].as_str() {
            Some("FailJob") => FailureAction::FailJob,
            Some("FailIndex") => FailureAction::FailIndex,
            Some("Ignore") => FailureAction::Ignore,
            Some("Count") => FailureAction::Count,
            _ => continue,
        };
        let action_name = rule["action"].as_str().unwrap_or_default();
        if let Some(codes) = rule.get("onExitCodes").filter(|c| c.is_object()) {
            if let Some((container, code)) = exit_code_match(codes, pod) {
                return Some((
                    action,
                    format!(
                        "Container {container} for pod {pod_name} failed with exit code {code} \
                         matching {action_name} rule at index {index}"
                    ),
                ));
            }
        } else if let Some(patterns) = rule["onPodConditions"].as_array()
            && let Some(kind) = condition_match(patterns, pod)
        {
            return Some((
                action,
                format!(
                    "Pod {pod_name} has condition {kind} matching {action_name} rule at index {index}"
                ),
            ));
        }
    }
    None
}

/// The first container (init containers too) that ended with a non-zero exit code the
/// requirement selects: `In` the values, or `NotIn` them.
fn exit_code_match(requirement: &Value, pod: &Value) -> Option<(String, i64)> {
    let only = requirement["containerName"].as_str();
    let values: Vec<i64> = requirement["values"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let wanted = |code: i64| match requirement["operator"].as_str() {
        Some("In") => values.contains(&code),
        Some("NotIn") => !values.contains(&code),
        _ => false,
    };
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|kind| pod["status"][*kind].as_array())
        .flatten()
        .filter(|c| only.is_none_or(|name| c["name"] == name))
        .filter_map(|c| {
            let code = c["state"]["terminated"]["exitCode"].as_i64()?;
            Some((c["name"].as_str().unwrap_or_default().to_string(), code))
        })
        .find(|(_, code)| *code != 0 && wanted(*code))
}

/// The type of the first pod condition one of the patterns selects.
fn condition_match(patterns: &[Value], pod: &Value) -> Option<String> {
    let conditions = pod["status"]["conditions"].as_array()?;
    patterns.iter().find_map(|pattern| {
        let status = pattern["status"].as_str().unwrap_or("True");
        conditions
            .iter()
            .find(|c| c["type"] == pattern["type"] && c["status"] == status)
            .and_then(|c| c["type"].as_str().map(String::from))
    })
}

/// The index of the first `successPolicy` rule the completed indexes meet, if any.
///
/// A rule with `succeededIndexes` needs `succeededCount` of them (or all of them without a
/// count) completed; a rule with only `succeededCount` needs that many indexes completed.
pub fn met_success_rule(policy: &Value, completed: &IndexSet) -> Option<usize> {
    let rules = policy["rules"].as_array()?;
    rules.iter().position(|rule| {
        let count = rule["succeededCount"].as_i64();
        match rule["succeededIndexes"].as_str() {
            Some(text) => {
                let wanted = IndexSet::parse(text);
                let done = wanted.count_in(completed) as i64;
                match count {
                    Some(n) => done >= n,
                    None => done == wanted.len() as i64,
                }
            }
            None => count.is_some_and(|n| completed.len() as i64 >= n),
        }
    })
}

/// The sum of container restarts (init containers too) over the pods: under
/// `restartPolicy: OnFailure` each restart is a failure toward `backoffLimit`.
pub fn restarts(pods: &[&Value]) -> i64 {
    pods.iter()
        .flat_map(|pod| {
            ["containerStatuses", "initContainerStatuses"]
                .iter()
                .filter_map(|kind| pod["status"][*kind].as_array())
                .flatten()
        })
        .filter_map(|c| c["restartCount"].as_i64())
        .sum()
}

/// Whether in-place restarts have used up the backoff limit (Kubernetes: a limit of 0 allows
/// none; otherwise the Job fails once restarts reach the limit).
pub fn past_restart_limit(restarts: i64, backoff_limit: i64) -> bool {
    if backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= backoff_limit
    }
}

/// The retry delay after `failures` consecutive failures: 10 s doubling, at most 6 min.
pub fn failure_backoff(failures: i64) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(10) as u32;
    FAILURE_BACKOFF
        .saturating_mul(1 << exp)
        .min(FAILURE_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(codes: &[(&str, i64)], conditions: Value) -> Value {
        let statuses: Vec<Value> = codes
            .iter()
            .map(|(name, code)| json!({"name": name, "state": {"terminated": {"exitCode": code}}}))
            .collect();
        json!({"metadata": {"namespace": "ci", "name": "p"},
            "status": {"phase": "Failed", "containerStatuses": statuses, "conditions": conditions}})
    }

    #[test]
    fn failure_backoff_doubles_from_ten_seconds_to_six_minutes() {
        assert_eq!(failure_backoff(0), Duration::ZERO);
        assert_eq!(failure_backoff(1), Duration::from_secs(10));
        assert_eq!(failure_backoff(3), Duration::from_secs(40));
        assert_eq!(failure_backoff(20), Duration::from_secs(360));
    }

    #[test]
    fn failure_policy_takes_the_first_matching_rule() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]});
        let (action, message) =
            match_failure_policy(&policy, &failed_pod(&[("main", 42)], json!([]))).unwrap();
        assert_eq!(action, FailureAction::FailJob);
        assert_eq!(
            message,
            "Container main for pod ci/p failed with exit code 42 matching FailJob rule at index 1"
        );
        // Another container with 42 is not `main`; NotIn [1] matches it instead.
        let (action, _) =
            match_failure_policy(&policy, &failed_pod(&[("side", 42)], json!([]))).unwrap();
        assert_eq!(action, FailureAction::Count);
        // Exit code 1 is excluded by NotIn and matches nothing.
        assert!(match_failure_policy(&policy, &failed_pod(&[("main", 1)], json!([]))).is_none());
        // Exit code 0 never matches an exit-code rule.
        assert!(match_failure_policy(&policy, &failed_pod(&[("main", 0)], json!([]))).is_none());
        let disrupted = failed_pod(
            &[("main", 42)],
            json!([{"type": "DisruptionTarget", "status": "True"}]),
        );
        let (action, message) = match_failure_policy(&policy, &disrupted).unwrap();
        assert_eq!(action, FailureAction::Ignore);
        assert!(message.contains("condition DisruptionTarget"), "{message}");
    }

    #[test]
    fn success_policy_counts_within_the_named_indexes() {
        let completed = IndexSet::parse("0,2-3");
        let all_of = json!({"rules": [{"succeededIndexes": "0,2"}]});
        assert_eq!(met_success_rule(&all_of, &completed), Some(0));
        let some_of = json!({"rules": [{"succeededIndexes": "0-1"}, {"succeededIndexes": "1-5", "succeededCount": 2}]});
        assert_eq!(met_success_rule(&some_of, &completed), Some(1));
        let count = json!({"rules": [{"succeededCount": 4}]});
        assert_eq!(met_success_rule(&count, &completed), None);
        assert_eq!(
            met_success_rule(&json!({"rules": [{"succeededCount": 3}]}), &completed),
            Some(0)
        );
    }

    #[test]
    fn in_place_restarts_use_up_the_backoff_limit() {
        let pod = json!({"status": {"containerStatuses": [{"restartCount": 2}],
            "initContainerStatuses": [{"restartCount": 1}]}});
        assert_eq!(restarts(&[&pod, &pod]), 6);
        assert!(past_restart_limit(1, 0));
        assert!(!past_restart_limit(0, 0));
        assert!(past_restart_limit(6, 6));
        assert!(!past_restart_limit(5, 6));
    }
}
