//! Label and field selectors: parsing Kubernetes' string syntax and matching objects.

use std::collections::BTreeSet;

use serde_json::Value;

/// An error in a selector string, answered as 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {reason}")]
pub struct SelectorError {
    /// What is wrong.
    pub reason: String,
}

fn err(reason: impl Into<String>) -> SelectorError {
    SelectorError {
        reason: reason.into(),
    }
}

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key`
    Exists(String),
    /// `!key`
    DoesNotExist(String),
    /// `key=value`, `key==value`, `key in (a,b)`
    In(String, BTreeSet<String>),
    /// `key!=value`, `key notin (a,b)`
    NotIn(String, BTreeSet<String>),
    /// `key>N`
    Gt(String, i64),
    /// `key<N`
    Lt(String, i64),
}

/// A parsed label selector: all requirements must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, ANDed.
    pub requirements: Vec<Requirement>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(s: &str) -> Result<BTreeSet<String>, SelectorError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| err(format!("expected a parenthesised set, found {s:?}")))?;
    let mut set = BTreeSet::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(err(format!("invalid label value: {v:?}")));
        }
        set.insert(v.to_string());
    }
    Ok(set)
}

impl LabelSelector {
    /// Parses `app=web,tier in (a,b),!legacy`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for part in split_top_level(s) {
            requirements.push(parse_requirement(part.trim())?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON (`matchLabels`, `matchExpressions`).
    pub fn from_json(selector: &Value) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement::In(k.clone(), BTreeSet::from([v])));
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_string();
                let values: BTreeSet<String> = e["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                requirements.push(match e["operator"].as_str().unwrap_or_default() {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    other => {
                        return Err(err(format!(
                            "{other:?} is not a valid label selector operator"
                        )));
                    }
                });
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::In(k, set) => get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if part.is_empty() {
        return Err(err("empty requirement"));
    }
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(Requirement::DoesNotExist(key.to_string()))
        } else {
            Err(err(format!("invalid label key {key:?}")))
        };
    }
    for (op, len) in [("==", 2), ("!=", 2), ("=", 1), (">", 1), ("<", 1)] {
        if let Some(at) = part.find(op) {
            let key = part[..at].trim();
            let value = part[at + len..].trim();
            if !valid_key(key) {
                return Err(err(format!("invalid label key {key:?}")));
            }
            return match op {
                ">" | "<" => {
                    let n: i64 = value.parse().map_err(|_| {
                        err(format!("for '{op}', value must be an integer: {value:?}"))
                    })?;
                    Ok(if op == ">" {
                        Requirement::Gt(key.to_string(), n)
                    } else {
                        Requirement::Lt(key.to_string(), n)
                    })
                }
                _ => {
                    if !valid_value(value) {
                        return Err(err(format!("invalid label value: {value:?}")));
                    }
                    let set = BTreeSet::from([value.to_string()]);
                    Ok(if op == "!=" {
                        Requirement::NotIn(key.to_string(), set)
                    } else {
                        Requirement::In(key.to_string(), set)
                    })
                }
            };
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim();
    if !valid_key(key) {
        return Err(err(format!("invalid label key {key:?}")));
    }
    if rest.is_empty() {
        return Ok(Requirement::Exists(key.to_string()));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(key.to_string(), parse_set(set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(Requirement::In(key.to_string(), parse_set(set)?));
    }
    Err(err(format!(
        "found {rest:?}, expected: in, notin, =, ==, !=, gt, lt"
    )))
}

/// A parsed field selector: `path=value` / `path!=value` terms, ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(path, value, equal)` terms.
    pub terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running`.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, equal) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, v, true)
            } else {
                return Err(err(format!("invalid field selector: {part:?}")));
            };
            terms.push((path.trim().to_string(), value.trim().to_string(), equal));
        }
        Ok(FieldSelector { terms })
    }

    /// The paths the selector uses, for checking they are supported.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(p, _, _)| p.as_str())
    }

    /// The value of `metadata.name` if the selector pins it (`metadata.name=x`).
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(p, _, eq)| *eq && p == "metadata.name")
            .map(|(_, v, _)| v.as_str())
    }

    /// Whether every term holds for the object.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|(path, value, equal)| (field_value(object, path) == *value) == *equal)
    }
}

/// The string value of a field path as Kubernetes' field label conversion renders it: strings
/// as-is, booleans and numbers as text, missing as empty.
pub fn field_value(object: &Value, path: &str) -> String {
    // Events' `source` selects on the reporting component.
    let path = if path == "source" {
        "source.component"
    } else {
        path
    };
    let mut current = object;
    for part in path.split('.') {
        match current.get(part) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "labels": labels}, "status": {"phase": "Running"}, "spec": {"hostNetwork": false}})
    }

    #[test]
    fn label_selector_table() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("missing notin (a)", true),
            ("app=web,tier=back", false),
            ("app in (web, db),tier", true),
            ("n>4", true),
            ("n<5", false),
        ];
        for (sel, expected) in cases {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                expected,
                "{sel}"
            );
        }
    }

    #[test]
    fn bad_label_selectors_are_errors() {
        for sel in ["app=we b", "a b c", "x in a,b", "=x", "n>abc"] {
            assert!(LabelSelector::parse(sel).is_err(), "{sel}");
        }
    }

    #[test]
    fn label_selector_from_json() {
        let sel = LabelSelector::from_json(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}))
        .unwrap();
        assert!(sel.matches(&obj(json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(&obj(json!({"app": "web"}))));
    }

    #[test]
    fn field_selector_table() {
        let o = obj(json!({}));
        for (sel, expected) in [
            ("metadata.name=x", true),
            ("metadata.name!=x", false),
            ("status.phase==Running,metadata.name=x", true),
            ("spec.nodeName=", true),
            ("spec.hostNetwork=false", true),
        ] {
            assert_eq!(
                FieldSelector::parse(sel).unwrap().matches(&o),
                expected,
                "{sel}"
            );
        }
        assert!(FieldSelector::parse("nonsense").is_err());
        assert_eq!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .pinned_name(),
            Some("a")
        );
    }
}
