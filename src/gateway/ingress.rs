//! Choosing an Ingress backend for a request (pure), as Kubernetes' Ingress specifies:
//!
//! * Only Ingresses for skiff: `spec.ingressClassName: skiff`, or no class at all (skiff is
//!   the only controller, so the default).
//! * Host: an exact host rule beats a wildcard one (`*.example.com` matches exactly one more
//!   label), which beats rules without a host.
//! * Path, among the rules of the chosen host: an `Exact` match beats a `Prefix` match, and a
//!   longer prefix beats a shorter one. `Prefix` matches by path elements (`/foo` matches
//!   `/foo` and `/foo/bar`, not `/foobar`); `ImplementationSpecific` is treated as `Prefix`.
//! * No rule matches: the `defaultBackend` of the oldest Ingress that has one.

use std::sync::Arc;

use serde_json::Value;

/// The ingress class this gateway implements.
pub const CLASS: &str = "skiff";

/// A Service port, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// `port.number`.
    Number(u16),
    /// `port.name`.
    Name(String),
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The Ingress's (and so the Service's) namespace.
    pub namespace: String,
    /// The Service.
    pub service: String,
    /// Its port.
    pub port: PortRef,
}

/// How a rule matched, compared to pick the best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    host: u8,
    exact: bool,
    prefix_len: usize,
}

/// Whether this Ingress is for skiff.
pub fn is_ours(ingress: &Value) -> bool {
    let class = ingress["spec"]["ingressClassName"]
        .as_str()
        .or_else(|| ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"].as_str());
    class.is_none_or(|c| c == CLASS)
}

/// The host part of a `Host` header (without the port, lower case).
pub fn host_of(header: &str) -> String {
    let header = header.trim();
    let host = if let Some(rest) = header.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        header.rsplit_once(':').map_or(header, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// How well a rule's `host` matches: 3 exact, 2 wildcard, 1 no host; `None` no match.
fn host_rank(rule_host: Option<&str>, host: &str) -> Option<u8> {
    match rule_host {
        None | Some("") => Some(1),
        Some(h) if h.eq_ignore_ascii_case(host) => Some(3),
        Some(h) => {
            let suffix = h.strip_prefix("*.")?;
            let (first, rest) = host.split_once('.')?;
            (!first.is_empty() && rest.eq_ignore_ascii_case(suffix)).then_some(2)
        }
    }
}

/// How a path rule matches: `Some((exact, prefix length))`.
fn path_rank(rule: &Value, path: &str) -> Option<(bool, usize)> {
    let want = rule["path"].as_str().unwrap_or("/");
    match rule["pathType"].as_str().unwrap_or("Prefix") {
        "Exact" => (want == path).then_some((true, want.len())),
        _ => {
            let want = want.trim_end_matches('/');
            if want.is_empty() {
                return Some((false, 0));
            }
            let matches = path == want
                || path
                    .strip_prefix(want)
                    .is_some_and(|rest| rest.starts_with('/'));
            matches.then_some((false, want.len()))
        }
    }
}

fn backend_of(namespace: &str, backend: &Value) -> Option<Backend> {
    let service = &backend["service"];
    let name = service["name"].as_str()?;
    let port = match (
        service["port"]["number"].as_u64(),
        service["port"]["name"].as_str(),
    ) {
        (Some(n), _) => PortRef::Number(u16::try_from(n).ok()?),
        (None, Some(name)) => PortRef::Name(name.to_string()),
        (None, None) => return None,
    };
    Some(Backend {
        namespace: namespace.to_string(),
        service: name.to_string(),
        port,
    })
}

/// Whether any of skiff's Ingresses has a rule for exactly this host (exact or wildcard):
/// such a host belongs to its tenant, so the gateway's own paths (`/metrics`) are not served
/// on it.
pub fn claims_host(ingresses: &[Arc<Value>], host: &str) -> bool {
    ingresses.iter().filter(|i| is_ours(i)).any(|ingress| {
        ingress["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| host_rank(rule["host"].as_str(), host).is_some_and(|r| r > 1))
    })
}

/// The backend for a request to `host` (no port) and `path` (no query), if any.
pub fn select(ingresses: &[Arc<Value>], host: &str, path: &str) -> Option<Backend> {
    let mut ours: Vec<&Arc<Value>> = ingresses.iter().filter(|i| is_ours(i)).collect();
    // Oldest first, then by namespace and name: ties go to the oldest rule.
    ours.sort_by(|a, b| {
        let key = |i: &Value| {
            (
                i["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut best: Option<(Rank, Backend)> = None;
    for ingress in &ours {
        let namespace = ingress["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            let Some(host) = host_rank(rule["host"].as_str(), host) else {
                continue;
            };
            for p in rule["http"]["paths"].as_array().into_iter().flatten() {
                let Some((exact, prefix_len)) = path_rank(p, path) else {
                    continue;
                };
                let rank = Rank {
                    host,
                    exact,
                    prefix_len,
                };
                if best.as_ref().is_some_and(|(b, _)| *b >= rank) {
                    continue;
                }
                if let Some(backend) = backend_of(namespace, &p["backend"]) {
                    best = Some((rank, backend));
                }
            }
        }
    }
    if let Some((_, backend)) = best {
        return Some(backend);
    }
    ours.iter().find_map(|ingress| {
        let namespace = ingress["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        backend_of(namespace, &ingress["spec"]["defaultBackend"])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(ns: &str, name: &str, created: &str, spec: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"namespace": ns, "name": name, "creationTimestamp": created},
            "spec": spec,
        }))
    }

    fn path(p: &str, kind: &str, svc: &str) -> Value {
        json!({"path": p, "pathType": kind,
               "backend": {"service": {"name": svc, "port": {"number": 80}}}})
    }

    fn pick(ingresses: &[Arc<Value>], host: &str, p: &str) -> Option<String> {
        select(ingresses, host, p).map(|b| format!("{}/{}", b.namespace, b.service))
    }

    #[test]
    fn hosts_and_paths() {
        let all = vec![
            ingress(
                "a",
                "one",
                "2026-01-01T00:00:00Z",
                json!({
                    "ingressClassName": "skiff",
                    "rules": [
                        {"host": "a.example.com", "http": {"paths": [
                            path("/", "Prefix", "root"),
                            path("/api", "Prefix", "api"),
                            path("/api/v2", "Prefix", "api2"),
                            path("/api/exact", "Exact", "exact"),
                        ]}},
                        {"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                    ],
                }),
            ),
            ingress(
                "b",
                "two",
                "2026-01-02T00:00:00Z",
                json!({
                    "rules": [{"http": {"paths": [path("/b", "ImplementationSpecific", "any")]}}],
                    "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
                }),
            ),
            ingress(
                "c",
                "other-class",
                "2025-01-01T00:00:00Z",
                json!({
                    "ingressClassName": "nginx",
                    "rules": [{"host": "a.example.com", "http": {"paths": [path("/", "Exact", "nope")]}}],
                    "defaultBackend": {"service": {"name": "nope", "port": {"number": 1}}},
                }),
            ),
        ];
        assert_eq!(pick(&all, "a.example.com", "/").as_deref(), Some("a/root"));
        assert_eq!(
            pick(&all, "a.example.com", "/api").as_deref(),
            Some("a/api")
        );
        assert_eq!(
            pick(&all, "a.example.com", "/api/").as_deref(),
            Some("a/api")
        );
        assert_eq!(
            pick(&all, "a.example.com", "/apix").as_deref(),
            Some("a/root")
        );
        assert_eq!(
            pick(&all, "a.example.com", "/api/v2/x").as_deref(),
            Some("a/api2")
        );
        assert_eq!(
            pick(&all, "a.example.com", "/api/exact").as_deref(),
            Some("a/exact")
        );
        assert_eq!(
            pick(&all, "a.example.com", "/api/exact/no").as_deref(),
            Some("a/api")
        );
        // Wildcards match one label only; a rule-less host falls to host-less rules.
        assert_eq!(pick(&all, "b.example.com", "/x").as_deref(), Some("a/wild"));
        assert_eq!(
            pick(&all, "x.b.example.com", "/b").as_deref(),
            Some("b/any")
        );
        assert_eq!(pick(&all, "localhost", "/b/c").as_deref(), Some("b/any"));
        // Nothing matches: the oldest default backend of ours (not the nginx one).
        assert_eq!(
            pick(&all, "localhost", "/zzz").as_deref(),
            Some("b/fallback")
        );
        assert_eq!(
            select(&all, "localhost", "/zzz").unwrap().port,
            PortRef::Name("http".into())
        );
        assert!(claims_host(&all, "a.example.com"));
        assert!(claims_host(&all, "q.example.com"));
        assert!(!claims_host(&all, "localhost"));
    }

    #[test]
    fn no_ingress_no_backend() {
        assert_eq!(select(&[], "h", "/"), None);
    }

    #[test]
    fn host_headers() {
        assert_eq!(host_of("Example.COM:8080"), "example.com");
        assert_eq!(host_of("example.com."), "example.com");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
    }
}
