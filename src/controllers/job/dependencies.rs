//! `skiff.dev/after` (a skiff extension): a Job annotated `skiff.dev/after: build,lint` waits,
//! suspended, until the named Jobs of its namespace have completed, and fails if one of them
//! fails. Pure functions over the Jobs the caller looks up.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

/// The annotation naming the Jobs a Job runs after.
pub const AFTER: &str = "skiff.dev/after";

/// Where a Job stands against the Jobs it runs after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to wait for.
    Open,
    /// These Jobs have not completed yet (or do not exist yet).
    Waiting(Vec<String>),
    /// A Job it runs after failed; the message says which.
    Failed(String),
    /// The Jobs wait for each other in a cycle; the message names it.
    Cycle(String),
}

/// The names in a Job's `skiff.dev/after` annotation, in order, without blanks or repeats.
pub fn after(job: &Value) -> Vec<String> {
    let mut seen = BTreeSet::new();
    job["metadata"]["annotations"][AFTER]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty() && seen.insert(name.to_string()))
        .map(String::from)
        .collect()
}

fn condition_true(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Whether `job` may start, given `lookup` (a Job of the same namespace by name).
pub fn gate(job: &Value, lookup: impl Fn(&str) -> Option<Arc<Value>>) -> Gate {
    let names = after(job);
    if names.is_empty() {
        return Gate::Open;
    }
    let me = job["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(path) = cycle_through(me, &lookup) {
        return Gate::Cycle(format!(
            "Jobs wait for each other in a cycle ({AFTER}): {}",
            path.join(" -> ")
        ));
    }
    let mut waiting = Vec::new();
    for name in names {
        match lookup(&name) {
            Some(dep) if condition_true(&dep, "Failed") => {
                return Gate::Failed(format!(
                    "Job {name}, which this Job runs after ({AFTER}), failed"
                ));
            }
            Some(dep) if condition_true(&dep, "Complete") => {}
            _ => waiting.push(name),
        }
    }
    if waiting.is_empty() {
        Gate::Open
    } else {
        Gate::Waiting(waiting)
    }
}

/// A path of unfinished Jobs from `start` back to itself through `skiff.dev/after`, if any.
fn cycle_through(start: &str, lookup: &impl Fn(&str) -> Option<Arc<Value>>) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut visited = BTreeSet::new();
    fn walk(
        name: &str,
        start: &str,
        lookup: &impl Fn(&str) -> Option<Arc<Value>>,
        path: &mut Vec<String>,
        visited: &mut BTreeSet<String>,
    ) -> bool {
        let Some(job) = lookup(name) else {
            return false;
        };
        if condition_true(&job, "Complete") || condition_true(&job, "Failed") {
            return false;
        }
        for next in after(&job) {
            path.push(next.clone());
            if next == start {
                return true;
            }
            if visited.insert(next.clone()) && walk(&next, start, lookup, path, visited) {
                return true;
            }
            path.pop();
        }
        false
    }
    walk(start, start, lookup, &mut path, &mut visited).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn job(name: &str, after: &str, condition: Option<&str>) -> Arc<Value> {
        let conditions: Vec<Value> = condition
            .map(|c| json!({"type": c, "status": "True"}))
            .into_iter()
            .collect();
        Arc::new(
            json!({"metadata": {"name": name, "annotations": {AFTER: after}},
            "status": {"conditions": conditions}}),
        )
    }

    fn lookup(jobs: &[Arc<Value>]) -> impl Fn(&str) -> Option<Arc<Value>> {
        let by_name: HashMap<String, Arc<Value>> = jobs
            .iter()
            .map(|j| {
                (
                    j["metadata"]["name"].as_str().unwrap().to_string(),
                    j.clone(),
                )
            })
            .collect();
        move |name| by_name.get(name).cloned()
    }

    #[test]
    fn parses_the_annotation() {
        assert_eq!(
            after(&job("x", " build, lint,,build ", None)),
            ["build", "lint"]
        );
        assert!(after(&json!({"metadata": {"name": "x"}})).is_empty());
    }

    #[test]
    fn waits_until_every_named_job_completes_and_fails_with_any() {
        let me = job("test", "build,lint", None);
        let build = job("build", "", Some("Complete"));
        assert_eq!(
            gate(&me, lookup(std::slice::from_ref(&build))),
            Gate::Waiting(vec!["lint".into()])
        );
        let lint = job("lint", "", None);
        assert_eq!(
            gate(&me, lookup(&[build.clone(), lint])),
            Gate::Waiting(vec!["lint".into()])
        );
        let lint = job("lint", "", Some("Complete"));
        assert_eq!(gate(&me, lookup(&[build.clone(), lint])), Gate::Open);
        let lint = job("lint", "", Some("Failed"));
        assert!(matches!(gate(&me, lookup(&[build, lint])), Gate::Failed(m) if m.contains("lint")));
        assert_eq!(gate(&job("free", "", None), lookup(&[])), Gate::Open);
    }

    #[test]
    fn finds_cycles_among_unfinished_jobs() {
        let a = job("a", "b", None);
        let b = job("b", "c", None);
        let c = job("c", "a", None);
        let jobs = [a.clone(), b, c];
        assert!(
            matches!(gate(&a, lookup(&jobs)), Gate::Cycle(m) if m.ends_with("a -> b -> c -> a"))
        );
        // A finished Job breaks the cycle.
        let c = job("c", "a", Some("Complete"));
        assert_eq!(
            gate(&a, lookup(&[a.clone(), job("b", "c", None), c])),
            Gate::Waiting(vec!["b".into()])
        );
    }
}
