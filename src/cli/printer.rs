//! Output formatting: server-side Tables laid out like kubectl, `kind.group/name`,
//! and YAML/JSON objects with kubectl's key order.

use serde_json::{Map, Value};

/// One column of a server-side Table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `name`, `date`, ... (the Table's `format`).
    pub format: String,
    /// 0 for default columns, higher for `-o wide` only.
    pub priority: i64,
}

/// One row: its cells and the namespace of the object it shows (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Value>,
    pub namespace: Option<String>,
}

/// A server-side Table (`meta.k8s.io/v1`), reduced to what printing needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl Table {
    /// Reads a `Table` response; `None` when `value` is not a Table.
    pub fn from_value(value: &Value) -> Option<Table> {
        if value.get("kind").and_then(Value::as_str) != Some("Table") {
            return None;
        }
        let columns = value
            .get("columnDefinitions")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| Column {
                        name: c
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        format: c
                            .get("format")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = value
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| Row {
                        cells: r
                            .get("cells")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                        namespace: r
                            .pointer("/object/metadata/namespace")
                            .and_then(Value::as_str)
                            .filter(|ns| !ns.is_empty())
                            .map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Table { columns, rows })
    }

    /// A NAME/AGE table built client-side from plain objects, for servers that don't
    /// serve Tables.
    pub fn from_objects(objects: &[Value], now: chrono::DateTime<chrono::Utc>) -> Table {
        let columns = vec![
            Column {
                name: "Name".into(),
                format: "name".into(),
                priority: 0,
            },
            Column {
                name: "Age".into(),
                format: String::new(),
                priority: 0,
            },
        ];
        let rows = objects
            .iter()
            .map(|o| {
                let meta = |f: &str| {
                    o.pointer(&format!("/metadata/{f}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let age = chrono::DateTime::parse_from_rfc3339(&meta("creationTimestamp"))
                    .map(|t| human_duration(now.signed_duration_since(t)))
                    .unwrap_or_else(|_| "<unknown>".into());
                let ns = meta("namespace");
                Row {
                    cells: vec![Value::String(meta("name")), Value::String(age)],
                    namespace: (!ns.is_empty()).then_some(ns),
                }
            })
            .collect();
        Table { columns, rows }
    }
}

/// How to lay out a table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions<'a> {
    /// Include priority > 0 columns (`-o wide`).
    pub wide: bool,
    /// Prepend a NAMESPACE column (`-A`).
    pub with_namespace: bool,
    /// Prefix names with `kind.group/` (when printing several resource types).
    pub kind_prefix: Option<&'a str>,
    /// Leave out the header line.
    pub no_headers: bool,
}

/// Lays a table out like kubectl: upper-case headers, left-aligned columns separated
/// by (at least) three spaces, the last column unpadded.
pub fn render_table(table: &Table, opts: &TableOptions<'_>) -> String {
    let shown: Vec<usize> = (0..table.columns.len())
        .filter(|&i| opts.wide || table.columns[i].priority == 0)
        .collect();
    let name_col = table
        .columns
        .iter()
        .position(|c| c.format == "name")
        .unwrap_or(0);
    let mut lines: Vec<Vec<String>> = Vec::new();
    if !opts.no_headers {
        let mut header: Vec<String> = Vec::new();
        if opts.with_namespace {
            header.push("NAMESPACE".into());
        }
        header.extend(shown.iter().map(|&i| table.columns[i].name.to_uppercase()));
        lines.push(header);
    }
    for row in &table.rows {
        let mut line = Vec::new();
        if opts.with_namespace {
            line.push(row.namespace.clone().unwrap_or_default());
        }
        for &i in &shown {
            let cell = row.cells.get(i).map(format_cell).unwrap_or_default();
            match opts.kind_prefix {
                Some(prefix) if i == name_col => line.push(format!("{prefix}/{cell}")),
                _ => line.push(cell),
            }
        }
        lines.push(line);
    }
    align(&lines)
}

/// Aligns cells into columns the way Go's tabwriter does for kubectl (padding 3,
/// minimum width 6): every cell but the last on a line is padded to its column's
/// widest cell plus three spaces, and to at least six characters.
pub fn align(lines: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for line in lines {
        for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
            let w = cell.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for line in lines {
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < line.len() {
                let pad = (widths[i] + 3).max(6) - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// A table cell as kubectl prints it: strings verbatim, numbers and booleans as text,
/// missing values empty.
pub fn format_cell(cell: &Value) -> String {
    match cell {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(format_cell).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

/// `deployment.apps/web`, or `configmap/web` for the core group.
pub fn kind_name(kind_group: &str, name: &str) -> String {
    format!("{kind_group}/{name}")
}

/// Durations as kubectl shows ages: `45s`, `3m12s`, `5h`, `2d3h`, `1y20d`.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < 0 {
        return "0s".into();
    }
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if mins < 10 {
        match secs % 60 {
            0 => format!("{mins}m"),
            s => format!("{mins}m{s}s"),
        }
    } else if hours < 3 {
        format!("{mins}m")
    } else if hours < 8 {
        match mins % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// Prepares an object for `-o yaml|json`: drops `metadata.managedFields` (as kubectl
/// does by default) and sorts keys (kubectl prints maps in key order).
pub fn for_output(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    sort_keys(object)
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// The `List` kubectl prints for several objects.
pub fn list_of(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// JSON indented by four spaces, with a trailing newline and `<`, `>`, `&`, U+2028 and
/// U+2029 escaped (as kubectl, through Go's encoding/json, prints it).
pub fn to_json(value: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    // Serializing a `Value` into memory cannot fail.
    let _ = value.serialize(&mut ser);
    let text = String::from_utf8(buf).unwrap_or_default();
    // These characters only ever occur inside JSON strings, so escaping them in the
    // whole text is safe.
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// YAML as kubectl prints it (see [`super::yaml`]).
pub fn to_yaml(value: &Value) -> String {
    super::yaml::to_string(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployments_table() -> Table {
        Table::from_value(&json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "format": "", "priority": 0},
                {"name": "Up-to-date", "type": "integer", "format": "", "priority": 0},
                {"name": "Age", "type": "string", "format": "", "priority": 0},
                {"name": "Containers", "type": "string", "format": "", "priority": 1},
                {"name": "Selector", "type": "string", "format": "", "priority": 1}
            ],
            "rows": [
                {"cells": ["web", "0/2", 2, "5s", "nginx", "app=web"],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "web", "namespace": "default"}}},
                {"cells": ["backend-long-name", "1/1", 1, "10m", "api,sidecar", "app=backend"],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "backend-long-name", "namespace": "prod"}}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn table_default_columns_aligned_like_kubectl() {
        let out = render_table(&deployments_table(), &TableOptions::default());
        assert_eq!(
            out,
            "NAME                READY   UP-TO-DATE   AGE\n\
             web                 0/2     2            5s\n\
             backend-long-name   1/1     1            10m\n"
        );
    }

    #[test]
    fn table_wide_and_all_namespaces() {
        let opts = TableOptions {
            wide: true,
            with_namespace: true,
            ..Default::default()
        };
        let out = render_table(&deployments_table(), &opts);
        assert_eq!(
            out,
            "NAMESPACE   NAME                READY   UP-TO-DATE   AGE   CONTAINERS    SELECTOR\n\
             default     web                 0/2     2            5s    nginx         app=web\n\
             prod        backend-long-name   1/1     1            10m   api,sidecar   app=backend\n"
        );
    }

    #[test]
    fn table_kind_prefix_and_no_headers() {
        let opts = TableOptions {
            kind_prefix: Some("deployment.apps"),
            no_headers: true,
            ..Default::default()
        };
        let out = render_table(&deployments_table(), &opts);
        assert_eq!(
            out,
            "deployment.apps/web                 0/2   2     5s\n\
             deployment.apps/backend-long-name   1/1   1     10m\n"
        );
    }

    #[test]
    fn non_tables_and_fallback_tables() {
        assert!(Table::from_value(&json!({"kind": "DeploymentList"})).is_none());
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T01:00:00Z")
            .unwrap()
            .to_utc();
        let t = Table::from_objects(
            &[
                json!({"metadata": {"name": "a", "namespace": "ns1", "creationTimestamp": "2024-01-01T00:00:00Z"}}),
            ],
            now,
        );
        let out = render_table(
            &t,
            &TableOptions {
                with_namespace: true,
                ..Default::default()
            },
        );
        assert_eq!(out, "NAMESPACE   NAME   AGE\nns1         a      60m\n");
    }

    #[test]
    fn cells_and_alignment_details() {
        assert_eq!(format_cell(&json!(null)), "");
        assert_eq!(format_cell(&json!(3)), "3");
        assert_eq!(format_cell(&json!(true)), "true");
        assert_eq!(format_cell(&json!(["a", 1])), "[a 1]");
        // Widths count characters, not bytes; the last column is never padded.
        let lines = vec![
            vec!["ÄÖ".to_string(), "x".to_string()],
            vec!["abcd".to_string(), "longer-last-cell".to_string()],
        ];
        assert_eq!(align(&lines), "ÄÖ     x\nabcd   longer-last-cell\n");
        // Columns are at least six wide (tabwriter's minwidth), padding included.
        let short = vec![vec!["pc".to_string(), "1".to_string(), "44s".to_string()]];
        assert_eq!(align(&short), "pc    1     44s\n");
        assert_eq!(align(&[]), "");
    }

    #[test]
    fn json_escapes_html_characters_like_go() {
        assert_eq!(
            to_json(&json!({"a": "<b> & \u{2028}"})),
            "{\n    \"a\": \"\\u003cb\\u003e \\u0026 \\u2028\"\n}\n"
        );
    }

    #[test]
    fn kind_group_name_formatting() {
        assert_eq!(kind_name("deployment.apps", "web"), "deployment.apps/web");
        assert_eq!(kind_name("configmap", "x"), "configmap/x");
    }

    #[test]
    fn ages() {
        let h = |s: i64| human_duration(chrono::TimeDelta::seconds(s));
        assert_eq!(h(-5), "0s");
        assert_eq!(h(45), "45s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(192), "3m12s");
        assert_eq!(h(600), "10m");
        assert_eq!(h(3 * 3600 + 60), "3h1m");
        assert_eq!(h(10 * 3600), "10h");
        assert_eq!(h(3 * 86400 + 3600), "3d1h");
        assert_eq!(h(30 * 86400), "30d");
        assert_eq!(h(3 * 365 * 86400 + 86400), "3y1d");
        assert_eq!(h(10 * 365 * 86400), "10y");
    }

    #[test]
    fn output_objects_sorted_without_managed_fields() {
        let obj = for_output(json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "x", "managedFields": [{}], "labels": {"b": "1", "a": "2"}},
            "data": {"k": "v"}
        }));
        assert_eq!(
            to_json(&obj),
            "{\n    \"apiVersion\": \"v1\",\n    \"data\": {\n        \"k\": \"v\"\n    },\n    \"kind\": \"ConfigMap\",\n    \"metadata\": {\n        \"labels\": {\n            \"a\": \"2\",\n            \"b\": \"1\"\n        },\n        \"name\": \"x\"\n    }\n}\n"
        );
        let list = list_of(vec![obj]);
        assert_eq!(
            to_yaml(&list),
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    k: v\n  kind: ConfigMap\n  metadata:\n    labels:\n      a: \"2\"\n      b: \"1\"\n    name: x\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"
        );
    }
}
