//! `TYPE/NAME` arguments of `skiff logs` and `skiff wait`.

/// What a command is pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A pod by name (`pod/NAME`, `po/NAME` or a bare `NAME`).
    Pod(String),
    /// A Job by name (`job/NAME`, `jobs/NAME`, `job.batch/NAME`).
    Job(String),
}

impl Target {
    /// Parses a target; `None` for a type these commands don't handle or an empty name.
    pub fn parse(arg: &str) -> Option<Target> {
        let (kind, name) = arg.split_once('/').unwrap_or(("pod", arg));
        if name.is_empty() || name.contains('/') {
            return None;
        }
        match kind {
            "pod" | "pods" | "po" => Some(Target::Pod(name.to_string())),
            "job" | "jobs" | "job.batch" | "jobs.batch" => Some(Target::Job(name.to_string())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pods_and_jobs() {
        assert_eq!(Target::parse("web-1"), Some(Target::Pod("web-1".into())));
        assert_eq!(Target::parse("po/web-1"), Some(Target::Pod("web-1".into())));
        assert_eq!(Target::parse("job/ci"), Some(Target::Job("ci".into())));
        assert_eq!(
            Target::parse("jobs.batch/ci"),
            Some(Target::Job("ci".into()))
        );
        assert_eq!(Target::parse("deploy/web"), None);
        assert_eq!(Target::parse("job/"), None);
    }
}
