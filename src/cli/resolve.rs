//! Resource resolution: turning what a user types (`po`, `deploy`, `deployments.apps`,
//! `Pod`) or what a manifest says (`apps/v1`, `Deployment`) into a concrete API resource.
//!
//! The [`Resolver`] is pure: it works on a list of [`ResourceInfo`] in discovery order
//! (core group first, each group's preferred version first), so it can be tested
//! without a server. [`discover`] and [`GroupVersionCache`] fill it from a live server.

use std::collections::HashMap;

use kube::Client;
use kube::core::discovery::v2::APIGroupDiscoveryList;
use kube::discovery::ApiResource;
use serde_json::Value;

use super::request;

/// One API resource as discovery describes it (subresources excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural resource name, as used in URLs (`deployments`).
    pub plural: String,
    /// Singular resource name (`deployment`).
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub categories: Vec<String>,
    /// Supported verbs; empty means unknown (treated as "everything").
    pub verbs: Vec<String>,
}

impl ResourceInfo {
    /// Builds an entry from the discovery fields (verbs unknown).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        singular: &str,
        short_names: &[&str],
        namespaced: bool,
        categories: &[&str],
    ) -> Self {
        let singular = if singular.is_empty() {
            kind.to_lowercase()
        } else {
            singular.to_string()
        };
        ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular,
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
            namespaced,
            categories: categories.iter().map(|s| s.to_string()).collect(),
            verbs: Vec::new(),
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group (used in error messages).
    pub fn group_resource(&self) -> String {
        qualify(&self.plural, &self.group)
    }

    /// `deployment.apps`, or `pod` for the core group (used in `kind/name` output).
    pub fn kind_group(&self) -> String {
        qualify(&self.kind.to_lowercase(), &self.group)
    }

    /// Whether discovery says `verb` is supported (unknown verbs count as supported).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb)
    }

    /// The kube-rs description of this resource, for `Api::*_with`.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

fn qualify(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

/// Splits an apiVersion into (group, version): `apps/v1` → (`apps`, `v1`), `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Why a resource type could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches the name the user typed.
    #[error("the server doesn't have a resource type \"{0}\"")]
    UnknownResource(String),
}

/// Resolves resource names against a discovery table.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    resources: Vec<ResourceInfo>,
}

impl Resolver {
    /// `resources` must be in priority order: core group first, then the other groups
    /// in server order, and within a group the preferred version first.
    pub fn new(resources: Vec<ResourceInfo>) -> Self {
        Resolver { resources }
    }

    /// All known resources, in priority order.
    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Resolves a user-typed resource type, case-insensitively: plural, singular, short
    /// name or kind (`pods`, `pod`, `po`, `Pod`), optionally qualified by group or by
    /// version and group (`deployments.apps`, `deployments.v1.apps`, `Deployment.apps`).
    /// A name that matches no resource but a category (`all`) expands to every resource
    /// in that category (preferred versions only).
    pub fn resolve(&self, arg: &str) -> Result<Vec<ResourceInfo>, ResolveError> {
        let lower = arg.trim().to_lowercase();
        if lower.is_empty() {
            return Err(ResolveError::UnknownResource(arg.to_string()));
        }
        if let Some(found) = self.match_name(&lower, |_| true) {
            return Ok(vec![found.clone()]);
        }
        if let Some((name, rest)) = lower.split_once('.') {
            // resource.version.group
            if let Some((version, group)) = rest.split_once('.')
                && let Some(found) =
                    self.match_name(name, |r| r.version == version && r.group == group)
            {
                return Ok(vec![found.clone()]);
            }
            // resource.group
            if let Some(found) = self.match_name(name, |r| r.group == rest) {
                return Ok(vec![found.clone()]);
            }
        }
        let in_category = self.category(&lower);
        if !in_category.is_empty() {
            return Ok(in_category);
        }
        Err(ResolveError::UnknownResource(arg.to_string()))
    }

    /// Resolves a comma-separated list of resource types (`deploy,svc`), keeping order and
    /// dropping duplicates.
    pub fn resolve_list(&self, args: &str) -> Result<Vec<ResourceInfo>, ResolveError> {
        let mut out: Vec<ResourceInfo> = Vec::new();
        for part in args.split(',').filter(|p| !p.trim().is_empty()) {
            for info in self.resolve(part)? {
                if !out
                    .iter()
                    .any(|o| o.group == info.group && o.plural == info.plural)
                {
                    out.push(info);
                }
            }
        }
        if out.is_empty() {
            return Err(ResolveError::UnknownResource(args.to_string()));
        }
        Ok(out)
    }

    /// The resource serving exactly `kind` at `group`/`version` (as in a manifest).
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Preferred-version resources in `category`, one per group/resource.
    fn category(&self, category: &str) -> Vec<ResourceInfo> {
        let mut out: Vec<ResourceInfo> = Vec::new();
        for r in &self.resources {
            if r.categories
                .iter()
                .any(|c| c.eq_ignore_ascii_case(category))
                && !out
                    .iter()
                    .any(|o| o.group == r.group && o.plural == r.plural)
            {
                out.push(r.clone());
            }
        }
        out
    }

    /// The first resource (in priority order) accepted by `filter` whose plural, then
    /// singular, then short name, then kind equals `name` (already lower-case).
    fn match_name(
        &self,
        name: &str,
        filter: impl Fn(&ResourceInfo) -> bool,
    ) -> Option<&ResourceInfo> {
        let candidates: Vec<&ResourceInfo> = self.resources.iter().filter(|r| filter(r)).collect();
        let passes: [&dyn Fn(&ResourceInfo) -> bool; 4] = [
            &|r| r.plural.eq_ignore_ascii_case(name),
            &|r| r.singular.eq_ignore_ascii_case(name),
            &|r| r.short_names.iter().any(|s| s.eq_ignore_ascii_case(name)),
            &|r| r.kind.eq_ignore_ascii_case(name),
        ];
        passes
            .iter()
            .find_map(|pass| candidates.iter().find(|r| pass(r)).copied())
    }
}

/// Fetches the full discovery table: aggregated discovery (two requests) when the server
/// offers it, else the classic `/api` + `/apis` + one request per group version.
pub async fn discover(client: &Client) -> Result<Resolver, kube::Error> {
    if let Some(resources) = discover_aggregated(client).await? {
        return Ok(Resolver::new(resources));
    }
    discover_legacy(client).await.map(Resolver::new)
}

const ACCEPT_AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

async fn discover_aggregated(client: &Client) -> Result<Option<Vec<ResourceInfo>>, kube::Error> {
    let mut out = Vec::new();
    for path in ["/api", "/apis"] {
        let value = request::get_json(client, path, ACCEPT_AGGREGATED).await?;
        if value.get("kind").and_then(Value::as_str) != Some("APIGroupDiscoveryList") {
            return Ok(None);
        }
        let list: APIGroupDiscoveryList =
            serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
        out.extend(from_aggregated(&list));
    }
    Ok(Some(out))
}

/// Flattens an aggregated discovery document (versions are listed preferred-first).
pub fn from_aggregated(list: &APIGroupDiscoveryList) -> Vec<ResourceInfo> {
    let mut out = Vec::new();
    for group in &list.items {
        let group_name = group
            .metadata
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_default();
        for version in &group.versions {
            let Some(version_name) = version.version.as_deref() else {
                continue;
            };
            for r in &version.resources {
                let (Some(plural), Some(kind)) = (
                    r.resource.as_deref(),
                    r.response_kind.as_ref().and_then(|k| k.kind.as_deref()),
                ) else {
                    continue;
                };
                if plural.contains('/') {
                    continue;
                }
                let mut info = ResourceInfo::new(
                    &group_name,
                    version_name,
                    kind,
                    plural,
                    r.singular_resource.as_deref().unwrap_or(""),
                    &[],
                    r.scope.as_deref() != Some("Cluster"),
                    &[],
                );
                info.short_names = r.short_names.clone();
                info.categories = r.categories.clone();
                info.verbs = r.verbs.clone();
                out.push(info);
            }
        }
    }
    out
}

async fn discover_legacy(client: &Client) -> Result<Vec<ResourceInfo>, kube::Error> {
    // (group, version) pairs, core first, preferred version first within each group.
    let mut group_versions: Vec<(String, String)> = client
        .list_core_api_versions()
        .await?
        .versions
        .into_iter()
        .map(|v| (String::new(), v))
        .collect();
    for group in client.list_api_groups().await?.groups {
        let preferred = group.preferred_version.as_ref().map(|p| p.version.clone());
        if let Some(p) = &preferred {
            group_versions.push((group.name.clone(), p.clone()));
        }
        for v in &group.versions {
            if Some(&v.version) != preferred.as_ref() {
                group_versions.push((group.name.clone(), v.version.clone()));
            }
        }
    }
    let fetches = group_versions
        .iter()
        .map(|(g, v)| fetch_group_version(client, g, v));
    let lists = futures::future::join_all(fetches).await;
    let mut out = Vec::new();
    for list in lists {
        out.extend(list?);
    }
    Ok(out)
}

/// The resources served at one group version (`/api/v1` or `/apis/GROUP/VERSION`);
/// empty when the server doesn't serve that group version.
pub async fn fetch_group_version(
    client: &Client,
    group: &str,
    version: &str,
) -> Result<Vec<ResourceInfo>, kube::Error> {
    let list = if group.is_empty() {
        client.list_core_api_resources(version).await
    } else {
        client
            .list_api_group_resources(&format!("{group}/{version}"))
            .await
    };
    let list = match list {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(list
        .resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| {
            let mut info = ResourceInfo::new(
                group,
                version,
                &r.kind,
                &r.name,
                &r.singular_name,
                &[],
                r.namespaced,
                &[],
            );
            info.short_names = r.short_names.unwrap_or_default();
            info.categories = r.categories.unwrap_or_default();
            info.verbs = r.verbs;
            info
        })
        .collect())
}

/// Resolves manifest kinds group version by group version, fetching each group version
/// once (and again when a kind is missing, in case a CRD was just created).
pub struct GroupVersionCache {
    client: Client,
    cache: HashMap<String, Vec<ResourceInfo>>,
}

impl GroupVersionCache {
    pub fn new(client: Client) -> Self {
        GroupVersionCache {
            client,
            cache: HashMap::new(),
        }
    }

    /// The resource for `kind` at `api_version`, or `None` when the server has no such kind.
    pub async fn find(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ResourceInfo>, kube::Error> {
        let lookup = |list: &[ResourceInfo]| list.iter().find(|r| r.kind == kind).cloned();
        if let Some(found) = self.cache.get(api_version).and_then(|l| lookup(l)) {
            return Ok(Some(found));
        }
        let (group, version) = split_api_version(api_version);
        let list = fetch_group_version(&self.client, group, version).await?;
        let found = lookup(&list);
        self.cache.insert(api_version.to_string(), list);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn table() -> Resolver {
        let r = ResourceInfo::new;
        let mut events = r("", "v1", "Event", "events", "event", &["ev"], true, &[]);
        events.verbs = vec!["get".into(), "list".into()];
        Resolver::new(vec![
            r("", "v1", "Pod", "pods", "pod", &["po"], true, &["all"]),
            r(
                "",
                "v1",
                "Service",
                "services",
                "service",
                &["svc"],
                true,
                &["all"],
            ),
            r(
                "",
                "v1",
                "ConfigMap",
                "configmaps",
                "configmap",
                &["cm"],
                true,
                &[],
            ),
            r(
                "",
                "v1",
                "Namespace",
                "namespaces",
                "namespace",
                &["ns"],
                false,
                &[],
            ),
            events,
            r(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                "deployment",
                &["deploy"],
                true,
                &["all"],
            ),
            r(
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                "replicaset",
                &["rs"],
                true,
                &["all"],
            ),
            r(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                "event",
                &["ev"],
                true,
                &[],
            ),
            r("batch", "v1", "Job", "jobs", "job", &[], true, &["all"]),
            r(
                "batch",
                "v1beta1",
                "Job",
                "jobs",
                "job",
                &[],
                true,
                &["all"],
            ),
            r(
                "example.com",
                "v2",
                "Widget",
                "widgets",
                "",
                &["wd"],
                false,
                &["all", "toys"],
            ),
            r(
                "example.com",
                "v1",
                "Widget",
                "widgets",
                "",
                &["wd"],
                false,
                &["all", "toys"],
            ),
        ])
    }

    fn one(r: &Resolver, arg: &str) -> (String, String, String) {
        let found = r.resolve(arg).unwrap_or_else(|e| panic!("{arg}: {e}"));
        assert_eq!(found.len(), 1, "{arg}");
        let f = &found[0];
        (f.group.clone(), f.version.clone(), f.plural.clone())
    }

    #[test]
    fn resolves_plural_singular_short_and_kind() {
        let r = table();
        for arg in ["po", "pods", "pod", "Pod", "PODS"] {
            assert_eq!(
                one(&r, arg),
                ("".into(), "v1".into(), "pods".into()),
                "{arg}"
            );
        }
        for arg in [
            "deploy",
            "deployment",
            "Deployment",
            "deployments",
            "deployments.apps",
            "Deployment.apps",
            "deploy.apps",
            "deployments.v1.apps",
        ] {
            assert_eq!(
                one(&r, arg),
                ("apps".into(), "v1".into(), "deployments".into()),
                "{arg}"
            );
        }
        assert_eq!(one(&r, "cm").2, "configmaps");
        assert_eq!(one(&r, "ns").2, "namespaces");
    }

    #[test]
    fn core_group_wins_and_group_qualifier_selects() {
        let r = table();
        assert_eq!(one(&r, "events").0, "");
        assert_eq!(one(&r, "ev").0, "");
        assert_eq!(one(&r, "events.events.k8s.io").0, "events.k8s.io");
    }

    #[test]
    fn preferred_version_first_but_pinned_version_selectable() {
        let r = table();
        assert_eq!(one(&r, "jobs").1, "v1");
        assert_eq!(one(&r, "jobs.v1beta1.batch").1, "v1beta1");
        assert_eq!(one(&r, "widgets").1, "v2");
        assert_eq!(
            one(&r, "widget").1,
            "v2",
            "singular defaults to lower-case kind"
        );
        assert_eq!(one(&r, "wd.example.com").1, "v2");
        assert_eq!(one(&r, "widgets.v1.example.com").1, "v1");
    }

    #[test]
    fn all_expands_to_category_preferred_versions() {
        let r = table();
        let all: Vec<String> = r
            .resolve("all")
            .unwrap()
            .iter()
            .map(|i| format!("{}/{}", i.group_resource(), i.version))
            .collect();
        assert_eq!(
            all,
            [
                "pods/v1",
                "services/v1",
                "deployments.apps/v1",
                "replicasets.apps/v1",
                "jobs.batch/v1",
                "widgets.example.com/v2"
            ]
        );
        assert_eq!(r.resolve("toys").unwrap().len(), 1);
    }

    #[test]
    fn lists_and_unknown_names() {
        let r = table();
        let list = r.resolve_list("deploy,svc,deployments").unwrap();
        let names: Vec<_> = list.iter().map(|i| i.group_resource()).collect();
        assert_eq!(names, ["deployments.apps", "services"]);
        assert_eq!(
            r.resolve("foo").unwrap_err().to_string(),
            "the server doesn't have a resource type \"foo\""
        );
        assert!(r.resolve("deployments.batch").is_err());
        assert!(r.resolve("").is_err());
    }

    #[test]
    fn find_kind_and_names() {
        let r = table();
        let d = r.find_kind("apps", "v1", "Deployment").unwrap();
        assert_eq!(d.kind_group(), "deployment.apps");
        assert_eq!(d.group_resource(), "deployments.apps");
        assert_eq!(d.api_version(), "apps/v1");
        assert!(r.find_kind("apps", "v2", "Deployment").is_none());
        let cm = r.find_kind("", "v1", "ConfigMap").unwrap();
        assert_eq!(cm.kind_group(), "configmap");
        assert_eq!(cm.api_version(), "v1");
        assert_eq!(cm.api_resource().plural, "configmaps");
        let ev = r.find_kind("", "v1", "Event").unwrap();
        assert!(ev.supports("list") && !ev.supports("delete"));
        assert!(cm.supports("delete"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }

    #[test]
    fn aggregated_discovery_is_flattened() {
        let doc = serde_json::json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "items": [{
                "metadata": {"name": "apps"},
                "versions": [{
                    "version": "v1",
                    "resources": [{
                        "resource": "deployments",
                        "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "scope": "Namespaced",
                        "singularResource": "deployment",
                        "verbs": ["get", "list"],
                        "shortNames": ["deploy"],
                        "categories": ["all"],
                        "subresources": [{"subresource": "scale"}]
                    }, {
                        "resource": "clusterthings",
                        "responseKind": {"kind": "ClusterThing"},
                        "scope": "Cluster"
                    }]
                }]
            }]
        });
        let list: APIGroupDiscoveryList = serde_json::from_value(doc).unwrap();
        let flat = from_aggregated(&list);
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[0].short_names, ["deploy"]);
        assert!(flat[0].namespaced && !flat[1].namespaced);
        assert_eq!(flat[1].singular, "clusterthing");
        let r = Resolver::new(flat);
        assert_eq!(r.resolve("deploy").unwrap()[0].kind, "Deployment");
    }
}
