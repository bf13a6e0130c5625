//! Who the caller is and what it may do. skiff has one identity, the admin whose bearer token
//! is in the kubeconfig, and it may do everything; the review kinds answer accordingly, so
//! `kubectl auth can-i` and `kubectl auth whoami` work.

use serde_json::{Value, json};

use super::resources::Resource;

/// The admin's user name.
pub const ADMIN_USER: &str = "skiff-admin";
/// The admin's groups (as Kubernetes' cluster-admin bootstrap user).
pub const ADMIN_GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// Answers a review kind's create: the submitted object with its `status` filled in.
pub fn review(resource: &Resource, mut body: Value) -> Value {
    body["apiVersion"] = json!(resource.api_version());
    body["kind"] = json!(resource.kind);
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    body["status"] = match resource.kind {
        "SelfSubjectAccessReview" => json!({
            "allowed": true,
            "reason": "the skiff admin may do everything",
        }),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => json!({"userInfo": {"username": ADMIN_USER, "groups": ADMIN_GROUPS}}),
    };
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::by_plural;

    #[test]
    fn access_reviews_are_allowed_and_whoami_names_the_admin() {
        let ssar = by_plural("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap();
        let out = review(
            ssar,
            json!({"spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}}}),
        );
        assert_eq!(out["status"]["allowed"], true);
        assert_eq!(out["spec"]["resourceAttributes"]["verb"], "create");
        let ssr = by_plural("authentication.k8s.io", "v1", "selfsubjectreviews").unwrap();
        assert_eq!(
            review(ssr, json!({}))["status"]["userInfo"]["username"],
            ADMIN_USER
        );
    }
}
