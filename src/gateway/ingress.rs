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

use std::collections::HashMap;
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

/// One path rule.
#[derive(Debug, Clone)]
struct PathRule {
    /// `Exact` (else a prefix, by path elements).
    exact: bool,
    /// The path; for prefixes without its trailing `/`.
    path: String,
    backend: Backend,
}

impl PathRule {
    /// `Some(prefix length)` when the rule matches `path`.
    fn matches(&self, path: &str) -> Option<usize> {
        if self.exact {
            return (self.path == path).then_some(self.path.len());
        }
        if self.path.is_empty() {
            return Some(0);
        }
        let matches = path == self.path
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        matches.then_some(self.path.len())
    }
}

/// The best of `rules` for `path`: exact over prefix, longer prefix over shorter, earlier
/// (older) over later.
fn best<'a>(rules: &'a [PathRule], path: &str) -> Option<&'a Backend> {
    let mut best: Option<((bool, usize), &Backend)> = None;
    for rule in rules {
        if let Some(len) = rule.matches(path) {
            let rank = (rule.exact, len);
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                best = Some((rank, &rule.backend));
            }
        }
    }
    best.map(|(_, backend)| backend)
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

/// skiff's Ingress rules, indexed by host: built once per change of the Ingresses, consulted
/// per request without walking them all.
#[derive(Debug, Default)]
pub struct Routes {
    exact: HashMap<String, Vec<PathRule>>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, Vec<PathRule>>,
    any_host: Vec<PathRule>,
    default: Option<Backend>,
}

impl Routes {
    /// Indexes the rules of skiff's Ingresses among `ingresses`, oldest first.
    pub fn build(ingresses: &[Arc<Value>]) -> Routes {
        let mut ours: Vec<&Arc<Value>> = ingresses.iter().filter(|i| is_ours(i)).collect();
        let key = |i: &Value| {
            let meta = &i["metadata"];
            let text = |f: &str| meta[f].as_str().unwrap_or_default().to_string();
            (text("creationTimestamp"), text("namespace"), text("name"))
        };
        ours.sort_by_cached_key(|i| key(i));
        let mut routes = Routes::default();
        for ingress in ours {
            let namespace = ingress["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default();
            for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
                let paths = rule["http"]["paths"].as_array().into_iter().flatten();
                let rules: Vec<PathRule> = paths
                    .filter_map(|p| {
                        let backend = backend_of(namespace, &p["backend"])?;
                        let path = p["path"].as_str().unwrap_or("/");
                        let exact = p["pathType"] == "Exact";
                        Some(PathRule {
                            exact,
                            path: if exact {
                                path.to_string()
                            } else {
                                path.trim_end_matches('/').to_string()
                            },
                            backend,
                        })
                    })
                    .collect();
                let host = rule["host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let list = if host.is_empty() {
                    &mut routes.any_host
                } else if let Some(suffix) = host.strip_prefix("*.") {
                    routes.wildcard.entry(suffix.to_string()).or_default()
                } else {
                    routes.exact.entry(host).or_default()
                };
                list.extend(rules);
            }
            if routes.default.is_none() {
                routes.default = backend_of(namespace, &ingress["spec"]["defaultBackend"]);
            }
        }
        routes
    }

    fn wildcard_rules(&self, host: &str) -> Option<&Vec<PathRule>> {
        let (first, rest) = host.split_once('.')?;
        (!first.is_empty()).then(|| self.wildcard.get(rest))?
    }

    /// The backend for a request to `host` (as [`host_of`] gives it) and `path` (no query).
    pub fn select(&self, host: &str, path: &str) -> Option<&Backend> {
        if let Some(backend) = self.exact.get(host).and_then(|r| best(r, path)) {
            return Some(backend);
        }
        if let Some(backend) = self.wildcard_rules(host).and_then(|r| best(r, path)) {
            return Some(backend);
        }
        best(&self.any_host, path).or(self.default.as_ref())
    }

    /// Whether a rule names this host (exactly or by wildcard): such a host belongs to its
    /// tenant, so the gateway's own paths (`/metrics`) are not served on it.
    pub fn claims_host(&self, host: &str) -> bool {
        self.exact.contains_key(host) || self.wildcard_rules(host).is_some()
    }
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
        Routes::build(ingresses)
            .select(host, p)
            .map(|b| format!("{}/{}", b.namespace, b.service))
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
        let routes = Routes::build(&all);
        assert_eq!(
            routes.select("localhost", "/zzz").unwrap().port,
            PortRef::Name("http".into())
        );
        assert!(routes.claims_host("a.example.com"));
        assert!(routes.claims_host("q.example.com"));
        assert!(!routes.claims_host("localhost"));
    }

    #[test]
    fn no_ingress_no_backend() {
        assert_eq!(Routes::build(&[]).select("h", "/"), None);
    }

    #[test]
    fn host_headers() {
        assert_eq!(host_of("Example.COM:8080"), "example.com");
        assert_eq!(host_of("example.com."), "example.com");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
    }
}
