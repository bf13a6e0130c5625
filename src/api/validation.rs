//! Kubernetes-compatible validation of API objects.
//!
//! The rules, messages and field paths follow the upstream API server
//! (`pkg/apis/*/validation`, apimachinery's validation helpers and the
//! registry strategies) so that a client sees the same 422 responses it would
//! get from Kubernetes. Objects are validated as JSON after defaulting (see
//! [`crate::api::defaults`]).
//!
//! Rendering of bad values follows `field.Error.ErrorBody`: strings are quoted
//! like Go's `%q`, numbers and booleans are printed plainly, anything else is
//! rendered as compact JSON.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------

/// One field error, rendered like Kubernetes' `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The error type.
    pub kind: ErrorKind,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The rendered bad value (Go-like quoting), when Kubernetes prints one.
    pub value: Option<String>,
    /// The detail message.
    pub detail: String,
}

/// The error types of `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
}

impl ErrorKind {
    /// The cause type for `Status.details.causes[].reason`, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// The human-readable type, e.g. `Required value`.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::NotFound => "Not found",
        }
    }
}

impl FieldError {
    /// The message without the field name (`ErrorBody`), as used for `causes[].message`.
    pub fn body(&self) -> String {
        let mut s = self.kind.message().to_string();
        let shows_value = matches!(
            self.kind,
            ErrorKind::Invalid
                | ErrorKind::Duplicate
                | ErrorKind::NotSupported
                | ErrorKind::TooMany
                | ErrorKind::NotFound
        );
        if shows_value && let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// The message Kubernetes puts in the Status of a 422 Invalid response:
/// `Deployment.apps "web" is invalid: [a: ..., b: ...]` (no brackets for a single error).
pub fn invalid_message(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut seen = HashSet::new();
    let mut msgs = Vec::new();
    for e in errors {
        let m = e.to_string();
        if seen.insert(m.clone()) {
            msgs.push(m);
        }
    }
    match msgs.len() {
        0 => format!("{qualified} {} is invalid", go_quote(name)),
        1 => format!("{qualified} {} is invalid: {}", go_quote(name), msgs[0]),
        _ => format!(
            "{qualified} {} is invalid: [{}]",
            go_quote(name),
            msgs.join(", ")
        ),
    }
}

/// A bad value before rendering.
enum Bv {
    /// A Go string, printed with `%q`.
    Str(String),
    /// Already rendered (numbers, JSON).
    Raw(String),
}

fn bs(s: &str) -> Bv {
    Bv::Str(s.to_string())
}

fn bn(n: i64) -> Bv {
    Bv::Raw(n.to_string())
}

/// A JSON value as Go's `json.Marshal` prints it; object keys sorted (Go maps).
fn bj(v: &Value) -> Bv {
    Bv::Raw(go_json(v, true))
}

/// A JSON value keeping the object key order (Go structs).
fn bjo(v: &Value) -> Bv {
    Bv::Raw(go_json(v, false))
}

fn render(v: Bv) -> String {
    match v {
        Bv::Str(s) => go_quote(&s),
        Bv::Raw(s) => s,
    }
}

fn mk(kind: ErrorKind, p: &Path, value: Option<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        kind,
        field: p.0.clone(),
        value,
        detail: detail.into(),
    }
}

fn required(p: &Path, detail: &str) -> FieldError {
    mk(ErrorKind::Required, p, None, detail)
}

fn forbidden(p: &Path, detail: &str) -> FieldError {
    mk(ErrorKind::Forbidden, p, None, detail)
}

fn invalid(p: &Path, v: Bv, detail: impl Into<String>) -> FieldError {
    mk(ErrorKind::Invalid, p, Some(render(v)), detail)
}

fn duplicate(p: &Path, v: Bv) -> FieldError {
    mk(ErrorKind::Duplicate, p, Some(render(v)), "")
}

fn not_found(p: &Path, v: Bv) -> FieldError {
    mk(ErrorKind::NotFound, p, Some(render(v)), "")
}

fn not_supported(p: &Path, v: Bv, valid: &[&str]) -> FieldError {
    let detail = if valid.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
        format!("supported values: {}", quoted.join(", "))
    };
    mk(ErrorKind::NotSupported, p, Some(render(v)), detail)
}

fn too_long(p: &Path, max: usize) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    mk(
        ErrorKind::TooLong,
        p,
        None,
        format!("may not be more than {max} {unit}"),
    )
}

fn too_many(p: &Path, actual: usize, max: usize) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    mk(
        ErrorKind::TooMany,
        p,
        Some(actual.to_string()),
        format!("must have at most {max} {unit}"),
    )
}

const IMMUTABLE: &str = "field is immutable";
const NEGATIVE: &str = "must be greater than or equal to 0";

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let u = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || u == 0xad
        || (0x200b..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfff9..=0xfffb).contains(&u))
}

/// Go's `json.Marshal` of a value (HTML-safe escaping). `sorted` orders object keys like Go maps.
pub fn go_json(v: &Value, sorted: bool) -> String {
    super::gojson::value(v, sorted)
}

// ---------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------

/// A field path rendered like `field.Path.String()`.
#[derive(Clone, Debug)]
struct Path(String);

impl Path {
    fn new(name: &str) -> Path {
        Path(name.to_string())
    }

    fn ch(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    fn idx(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }

    fn key(&self, k: &str) -> Path {
        Path(format!("{}[{}]", self.0, k))
    }
}

// ---------------------------------------------------------------------------
// JSON access helpers
// ---------------------------------------------------------------------------

static NULL: Value = Value::Null;

fn at<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&NULL)
}

fn has(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(as_int)
}

fn int0(v: &Value, k: &str) -> i64 {
    int(v, k).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn boolean(v: &Value, k: &str) -> Option<bool> {
    v.get(k).and_then(Value::as_bool)
}

fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A `map[string]string` field, sorted by key.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), scalar_string(x)))
                .collect()
        })
        .unwrap_or_default()
}

fn sorted_keys(m: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys
}

/// Go semantic emptiness: nil and empty collections, empty strings.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Normalizes a JSON value for semantic comparison: nulls and empty collections are dropped,
/// integral floats become integers.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for k in sorted_keys(m) {
                let n = normalize(&m[k]);
                let empty = match &n {
                    Value::Null => true,
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty(),
                    _ => false,
                };
                if !empty {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Number(n) => match as_int(v) {
            Some(i) => Value::from(i),
            None => Value::Number(n.clone()),
        },
        other => other.clone(),
    }
}

/// A copy of `object` without `metadata.managedFields`, which no validation reads (and which
/// is often the larger part of an object).
fn without_managed_fields(object: &Value) -> Value {
    let Some(fields) = object.as_object() else {
        return object.clone();
    };
    let copy = fields
        .iter()
        .map(|(k, v)| match (k.as_str(), v.as_object()) {
            ("metadata", Some(meta)) => (
                k.clone(),
                Value::Object(
                    meta.iter()
                        .filter(|(field, _)| *field != "managedFields")
                        .map(|(field, value)| (field.clone(), value.clone()))
                        .collect(),
                ),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    Value::Object(copy)
}

/// Whether `v` normalizes to nothing (see [`normalize`]): null, an empty array, or an object
/// whose every field does.
fn normalizes_away(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(normalizes_away),
        _ => false,
    }
}

/// Semantic equality in the spirit of `apiequality.Semantic.DeepEqual`: equality of the
/// [normalized](normalize) values, worked out without building them.
fn sem_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            // Every field of `x` that stays has its equal in `y` (which then stays too), and
            // `y` keeps no field that `x` lacks.
            x.iter()
                .all(|(k, v)| normalizes_away(v) || y.get(k).is_some_and(|w| sem_eq(v, w)))
                && y.iter().all(|(k, w)| {
                    normalizes_away(w) || x.get(k).is_some_and(|v| !normalizes_away(v))
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| sem_eq(v, w))
        }
        (Value::Number(_), Value::Number(_)) => match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => x == y,
            (None, None) => a == b,
            _ => false,
        },
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------
// Format validators (apimachinery/pkg/util/validation and validate/content)
// ---------------------------------------------------------------------------

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const WILDCARD_FMT: &str = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_ERR: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";

/// `validation.MaxLenError` (util/validation counts characters).
fn max_len_chars(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `content.MaxLenError` (validate/content counts bytes).
fn max_len_bytes(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// `validation.RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(v: &str) -> bool {
    !v.is_empty() && v.split('.').all(matches_dns1123_label)
}

fn matches_label_key_name(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// `IsDNS1123Label`: messages for a value that is not a lowercase RFC 1123 label.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_chars(63));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`: messages for a value that is not a lowercase RFC 1123 subdomain.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_chars(253));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// The subdomain check of `validate/content` (used for label key prefixes; counts bytes).
fn content_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_bytes(253));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_chars(63));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsQualifiedName` / `IsLabelKey`: label keys, annotation keys, finalizers and other qualified names.
pub fn validate_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.len() {
        1 => parts[0],
        2 => {
            let prefix = parts[0];
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in content_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            parts[1]
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_bytes(63)));
    }
    if !matches_label_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Label keys are qualified names.
pub fn validate_label_key(key: &str) -> Vec<String> {
    validate_qualified_name(key)
}

/// `IsValidLabelValue`.
pub fn validate_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_bytes(63));
    }
    if !value.is_empty() && !matches_label_key_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_chars(253));
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(matches_dns1123_subdomain);
    if !ok {
        errs.push(regex_error(WILDCARD_ERR, WILDCARD_FMT, &["*.example.com"]));
    }
    errs
}

fn has_chdir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_string()]
    } else if value == ".." {
        vec!["must not be '..'".to_string()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

/// `IsConfigMapKey`.
fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_chars(253));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_');
    if !ok {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_chars(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

fn is_valid_percent(v: &str) -> Vec<String> {
    let ok = v
        .strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

fn is_http_header_name(v: &str) -> Vec<String> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid HTTP header must consist of alphanumeric characters or '-'",
            "[-A-Za-z0-9]+",
            &["X-Header-Name"],
        )]
    }
}

fn is_relaxed_env_var_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if v.chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=')
    {
        errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
    }
    errs
}

fn parse_ip(v: &str) -> Option<std::net::IpAddr> {
    v.parse::<std::net::IpAddr>().ok()
}

/// `validation.IsValidIP` (strict form).
fn validate_ip(p: &Path, v: &str) -> Vec<FieldError> {
    match parse_ip(v) {
        None => vec![invalid(
            p,
            bs(v),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )],
        Some(ip) => {
            let mut errs = Vec::new();
            if let std::net::IpAddr::V6(v6) = ip
                && v6.to_ipv4_mapped().is_some()
            {
                errs.push(invalid(p, bs(v), "must not be an IPv4-mapped IPv6 address"));
                return errs;
            }
            let canonical = ip.to_string();
            if canonical != v {
                errs.push(invalid(
                    p,
                    bs(v),
                    format!("must be in canonical form ({})", go_quote(&canonical)),
                ));
            }
            errs
        }
    }
}

fn is_ipv6_string(v: &str) -> bool {
    matches!(parse_ip(v), Some(std::net::IpAddr::V6(_)))
}

/// `validation.IsValidCIDR` (strict form).
fn validate_cidr(p: &Path, v: &str) -> Vec<FieldError> {
    let bad = || {
        vec![invalid(
            p,
            bs(v),
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    };
    let Some((ip_s, len_s)) = v.split_once('/') else {
        return bad();
    };
    let Some(ip) = parse_ip(ip_s) else {
        return bad();
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let Ok(len) = len_s.parse::<u32>() else {
        return bad();
    };
    if len > max || len_s.is_empty() || !len_s.bytes().all(|c| c.is_ascii_digit()) {
        return bad();
    }
    if len_s.len() > 1 && len_s.starts_with('0') {
        return vec![invalid(
            p,
            bs(v),
            "must not have leading 0s in IP or prefix length",
        )];
    }
    let masked = match ip {
        std::net::IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            std::net::IpAddr::V4((bits & mask).into())
        }
        std::net::IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            std::net::IpAddr::V6((bits & mask).into())
        }
    };
    if masked != ip {
        return vec![invalid(
            p,
            bs(v),
            "must not have bits set beyond the prefix length",
        )];
    }
    let canonical = format!("{masked}/{len}");
    if canonical != v {
        return vec![invalid(
            p,
            bs(v),
            format!("must be in canonical form ({})", go_quote(&canonical)),
        )];
    }
    Vec::new()
}

// Name validators (`ValidateNameFunc`): `prefix` is true for generateName.

type NameFn = fn(&str, bool) -> Vec<String>;

fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let mut cut = name.len() - 2;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}a", &name[..cut])
    } else {
        name.to_string()
    }
}

fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

fn validate_dns1123_label_at(v: &str, p: &Path) -> Vec<FieldError> {
    is_dns1123_label(v)
        .into_iter()
        .map(|m| invalid(p, bs(v), m))
        .collect()
}

fn validate_dns1123_subdomain_at(v: &str, p: &Path) -> Vec<FieldError> {
    is_dns1123_subdomain(v)
        .into_iter()
        .map(|m| invalid(p, bs(v), m))
        .collect()
}

fn validate_qualified_name_at(v: &str, p: &Path) -> Vec<FieldError> {
    validate_qualified_name(v)
        .into_iter()
        .map(|m| invalid(p, bs(v), m))
        .collect()
}

fn validate_nonnegative(v: i64, p: &Path) -> Vec<FieldError> {
    if v < 0 {
        vec![invalid(p, bn(v), NEGATIVE)]
    } else {
        Vec::new()
    }
}

fn validate_immutable(new: &Value, old: &Value, p: &Path, value: Bv) -> Vec<FieldError> {
    if sem_eq(new, old) {
        Vec::new()
    } else {
        vec![invalid(p, value, IMMUTABLE)]
    }
}

/// Renders a JSON value the way `field.Error` prints a Go value of that JSON shape:
/// strings quoted, numbers plain, other values JSON.
fn value_bv(v: &Value) -> Bv {
    match v {
        Value::String(s) => bs(s),
        Value::Number(n) => Bv::Raw(n.to_string()),
        Value::Bool(b) => Bv::Raw(b.to_string()),
        other => bj(other),
    }
}

// ---------------------------------------------------------------------------
// Quantities (k8s.io/apimachinery/pkg/api/resource)
// ---------------------------------------------------------------------------

const QUANTITY_FORMAT_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const QUANTITY_SUFFIX_ERR: &str = "unable to parse quantity's suffix";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QFormat {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// An exact resource quantity: `(-1)^neg * mant * 10^scale`, with its serialization format.
#[derive(Clone, Debug)]
struct Quantity {
    neg: bool,
    mant: u128,
    scale: i32,
    format: QFormat,
    /// The original text when Kubernetes keeps it (already canonical).
    cached: Option<String>,
}

fn pow10(e: u32) -> Option<u128> {
    10u128.checked_pow(e)
}

impl Quantity {
    fn parse(input: &str) -> Result<Quantity, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err(QUANTITY_FORMAT_ERR);
        }
        if s == "0" {
            return Ok(Quantity {
                neg: false,
                mant: 0,
                scale: 0,
                format: QFormat::DecimalSI,
                cached: Some("0".into()),
            });
        }
        let (positive, num, denom, suffix) = split_quantity(s)?;
        let (base, exp, mut format) = interpret_suffix(suffix).ok_or(QUANTITY_SUFFIX_ERR)?;

        // The fast path of ParseQuantity decides whether the input text is kept verbatim.
        let mut cached = None;
        let precision: i64 = match format {
            QFormat::DecimalSI | QFormat::DecimalExponent => 18 - (num.len() + denom.len()) as i64,
            QFormat::BinarySI => {
                if exp >= 0 && denom.is_empty() {
                    15 - num.len() as i64 - ((exp as f32) * 3.0 / 10.0) as i64 - 1
                } else {
                    -1
                }
            }
        };
        if precision >= 0 {
            let scale_fast = if base == 10 { exp as i64 } else { 0 } - denom.len() as i64;
            if scale_fast >= -9 {
                let shifted = format!("{num}{denom}");
                if let Ok(value) = shifted.parse::<i64>() {
                    let mult: i64 = if base == 2 {
                        1i64.checked_shl(exp as u32).unwrap_or(0)
                    } else {
                        1
                    };
                    if mult != 0 && value.checked_mul(mult).is_some() {
                        let keep = match format {
                            QFormat::BinarySI => exp % 10 == 0 && (value & 0x07) != 0,
                            _ => {
                                scale_fast % 3 == 0
                                    && !shifted.ends_with("000")
                                    && !shifted.starts_with('0')
                            }
                        };
                        if keep {
                            cached = Some(s.to_string());
                        }
                    }
                }
            }
        }

        // Exact value.
        let mut digits = format!("{num}{denom}");
        let mut scale: i64 = -(denom.len() as i64);
        if base == 10 {
            scale += exp as i64;
        }
        let trimmed = digits.trim_start_matches('0');
        digits = if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        };
        while digits.len() > 38 && digits.ends_with('0') {
            digits.pop();
            scale += 1;
        }
        if digits.len() > 38 {
            // Keep 38 significant digits, rounding up (Kubernetes keeps them all).
            let cut = digits.len() - 38;
            digits.truncate(38);
            scale += cut as i64;
            let m: u128 = digits.parse().map_err(|_| QUANTITY_FORMAT_ERR)?;
            digits = (m + 1).to_string();
        }
        let mut mant: u128 = digits.parse().map_err(|_| QUANTITY_FORMAT_ERR)?;
        if base == 2 && mant != 0 {
            mant = mant.saturating_mul(1u128 << exp.clamp(0, 60));
        }
        let mut scale = scale.clamp(i32::MIN as i64 / 2, i32::MAX as i64 / 2) as i32;
        // Round non-zero values up to nano precision.
        if scale < -9 && mant != 0 {
            let k = (-9 - scale) as u32;
            mant = match pow10(k) {
                Some(d) => mant.div_ceil(d),
                None => 1,
            };
            scale = -9;
        }
        let mut q = Quantity {
            neg: !positive && mant != 0,
            mant,
            scale,
            format,
            cached,
        };
        if format == QFormat::BinarySI {
            let cap = Quantity {
                neg: false,
                mant: i64::MAX as u128,
                scale: 0,
                format,
                cached: None,
            };
            if !q.neg && q.cmp_abs(&cap) == Ordering::Greater {
                q.mant = i64::MAX as u128;
                q.scale = 0;
                q.cached = None;
            }
            let one = Quantity {
                neg: false,
                mant: 1,
                scale: 0,
                format,
                cached: None,
            };
            if !q.neg && q.mant != 0 && q.cmp_abs(&one) == Ordering::Less {
                format = QFormat::DecimalSI;
                q.format = format;
            }
        }
        if q.mant == 0 {
            q.neg = false;
        }
        Ok(q)
    }

    fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// Compares absolute values.
    fn cmp_abs(&self, other: &Quantity) -> Ordering {
        if self.mant == 0 || other.mant == 0 {
            return self.mant.cmp(&other.mant);
        }
        let min = self.scale.min(other.scale);
        let a = pow10((self.scale - min) as u32).and_then(|p| self.mant.checked_mul(p));
        let b = pow10((other.scale - min) as u32).and_then(|p| other.mant.checked_mul(p));
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (None, _) => Ordering::Greater,
            (_, None) => Ordering::Less,
        }
    }

    fn cmp(&self, other: &Quantity) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_abs(other),
            (true, true) => other.cmp_abs(self),
        }
    }

    fn sign(&self) -> i32 {
        if self.mant == 0 {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }

    /// The value scaled by `10^-scale_to`, rounded away from zero (`ScaledValue`).
    fn scaled(&self, scale_to: i32) -> i128 {
        let diff = self.scale as i64 - scale_to as i64;
        let abs: u128 = if diff >= 0 {
            pow10(diff as u32)
                .and_then(|p| self.mant.checked_mul(p))
                .unwrap_or(u128::MAX)
        } else {
            match pow10((-diff) as u32) {
                Some(d) => self.mant.div_ceil(d),
                None => u128::from(self.mant != 0),
            }
        };
        let abs = abs.min(i128::MAX as u128) as i128;
        if self.neg { -abs } else { abs }
    }

    fn milli_value(&self) -> i128 {
        self.scaled(-3)
    }

    /// `RoundUp(scale)`: rounds away from zero to `10^scale` precision.
    fn round_up(&mut self, scale: i32) {
        if self.scale >= scale {
            return;
        }
        self.cached = None;
        let k = (scale - self.scale) as u32;
        self.mant = match pow10(k) {
            Some(d) => self.mant.div_ceil(d),
            None => u128::from(self.mant != 0),
        };
        self.scale = scale;
        if self.mant == 0 {
            self.neg = false;
        }
    }

    /// The serialized form (`Quantity.String()`).
    fn to_k8s_string(&self) -> String {
        if let Some(c) = &self.cached {
            return c.clone();
        }
        if self.is_zero() {
            return "0".to_string();
        }
        let sign = if self.neg { "-" } else { "" };
        let mut format = self.format;
        if format == QFormat::BinarySI {
            let k1024 = Quantity {
                neg: false,
                mant: 1024,
                scale: 0,
                format,
                cached: None,
            };
            let integral = self.scale >= 0
                || pow10((-self.scale) as u32).is_some_and(|d| self.mant.is_multiple_of(d));
            if self.cmp_abs(&k1024) == Ordering::Less || !integral {
                format = QFormat::DecimalSI;
            }
        }
        if format == QFormat::BinarySI {
            let mut v: u128 = if self.scale >= 0 {
                pow10(self.scale as u32)
                    .and_then(|p| self.mant.checked_mul(p))
                    .unwrap_or(u128::MAX)
            } else {
                self.mant / pow10((-self.scale) as u32).unwrap_or(1)
            };
            let mut times = 0;
            while v >= 1024 && v.is_multiple_of(1024) {
                v /= 1024;
                times += 1;
            }
            let suffix = match times {
                0 => "",
                1 => "Ki",
                2 => "Mi",
                3 => "Gi",
                4 => "Ti",
                5 => "Pi",
                6 => "Ei",
                _ => "",
            };
            return format!("{sign}{v}{suffix}");
        }
        // Decimal: move factors of ten into the exponent, then make the exponent a multiple of 3.
        let mut digits = self.mant.to_string();
        let mut exponent = self.scale as i64;
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
            exponent += 1;
        }
        while exponent % 3 != 0 {
            digits.push('0');
            exponent -= 1;
        }
        let suffix = if format == QFormat::DecimalExponent {
            if exponent == 0 {
                String::new()
            } else {
                format!("e{exponent}")
            }
        } else {
            match exponent {
                -9 => "n".to_string(),
                -6 => "u".to_string(),
                -3 => "m".to_string(),
                0 => String::new(),
                3 => "k".to_string(),
                6 => "M".to_string(),
                9 => "G".to_string(),
                12 => "T".to_string(),
                15 => "P".to_string(),
                18 => "E".to_string(),
                e => format!("e{e}"),
            }
        };
        format!("{sign}{digits}{suffix}")
    }
}

/// `parseQuantityString`: sign, numerator, denominator and suffix.
fn split_quantity(s: &str) -> Result<(bool, &str, &str, &str), &'static str> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if pos < end {
        match b[0] {
            b'-' => {
                positive = false;
                pos += 1;
            }
            b'+' => pos += 1,
            _ => {}
        }
    }
    loop {
        if pos >= end {
            return Ok((positive, "0", "", ""));
        }
        if b[pos] == b'0' {
            pos += 1;
        } else {
            break;
        }
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if num.is_empty() {
        num = "0";
    }
    if pos >= end {
        return Ok((positive, num, "", ""));
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let ds = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[ds..pos];
        if pos >= end {
            return Ok((positive, num, denom, ""));
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, num, denom, &s[suffix_start..]));
    }
    if b[pos] == b'-' || b[pos] == b'+' {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, num, denom, &s[suffix_start..]));
    }
    Err(QUANTITY_FORMAT_ERR)
}

/// `suffixHandler.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, QFormat)> {
    let dec = |e| Some((10, e, QFormat::DecimalSI));
    let bin = |e| Some((2, e, QFormat::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i64 = s[1..].parse().ok()?;
            Some((
                10,
                e.clamp(-100_000, 100_000) as i32,
                QFormat::DecimalExponent,
            ))
        }
        _ => None,
    }
}

/// Parses a Kubernetes resource quantity (`100m`, `64Mi`, `1e3`, `0.5`, ...) and returns its
/// value in milli-units, rounded up like `Quantity.MilliValue()`. `None` if it does not parse.
pub fn parse_quantity(s: &str) -> Option<i128> {
    Quantity::parse(s).ok().map(|q| q.milli_value())
}

/// The canonical serialized form of a quantity (`Quantity.String()`), e.g. `1024Mi` → `1Gi`.
pub fn canonical_quantity(s: &str) -> Option<String> {
    Quantity::parse(s).ok().map(|q| q.to_k8s_string())
}

/// What the API server stores for a resource-list quantity: rounded up to milli precision
/// (`SetDefaults_ResourceList`) and canonicalized.
pub fn default_resource_quantity(s: &str) -> Option<String> {
    let mut q = Quantity::parse(s).ok()?;
    q.round_up(-3);
    Some(q.to_k8s_string())
}

/// Parses a quantity held in JSON (string or number).
fn quantity_of(v: &Value) -> Result<Quantity, &'static str> {
    match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => Err(QUANTITY_FORMAT_ERR),
    }
}

// ---------------------------------------------------------------------------
// Metadata, labels, annotations, selectors
// ---------------------------------------------------------------------------

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn validate_labels(labels: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = labels.as_object() {
        for k in sorted_keys(m) {
            for msg in validate_label_key(k) {
                errs.push(invalid(p, bs(k), msg));
            }
            let v = scalar_string(&m[k]);
            for msg in validate_label_value(&v) {
                errs.push(invalid(p, bs(&v), msg));
            }
        }
    }
    errs
}

fn validate_annotations(annotations: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = annotations.as_object() {
        let mut total = 0usize;
        for k in sorted_keys(m) {
            for msg in validate_qualified_name(&k.to_lowercase()) {
                errs.push(invalid(p, bs(k), msg));
            }
            total += k.len() + scalar_string(&m[k]).len();
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            errs.push(too_long(p, TOTAL_ANNOTATION_SIZE_LIMIT));
        }
    }
    errs
}

fn is_standard_finalizer(name: &str) -> bool {
    matches!(name, "kubernetes" | "orphan" | "foregroundDeletion")
}

fn validate_kube_finalizer_name(name: &str, p: &Path) -> Vec<FieldError> {
    if !name.contains('/') && !is_standard_finalizer(name) {
        vec![invalid(
            p,
            bs(name),
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

fn validate_owner_references(refs: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller = String::new();
    for (i, r) in refs.iter().enumerate() {
        let rp = p.idx(i);
        let api_version = st(r, "apiVersion");
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => (Some(""), *v),
            [g, v] => (Some(*g), *v),
            _ => (None, ""),
        };
        if api_version.is_empty() {
            errs.push(required(&rp.ch("apiVersion"), "must not be empty"));
        } else if group.is_none() || version.is_empty() {
            errs.push(invalid(
                &rp.ch("apiVersion"),
                bs(api_version),
                "must be <group>/<version> or <version>",
            ));
        }
        if st(r, "kind").is_empty() {
            errs.push(required(&rp.ch("kind"), "must not be empty"));
        }
        if st(r, "name").is_empty() {
            errs.push(required(&rp.ch("name"), "must not be empty"));
        }
        if st(r, "uid").is_empty() {
            errs.push(required(&rp.ch("uid"), "must not be empty"));
        }
        if group == Some("") && version == "v1" && st(r, "kind") == "Event" {
            errs.push(invalid(
                &rp,
                bjo(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if boolean(r, "controller") == Some(true) {
            let current = format!("{}/{}", st(r, "kind"), st(r, "name"));
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                errs.push(invalid(
                    p,
                    Bv::Raw(go_json(&Value::Array(refs.to_vec()), false)),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"
                    ),
                ));
            }
        }
    }
    errs
}

fn validate_finalizers(finalizers: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut orphan = false;
    let mut foreground = false;
    for f in finalizers {
        let name = scalar_string(f);
        errs.extend(validate_qualified_name_at(&name, p));
        orphan |= name == "orphan";
        foreground |= name == "foregroundDeletion";
    }
    if orphan && foreground {
        errs.push(invalid(
            p,
            Bv::Raw(go_json(&Value::Array(finalizers.to_vec()), false)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// `ValidateObjectMeta` (core flavor, with the legacy finalizer name check).
fn validate_object_meta(
    object: &Value,
    requires_namespace: bool,
    name_fn: NameFn,
) -> Vec<FieldError> {
    let meta = at(object, "metadata");
    let p = Path::new("metadata");
    let mut errs = Vec::new();
    let generate_name = st(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(invalid(&p.ch("generateName"), bs(generate_name), msg));
        }
    }
    let name = st(meta, "name");
    if name.is_empty() {
        errs.push(required(&p.ch("name"), "name or generateName is required"));
    } else {
        for msg in name_fn(name, false) {
            errs.push(invalid(&p.ch("name"), bs(name), msg));
        }
    }
    let namespace = st(meta, "namespace");
    if requires_namespace {
        if namespace.is_empty() {
            errs.push(required(&p.ch("namespace"), ""));
        } else {
            for msg in name_is_dns_label(namespace, false) {
                errs.push(invalid(&p.ch("namespace"), bs(namespace), msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(forbidden(&p.ch("namespace"), "not allowed on this type"));
    }
    errs.extend(validate_meta_common(meta, &p));
    let finalizers = arr(meta, "finalizers");
    errs.extend(validate_finalizers(finalizers, &p.ch("finalizers")));
    for (i, f) in finalizers.iter().enumerate() {
        errs.extend(validate_kube_finalizer_name(
            &scalar_string(f),
            &p.ch("finalizers").idx(i),
        ));
    }
    errs
}

fn validate_meta_common(meta: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = int(meta, "generation") {
        errs.extend(validate_nonnegative(g, &p.ch("generation")));
    }
    errs.extend(validate_labels(at(meta, "labels"), &p.ch("labels")));
    errs.extend(validate_annotations(
        at(meta, "annotations"),
        &p.ch("annotations"),
    ));
    errs.extend(validate_owner_references(
        arr(meta, "ownerReferences"),
        &p.ch("ownerReferences"),
    ));
    errs
}

/// `ValidateObjectMetaUpdate`. System fields the server fills in (uid, timestamps, resourceVersion,
/// generation) are compared only when the new object carries them.
fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let nm = at(new, "metadata");
    let om = at(old, "metadata");
    let p = Path::new("metadata");
    let mut errs = Vec::new();
    if has(om, "deletionTimestamp") {
        let old_f: BTreeSet<String> = arr(om, "finalizers").iter().map(scalar_string).collect();
        let extra: BTreeSet<String> = arr(nm, "finalizers")
            .iter()
            .map(scalar_string)
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|s| go_quote(s)).collect();
            errs.push(forbidden(
                &p.ch("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    if let (Some(n), Some(o)) = (int(nm, "generation"), int(om, "generation")) {
        errs.extend(validate_nonnegative(n, &p.ch("generation")));
        if n < o {
            errs.push(invalid(
                &p.ch("generation"),
                bn(n),
                "must not be decremented",
            ));
        }
    }
    for field in ["name", "namespace"] {
        let (n, o) = (st(nm, field), st(om, field));
        if n != o {
            errs.push(invalid(&p.ch(field), bs(n), IMMUTABLE));
        }
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        if has(nm, field) && !sem_eq(at(nm, field), at(om, field)) {
            errs.push(invalid(&p.ch(field), value_bv(at(nm, field)), IMMUTABLE));
        }
    }
    errs.extend(validate_labels(at(nm, "labels"), &p.ch("labels")));
    errs.extend(validate_annotations(
        at(nm, "annotations"),
        &p.ch("annotations"),
    ));
    errs.extend(validate_owner_references(
        arr(nm, "ownerReferences"),
        &p.ch("ownerReferences"),
    ));
    for (i, f) in arr(nm, "finalizers").iter().enumerate() {
        errs.extend(validate_kube_finalizer_name(
            &scalar_string(f),
            &p.ch("finalizers").idx(i),
        ));
    }
    errs
}

/// A parsed label selector (`labels.Selector`).
enum Selector {
    /// A nil selector: matches nothing and is not empty.
    Nothing,
    /// Requirements (empty = everything).
    Reqs(Vec<Requirement>),
}

struct Requirement {
    key: String,
    op: String,
    values: Vec<String>,
}

impl Selector {
    fn is_empty(&self) -> bool {
        matches!(self, Selector::Reqs(r) if r.is_empty())
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Reqs(reqs) => reqs.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.op.as_str() {
                    "In" | "=" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            }),
        }
    }
}

/// `metav1.LabelSelectorAsSelector`; `Err` when the selector cannot be converted.
fn label_selector_as_selector(sel: &Value) -> Result<Selector, ()> {
    if sel.is_null() {
        return Ok(Selector::Nothing);
    }
    let labels = string_map(at(sel, "matchLabels"));
    let exprs = arr(sel, "matchExpressions");
    let mut reqs = Vec::new();
    for (k, v) in &labels {
        if !validate_qualified_name(k).is_empty() || !validate_label_value(v).is_empty() {
            return Err(());
        }
        reqs.push(Requirement {
            key: k.clone(),
            op: "=".into(),
            values: vec![v.clone()],
        });
    }
    for e in exprs {
        let op = st(e, "operator");
        let values: Vec<String> = arr(e, "values").iter().map(scalar_string).collect();
        match op {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" | "DoesNotExist" => {}
            _ => return Err(()),
        }
        let key = st(e, "key");
        if !validate_qualified_name(key).is_empty()
            || values.iter().any(|v| !validate_label_value(v).is_empty())
        {
            return Err(());
        }
        reqs.push(Requirement {
            key: key.to_string(),
            op: op.to_string(),
            values,
        });
    }
    Ok(Selector::Reqs(reqs))
}

/// `ValidateLabelSelector` (strict label values).
fn validate_label_selector(sel: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if sel.is_null() {
        return errs;
    }
    errs.extend(validate_labels(
        at(sel, "matchLabels"),
        &p.ch("matchLabels"),
    ));
    for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
        let ep = p.ch("matchExpressions").idx(i);
        let values = arr(e, "values");
        match st(e, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &ep.ch("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &ep.ch("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(invalid(
                &ep.ch("operator"),
                bs(other),
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_qualified_name_at(st(e, "key"), &ep.ch("key")));
        for (j, v) in values.iter().enumerate() {
            let v = scalar_string(v);
            for msg in validate_label_value(&v) {
                errs.push(invalid(&ep.ch("values").idx(j), bs(&v), msg));
            }
        }
    }
    errs
}

/// Renders a `*metav1.LabelSelector` as `json.Marshal` does (struct field order, omitempty).
fn selector_json(sel: &Value) -> String {
    if sel.is_null() {
        return "null".to_string();
    }
    let mut out = Map::new();
    if let Some(m) = obj(sel, "matchLabels").filter(|m| !m.is_empty()) {
        out.insert("matchLabels".into(), Value::Object(m.clone()));
    }
    let exprs = arr(sel, "matchExpressions");
    if !exprs.is_empty() {
        let list: Vec<Value> = exprs
            .iter()
            .map(|e| {
                let mut r = Map::new();
                r.insert("key".into(), Value::String(st(e, "key").to_string()));
                r.insert(
                    "operator".into(),
                    Value::String(st(e, "operator").to_string()),
                );
                let vals = arr(e, "values");
                if !vals.is_empty() {
                    r.insert("values".into(), Value::Array(vals.to_vec()));
                }
                Value::Object(r)
            })
            .collect();
        out.insert("matchExpressions".into(), Value::Array(list));
    }
    // matchLabels is a map (sorted keys); the struct keeps its field order.
    let mut s = String::from("{");
    let mut first = true;
    for (k, v) in &out {
        if !first {
            s.push(',');
        }
        first = false;
        super::gojson::write_str(k, &mut s);
        s.push(':');
        super::gojson::write_value(v, k == "matchLabels", &mut s);
    }
    s.push('}');
    s
}

fn selector_bv(sel: &Value) -> Bv {
    Bv::Raw(selector_json(sel))
}

/// The labels of a template as `json.Marshal` prints a `map[string]string` (`null` when nil).
fn labels_bv(labels: &Value) -> Bv {
    if labels.is_null() {
        Bv::Raw("null".into())
    } else {
        bj(labels)
    }
}

// ---------------------------------------------------------------------------
// Pod specs (pkg/apis/core/validation)
// ---------------------------------------------------------------------------

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const MAX_INT32: i64 = i32::MAX as i64;

struct PodOpts {
    /// The spec belongs to a Pod (not a template).
    is_pod: bool,
    /// The pod name, for generic ephemeral volume claim names.
    pod_name: String,
}

/// (JSON key, path segment used in the "more than 1 volume type" error) in Kubernetes' order.
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

fn validate_path_no_backsteps(target: &str, p: &Path) -> Vec<FieldError> {
    if target.split('/').any(|s| s == "..") {
        vec![invalid(p, bs(target), "must not contain '..'")]
    } else {
        Vec::new()
    }
}

fn validate_local_descending_path(target: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(invalid(p, bs(target), "must be a relative path"));
    }
    errs.extend(validate_path_no_backsteps(target, p));
    errs
}

fn validate_local_non_reserved_path(target: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_local_descending_path(target, p);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(invalid(p, bs(target), "must not start with '..'"));
    }
    errs
}

fn validate_file_mode(v: &Value, k: &str, p: &Path) -> Vec<FieldError> {
    match int(v, k) {
        Some(m) if !(0..=0o777).contains(&m) => vec![invalid(&p.ch(k), bn(m), FILE_MODE_ERR)],
        _ => Vec::new(),
    }
}

fn validate_key_to_path(kp: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if st(kp, "key").is_empty() {
        errs.push(required(&p.ch("key"), ""));
    }
    let path = st(kp, "path");
    if path.is_empty() {
        errs.push(required(&p.ch("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(path, &p.ch("path")));
    errs.extend(validate_file_mode(kp, "mode", p));
    errs
}

fn require_fields(src: &Value, p: &Path, fields: &[&str]) -> Vec<FieldError> {
    fields
        .iter()
        .filter(|f| is_blank(at(src, f)))
        .map(|f| required(&p.ch(f), ""))
        .collect()
}

/// `ConvertDownwardAPIFieldLabel` + `validateObjectFieldSelector`.
fn validate_object_field_selector(fs: &Value, expressions: &[&str], p: &Path) -> Vec<FieldError> {
    let api_version = st(fs, "apiVersion");
    let field_path = st(fs, "fieldPath");
    if api_version.is_empty() {
        return vec![required(&p.ch("apiVersion"), "")];
    }
    if field_path.is_empty() {
        return vec![required(&p.ch("fieldPath"), "")];
    }
    let convert_err = |m: String| {
        vec![invalid(
            &p.ch("fieldPath"),
            bs(field_path),
            format!("error converting fieldPath: {m}"),
        )]
    };
    if api_version != "v1" {
        return convert_err(format!("unsupported pod version: {api_version}"));
    }
    let subscripted = field_path
        .strip_suffix("']")
        .and_then(|s| s.split_once("['"))
        .filter(|(a, _)| !a.is_empty());
    if let Some((path, subscript)) = subscripted {
        return match path {
            "metadata.annotations" => validate_qualified_name_at(&subscript.to_lowercase(), p),
            "metadata.labels" => validate_qualified_name_at(subscript, p),
            _ => convert_err(format!(
                "field label does not support subscript: {field_path}"
            )),
        };
    }
    let internal = match field_path {
        "spec.host" => "spec.nodeName",
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => field_path,
        _ => return convert_err(format!("field label not supported: {field_path}")),
    };
    if !expressions.contains(&internal) {
        return vec![not_supported(&p.ch("fieldPath"), bs(internal), expressions)];
    }
    Vec::new()
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_resource_field_selector(fs: &Value, p: &Path, volume: bool) -> Vec<FieldError> {
    let resource = st(fs, "resource");
    if volume && st(fs, "containerName").is_empty() {
        vec![required(&p.ch("containerName"), "")]
    } else if resource.is_empty() {
        vec![required(&p.ch("resource"), "")]
    } else if !RESOURCE_FIELD_PATHS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        vec![not_supported(
            &p.ch("resource"),
            bs(resource),
            RESOURCE_FIELD_PATHS,
        )]
    } else {
        Vec::new()
    }
}

fn validate_downward_api_file(file: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = st(file, "path");
    if path.is_empty() {
        errs.push(required(&p.ch("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(path, &p.ch("path")));
    if has(file, "fieldRef") {
        errs.extend(validate_object_field_selector(
            at(file, "fieldRef"),
            VOLUME_FIELD_PATHS,
            &p.ch("fieldRef"),
        ));
        if has(file, "resourceFieldRef") {
            errs.push(invalid(
                p,
                bs("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if has(file, "resourceFieldRef") {
        errs.extend(validate_resource_field_selector(
            at(file, "resourceFieldRef"),
            &p.ch("resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(validate_file_mode(file, "mode", p));
    errs
}

fn validate_projected_sources(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut paths = HashSet::new();
    for (i, s) in arr(src, "sources").iter().enumerate() {
        let sp = p.ch("sources").idx(i);
        let mut n = 0;
        for kind in ["secret", "configMap"] {
            if has(s, kind) {
                n += 1;
                let x = at(s, kind);
                let kp = sp.ch(kind);
                if st(x, "name").is_empty() {
                    errs.push(required(&kp.ch("name"), ""));
                }
                for (j, item) in arr(x, "items").iter().enumerate() {
                    errs.extend(validate_key_to_path(item, &kp.ch("items").idx(j)));
                    let ip = st(item, "path");
                    if !ip.is_empty() && !paths.insert(ip.to_string()) {
                        errs.push(invalid(p, bs(st(x, "name")), "conflicting duplicate paths"));
                    }
                }
            }
        }
        if has(s, "downwardAPI") {
            n += 1;
            for item in arr(at(s, "downwardAPI"), "items") {
                errs.extend(validate_downward_api_file(item, &sp.ch("downwardAPI")));
                let ip = st(item, "path");
                if !ip.is_empty() && !paths.insert(ip.to_string()) {
                    errs.push(invalid(p, bs(ip), "conflicting duplicate paths"));
                }
            }
        }
        if has(s, "serviceAccountToken") {
            n += 1;
            let t = at(s, "serviceAccountToken");
            let tp = sp.ch("serviceAccountToken");
            let exp = int0(t, "expirationSeconds");
            if exp < 600 {
                errs.push(invalid(
                    &tp.ch("expirationSeconds"),
                    bn(exp),
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(invalid(
                    &tp.ch("expirationSeconds"),
                    bn(exp),
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if st(t, "path").is_empty() {
                errs.push(required(&p.ch("path"), ""));
            } else {
                errs.extend(validate_local_non_reserved_path(
                    st(t, "path"),
                    &p.ch("path"),
                ));
            }
        }
        if has(s, "clusterTrustBundle") {
            n += 1;
            let c = at(s, "clusterTrustBundle");
            let cp = sp.ch("clusterTrustBundle");
            if st(c, "path").is_empty() {
                errs.push(required(&cp.ch("path"), ""));
            }
            errs.extend(validate_local_non_reserved_path(
                st(c, "path"),
                &cp.ch("path"),
            ));
        }
        if has(s, "podCertificate") {
            n += 1;
        }
        if n > 1 {
            errs.push(forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

fn validate_volume_source_kind(
    key: &str,
    src: &Value,
    p: &Path,
    vol_name: &str,
    opts: &PodOpts,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match key {
        "emptyDir" => {
            if let Some(limit) = src.get("sizeLimit").filter(|v| !v.is_null())
                && quantity_of(limit).is_ok_and(|q| q.sign() < 0)
            {
                errs.push(forbidden(
                    &p.ch("sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            let path = st(src, "path");
            if path.is_empty() {
                return vec![required(&p.ch("path"), "")];
            }
            errs.extend(validate_path_no_backsteps(path, &p.ch("path")));
            if let Some(t) = src.get("type").and_then(Value::as_str) {
                const TYPES: &[&str] = &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ];
                if !TYPES.contains(&t) {
                    errs.push(not_supported(&p.ch("type"), bs(t), TYPES));
                }
            }
        }
        "gitRepo" => {
            errs.extend(require_fields(src, p, &["repository"]));
            errs.extend(validate_local_descending_path(
                st(src, "directory"),
                &p.ch("directory"),
            ));
        }
        "gcePersistentDisk" | "awsElasticBlockStore" => {
            errs.extend(require_fields(
                src,
                p,
                &[if key == "gcePersistentDisk" {
                    "pdName"
                } else {
                    "volumeID"
                }],
            ));
            let part = int0(src, "partition");
            if !(0..=255).contains(&part) {
                errs.push(invalid(
                    &p.ch("partition"),
                    bn(part),
                    inclusive_range_error(1, 255),
                ));
            }
        }
        "secret" | "configMap" => {
            let name_key = if key == "secret" {
                "secretName"
            } else {
                "name"
            };
            if st(src, name_key).is_empty() {
                errs.push(required(&p.ch(name_key), ""));
            }
            errs.extend(validate_file_mode(src, "defaultMode", p));
            for (i, item) in arr(src, "items").iter().enumerate() {
                errs.extend(validate_key_to_path(item, &p.ch("items").idx(i)));
            }
        }
        "nfs" => {
            errs.extend(require_fields(src, p, &["server", "path"]));
            let path = st(src, "path");
            if !path.starts_with('/') {
                errs.push(invalid(&p.ch("path"), bs(path), "must be an absolute path"));
            }
        }
        "iscsi" => {
            errs.extend(require_fields(src, p, &["targetPortal", "iqn"]));
            let iqn = st(src, "iqn");
            if !iqn.is_empty() && !["iqn", "eui", "naa"].iter().any(|pre| iqn.starts_with(pre)) {
                errs.push(invalid(
                    &p.ch("iqn"),
                    bs(iqn),
                    "must be valid format starting with iqn, eui, or naa",
                ));
            }
            let lun = int0(src, "lun");
            if !(0..=255).contains(&lun) {
                errs.push(invalid(
                    &p.ch("lun"),
                    bn(lun),
                    inclusive_range_error(0, 255),
                ));
            }
            let chap = boolean(src, "chapAuthDiscovery") == Some(true)
                || boolean(src, "chapAuthSession") == Some(true);
            if chap && !has(src, "secretRef") {
                errs.push(required(&p.ch("secretRef"), ""));
            }
        }
        "glusterfs" => errs.extend(require_fields(src, p, &["endpoints", "path"])),
        "flocker" => {
            let (name, uuid) = (st(src, "datasetName"), st(src, "datasetUUID"));
            if name.is_empty() && uuid.is_empty() {
                errs.push(required(
                    p,
                    "one of datasetName and datasetUUID is required",
                ));
            }
            if !name.is_empty() && !uuid.is_empty() {
                errs.push(invalid(
                    p,
                    bs("resource"),
                    "datasetName and datasetUUID can not be specified simultaneously",
                ));
            }
            if name.contains('/') {
                errs.push(invalid(
                    &p.ch("datasetName"),
                    bs(name),
                    "must not contain '/'",
                ));
            }
        }
        "persistentVolumeClaim" => errs.extend(require_fields(src, p, &["claimName"])),
        "rbd" => errs.extend(require_fields(src, p, &["monitors", "image"])),
        "cinder" => {
            errs.extend(require_fields(src, p, &["volumeID"]));
            if has(src, "secretRef") && st(at(src, "secretRef"), "name").is_empty() {
                errs.push(required(&p.ch("secretRef").ch("name"), ""));
            }
        }
        "cephfs" => errs.extend(require_fields(src, p, &["monitors"])),
        "quobyte" => {
            if st(src, "registry").is_empty() {
                errs.push(required(
                    &p.ch("registry"),
                    "must be a host:port pair or multiple pairs separated by commas",
                ));
            }
            errs.extend(require_fields(src, p, &["volume"]));
        }
        "downwardAPI" => {
            errs.extend(validate_file_mode(src, "defaultMode", p));
            for item in arr(src, "items") {
                errs.extend(validate_downward_api_file(item, p));
            }
        }
        "fc" => {
            let wwns = arr(src, "targetWWNs");
            let wwids = arr(src, "wwids");
            if wwns.is_empty() && wwids.is_empty() {
                errs.push(required(
                    &p.ch("targetWWNs"),
                    "must specify either targetWWNs or wwids, but not both",
                ));
            }
            if !wwns.is_empty() && !wwids.is_empty() {
                errs.push(invalid(
                    &p.ch("targetWWNs"),
                    bj(at(src, "targetWWNs")),
                    "targetWWNs and wwids can not be specified simultaneously",
                ));
            }
            if !wwns.is_empty() {
                match int(src, "lun") {
                    None => errs.push(required(
                        &p.ch("lun"),
                        "lun is required if targetWWNs is specified",
                    )),
                    Some(l) if !(0..=255).contains(&l) => {
                        errs.push(invalid(&p.ch("lun"), bn(l), inclusive_range_error(0, 255)))
                    }
                    _ => {}
                }
            }
        }
        "flexVolume" => errs.extend(require_fields(src, p, &["driver"])),
        "azureFile" => errs.extend(require_fields(src, p, &["secretName", "shareName"])),
        "vsphereVolume" => errs.extend(require_fields(src, p, &["volumePath"])),
        "photonPersistentDisk" => errs.extend(require_fields(src, p, &["pdID"])),
        "portworxVolume" => errs.extend(require_fields(src, p, &["volumeID"])),
        "azureDisk" => errs.extend(require_fields(src, p, &["diskName", "diskURI"])),
        "storageos" => errs.extend(require_fields(src, p, &["volumeName"])),
        "scaleIO" => errs.extend(require_fields(src, p, &["gateway", "system", "volumeName"])),
        "projected" => {
            errs.extend(validate_file_mode(src, "defaultMode", p));
            errs.extend(validate_projected_sources(src, p));
        }
        "csi" => {
            let driver = st(src, "driver");
            let dp = p.ch("driver");
            if driver.is_empty() {
                errs.push(required(&dp, ""));
            }
            if driver.len() > 63 {
                errs.push(too_long(&dp, 63));
            }
            for m in is_dns1123_subdomain(&driver.to_lowercase()) {
                errs.push(invalid(&dp, bs(driver), m));
            }
            if let Some(secret) = src.get("nodePublishSecretRef").filter(|v| !v.is_null()) {
                let name = st(secret, "name");
                let np = p.ch("nodePublishSecretRef").ch("name");
                if name.is_empty() {
                    errs.push(required(&np, ""));
                } else {
                    for m in is_dns1123_subdomain(name) {
                        errs.push(invalid(&np, bs(name), m));
                    }
                }
            }
        }
        "ephemeral" => {
            let tmpl = at(src, "volumeClaimTemplate");
            if tmpl.is_null() {
                errs.push(required(&p.ch("volumeClaimTemplate"), ""));
            } else {
                let tp = p.ch("volumeClaimTemplate");
                let meta = at(tmpl, "metadata");
                errs.extend(validate_labels(
                    at(meta, "labels"),
                    &tp.ch("metadata").ch("labels"),
                ));
                errs.extend(validate_annotations(
                    at(meta, "annotations"),
                    &tp.ch("metadata").ch("annotations"),
                ));
                errs.extend(validate_pvc_spec(at(tmpl, "spec"), &tp.ch("spec")));
            }
            if opts.is_pod && !opts.pod_name.is_empty() && !vol_name.is_empty() {
                let pvc = format!("{}-{}", opts.pod_name, vol_name);
                for m in is_dns1123_subdomain(&pvc) {
                    errs.push(invalid(
                        &p.ch("name"),
                        bs(vol_name),
                        format!("PVC name {}: {m}", go_quote(&pvc)),
                    ));
                }
            }
        }
        "image" => {
            if opts.is_pod && st(src, "reference").is_empty() {
                errs.push(required(&p.ch("reference"), ""));
            }
            errs.extend(validate_pull_policy(
                st(src, "pullPolicy"),
                &p.ch("pullPolicy"),
            ));
        }
        _ => {}
    }
    errs
}

fn validate_volume_source(
    vol: &Value,
    p: &Path,
    vol_name: &str,
    opts: &PodOpts,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    for (key, segment) in VOLUME_SOURCES {
        if !has(vol, key) {
            continue;
        }
        if n > 0 {
            errs.push(forbidden(
                &p.ch(segment),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        n += 1;
        let inner = match *key {
            "gcePersistentDisk" => "persistentDisk",
            k => k,
        };
        errs.extend(validate_volume_source_kind(
            key,
            at(vol, key),
            &p.ch(inner),
            vol_name,
            opts,
        ));
    }
    if n == 0 {
        errs.push(required(p, "must specify a volume type"));
    }
    errs
}

/// `ValidateVolumes`: returns the valid volumes by name.
fn validate_volumes<'a>(
    vols: &'a [Value],
    opts: &PodOpts,
    p: &Path,
    errs: &mut Vec<FieldError>,
) -> HashMap<String, &'a Value> {
    let mut names = HashMap::new();
    let created: HashSet<String> = if opts.is_pod && !opts.pod_name.is_empty() {
        vols.iter()
            .filter(|v| has(v, "ephemeral"))
            .map(|v| format!("{}-{}", opts.pod_name, st(v, "name")))
            .collect()
    } else {
        HashSet::new()
    };
    for (i, vol) in vols.iter().enumerate() {
        let vp = p.idx(i);
        let name = st(vol, "name");
        let mut el = validate_volume_source(vol, &vp, name, opts);
        if name.is_empty() {
            el.push(required(&vp.ch("name"), ""));
        } else {
            el.extend(validate_dns1123_label_at(name, &vp.ch("name")));
        }
        if names.contains_key(name) {
            el.push(duplicate(&vp.ch("name"), bs(name)));
        }
        if el.is_empty() {
            names.insert(name.to_string(), vol);
        } else {
            errs.extend(el);
        }
        let claim = st(at(vol, "persistentVolumeClaim"), "claimName");
        if has(vol, "persistentVolumeClaim") && created.contains(claim) {
            errs.push(invalid(
                &vp.ch("persistentVolumeClaim").ch("claimName"),
                bs(claim),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    names
}

fn validate_pull_policy(policy: &str, p: &Path) -> Vec<FieldError> {
    match policy {
        "Always" | "IfNotPresent" | "Never" => Vec::new(),
        "" => vec![required(p, "")],
        other => vec![not_supported(
            p,
            bs(other),
            &["Always", "IfNotPresent", "Never"],
        )],
    }
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_container_ports(ports: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = p.idx(i);
        let name = st(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(invalid(&pp.ch("name"), bs(name), m));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(duplicate(&pp.ch("name"), bs(name)));
            }
        }
        let cp = int0(port, "containerPort");
        if cp == 0 {
            errs.push(required(&pp.ch("containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(invalid(&pp.ch("containerPort"), bn(cp), m));
            }
        }
        let hp = int0(port, "hostPort");
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(invalid(&pp.ch("hostPort"), bn(hp), m));
            }
        }
        let proto = st(port, "protocol");
        if proto.is_empty() {
            errs.push(required(&pp.ch("protocol"), ""));
        } else if !PROTOCOLS.contains(&proto) {
            errs.push(not_supported(&pp.ch("protocol"), bs(proto), PROTOCOLS));
        }
    }
    errs
}

fn validate_env(env: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in env.iter().enumerate() {
        let ep = p.idx(i);
        let name = st(ev, "name");
        if name.is_empty() {
            errs.push(required(&ep.ch("name"), ""));
        } else {
            for m in is_relaxed_env_var_name(name) {
                errs.push(invalid(&ep.ch("name"), bs(name), m));
            }
        }
        let vf = at(ev, "valueFrom");
        if vf.is_null() {
            continue;
        }
        let vp = ep.ch("valueFrom");
        let mut n = 0;
        if has(vf, "fieldRef") {
            n += 1;
            errs.extend(validate_object_field_selector(
                at(vf, "fieldRef"),
                ENV_FIELD_PATHS,
                &vp.ch("fieldRef"),
            ));
        }
        if has(vf, "resourceFieldRef") {
            n += 1;
            errs.extend(validate_resource_field_selector(
                at(vf, "resourceFieldRef"),
                &vp.ch("resourceFieldRef"),
                false,
            ));
        }
        for kind in ["configMapKeyRef", "secretKeyRef"] {
            if has(vf, kind) {
                n += 1;
                let sel = at(vf, kind);
                let sp = vp.ch(kind);
                let name = st(sel, "name");
                for m in name_is_dns_subdomain(name, false) {
                    errs.push(invalid(&sp.ch("name"), bs(name), m));
                }
                let key = st(sel, "key");
                if key.is_empty() {
                    errs.push(required(&sp.ch("key"), ""));
                } else {
                    for m in is_config_map_key(key) {
                        errs.push(invalid(&sp.ch("key"), bs(key), m));
                    }
                }
            }
        }
        if has(vf, "fileKeyRef") {
            n += 1;
        }
        if n == 0 {
            errs.push(invalid(&vp, bs(""), "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !st(ev, "value").is_empty() {
            errs.push(invalid(
                &vp,
                bs(""),
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(invalid(
                &vp,
                bs(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_from(env_from: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in env_from.iter().enumerate() {
        let ep = p.idx(i);
        let prefix = st(ev, "prefix");
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(invalid(&ep.ch("prefix"), bs(prefix), m));
            }
        }
        let mut n = 0;
        for kind in ["configMapRef", "secretRef"] {
            if has(ev, kind) {
                n += 1;
                let name = st(at(ev, kind), "name");
                let np = ep.ch(kind).ch("name");
                if name.is_empty() {
                    errs.push(required(&np, ""));
                } else {
                    for m in name_is_dns_subdomain(name, true) {
                        errs.push(invalid(&np, bs(name), m));
                    }
                }
            }
        }
        if n == 0 {
            errs.push(invalid(
                p,
                bs(""),
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(invalid(
                p,
                bs(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    ctr: &Value,
    vols: &HashMap<String, &Value>,
    p: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let devices: HashMap<&str, &str> = arr(ctr, "volumeDevices")
        .iter()
        .map(|d| (st(d, "name"), st(d, "devicePath")))
        .collect();
    let mut mount_points = HashSet::new();
    for (i, m) in arr(ctr, "volumeMounts").iter().enumerate() {
        let mp = p.idx(i);
        let name = st(m, "name");
        let path = st(m, "mountPath");
        if name.is_empty() {
            errs.push(required(&mp.ch("name"), ""));
        }
        if !vols.contains_key(name) {
            errs.push(not_found(&mp.ch("name"), bs(name)));
        }
        if path.is_empty() {
            errs.push(required(&mp.ch("mountPath"), ""));
        }
        if !mount_points.insert(path.to_string()) {
            errs.push(invalid(&mp.ch("mountPath"), bs(path), "must be unique"));
        }
        if devices.contains_key(name) {
            errs.push(invalid(
                &mp.ch("name"),
                bs(name),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == path) {
            errs.push(invalid(
                &mp.ch("mountPath"),
                bs(path),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = st(m, "subPath");
        let sub_path_expr = st(m, "subPathExpr");
        if vols.get(name).is_some_and(|v| has(v, "image")) {
            if !sub_path.is_empty() {
                errs.push(invalid(
                    &mp.ch("subPath"),
                    bs(sub_path),
                    "not allowed in image volume sources",
                ));
            }
            if !sub_path_expr.is_empty() {
                errs.push(invalid(
                    &mp.ch("subPathExpr"),
                    bs(sub_path_expr),
                    "not allowed in image volume sources",
                ));
            }
        }
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(sub_path, &p.ch("subPath")));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(invalid(
                    &mp.ch("subPathExpr"),
                    bs(sub_path_expr),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_path_expr,
                &p.ch("subPathExpr"),
            ));
        }
        if let Some(prop) = m.get("mountPropagation").and_then(Value::as_str) {
            const PROPS: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !PROPS.contains(&prop) {
                errs.push(not_supported(&p.ch("mountPropagation"), bs(prop), PROPS));
            }
            let privileged = boolean(at(ctr, "securityContext"), "privileged") == Some(true);
            if prop == "Bidirectional" && !privileged {
                errs.push(forbidden(
                    &p.ch("mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = m.get("recursiveReadOnly").and_then(Value::as_str) {
            let rp = p.ch("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if boolean(m, "readOnly") != Some(true) {
                        errs.push(forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.get("mountPropagation")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x != "None")
                    {
                        errs.push(forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(not_supported(
                    &rp,
                    bs(other),
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

fn validate_volume_devices(
    ctr: &Value,
    vols: &HashMap<String, &Value>,
    p: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mounts: HashMap<&str, &str> = arr(ctr, "volumeMounts")
        .iter()
        .map(|m| (st(m, "name"), st(m, "mountPath")))
        .collect();
    let mut dev_paths = HashSet::new();
    let mut dev_names = HashSet::new();
    for (i, d) in arr(ctr, "volumeDevices").iter().enumerate() {
        let dp = p.idx(i);
        let name = st(d, "name");
        let path = st(d, "devicePath");
        let vol = vols.get(name);
        if name.is_empty() {
            errs.push(required(&dp.ch("name"), ""));
        }
        if dev_names.contains(name) {
            errs.push(invalid(&dp.ch("name"), bs(name), "must be unique"));
        }
        match vol {
            Some(v) if !(has(v, "persistentVolumeClaim") || has(v, "ephemeral")) => errs.push(invalid(
                &dp.ch("name"),
                bs(name),
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            None => errs.push(not_found(&dp.ch("name"), bs(name))),
            _ => {}
        }
        if path.is_empty() {
            errs.push(required(&dp.ch("devicePath"), ""));
        }
        if dev_paths.contains(path) {
            errs.push(invalid(&dp.ch("devicePath"), bs(path), "must be unique"));
        }
        if !path.is_empty() && path.split('/').any(|s| s == "..") {
            errs.push(invalid(
                &dp.ch("devicePath"),
                bs(path),
                "can not contain backsteps ('..')",
            ));
        } else {
            dev_paths.insert(path);
        }
        if mounts.contains_key(name) {
            errs.push(invalid(
                &dp.ch("name"),
                bs(name),
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == path) {
            errs.push(invalid(
                &dp.ch("devicePath"),
                bs(path),
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            dev_names.insert(name);
        }
    }
    errs
}

// Resource names (pkg/apis/core/helper).

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepage_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended_resource(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    validate_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepage_resource(name)
}

fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource(name)
}

fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name)
        || is_hugepage_resource(name)
        || name.starts_with("requests.hugepages-")
}

fn validate_resource_name(name: &str, p: &Path) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = validate_qualified_name_at(name, p);
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource_name(name) {
        errs.push(invalid(
            p,
            bs(name),
            "must be a standard resource type or fully qualified",
        ));
    }
    errs
}

fn validate_container_resource_name(name: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, p);
    if !name.contains('/') {
        if !(matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepage_resource(name)) {
            errs.push(invalid(
                p,
                bs(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(invalid(
            p,
            bs(name),
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

fn validate_resource_quantity_value(name: &str, q: &Quantity, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if q.sign() < 0 {
        errs.push(invalid(p, bs(&q.to_k8s_string()), NEGATIVE));
    }
    if is_integer_resource(name) && q.milli_value() % 1000 != 0 {
        errs.push(invalid(p, bs(&q.to_k8s_string()), "must be an integer"));
    }
    errs
}

fn hugepage_error(name: &str, q: &Quantity) -> Option<String> {
    let size = name.strip_prefix("hugepages-")?;
    let page = Quantity::parse(size).ok();
    let divisible = page.as_ref().is_some_and(|page| {
        let pv = page.scaled(0);
        page.sign() > 0 && page.milli_value() % 1000 == 0 && pv != 0 && q.scaled(0) % pv == 0
    });
    if divisible {
        None
    } else {
        Some(format!(
            "{} is not positive integer multiple of {name}",
            q.to_k8s_string()
        ))
    }
}

/// `ValidateContainerResourceRequirements` (and the pod-level variant).
fn validate_resource_requirements(
    res: &Value,
    claims: &HashSet<String>,
    p: &Path,
    pod_level: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = p.ch("limits");
    let req_path = p.ch("requests");
    let empty = Map::new();
    let limits = obj(res, "limits").unwrap_or(&empty);
    let requests = obj(res, "requests").unwrap_or(&empty);
    let (mut lim_cm, mut req_cm, mut lim_hp, mut req_hp) = (false, false, false, false);
    let name_check = |name: &str, fp: &Path| -> Vec<FieldError> {
        if pod_level {
            let mut e = validate_resource_name(name, fp);
            if e.is_empty() && !(matches!(name, "cpu" | "memory") || is_hugepage_resource(name)) {
                e.push(not_supported(fp, bs(name), &["cpu", "memory"]));
            }
            e
        } else {
            validate_container_resource_name(name, fp)
        }
    };
    for name in sorted_keys(limits) {
        let fp = lim_path.key(name);
        errs.extend(name_check(name, &fp));
        let q = match quantity_of(&limits[name]) {
            Ok(q) => q,
            Err(m) => {
                errs.push(invalid(&fp, value_bv(&limits[name]), m));
                continue;
            }
        };
        errs.extend(validate_resource_quantity_value(name, &q, &fp));
        if is_hugepage_resource(name) {
            lim_hp = true;
            if let Some(m) = hugepage_error(name, &q) {
                errs.push(invalid(&fp, bs(&q.to_k8s_string()), m));
            }
        }
        lim_cm |= matches!(name.as_str(), "cpu" | "memory");
    }
    for name in sorted_keys(requests) {
        let fp = req_path.key(name);
        errs.extend(name_check(name, &fp));
        let q = match quantity_of(&requests[name]) {
            Ok(q) => q,
            Err(m) => {
                errs.push(invalid(&fp, value_bv(&requests[name]), m));
                continue;
            }
        };
        errs.extend(validate_resource_quantity_value(name, &q, &fp));
        match limits.get(name.as_str()).map(quantity_of) {
            Some(Ok(limit)) => {
                if q.cmp(&limit) != Ordering::Equal && !is_overcommit_allowed(name) {
                    errs.push(invalid(
                        &req_path,
                        bs(&q.to_k8s_string()),
                        format!("must be equal to {name} limit of {}", limit.to_k8s_string()),
                    ));
                } else if q.cmp(&limit) == Ordering::Greater {
                    errs.push(invalid(
                        &req_path,
                        bs(&q.to_k8s_string()),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.to_k8s_string()
                        ),
                    ));
                }
            }
            Some(Err(_)) => {}
            None => {
                if !is_overcommit_allowed(name) {
                    errs.push(required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    ));
                }
            }
        }
        if is_hugepage_resource(name) {
            req_hp = true;
            if let Some(m) = hugepage_error(name, &q) {
                errs.push(invalid(&fp, bs(&q.to_k8s_string()), m));
            }
        }
        req_cm |= matches!(name.as_str(), "cpu" | "memory");
    }
    if !lim_cm && !req_cm && (req_hp || lim_hp) {
        errs.push(forbidden(p, "HugePages require cpu or memory"));
    }
    if pod_level {
        if has(res, "claims") {
            errs.push(forbidden(
                &p.ch("claims"),
                "claims cannot be set for Resources at pod-level",
            ));
        }
        return errs;
    }
    let mut seen = HashSet::new();
    for (i, c) in arr(res, "claims").iter().enumerate() {
        let cp = p.ch("claims").idx(i);
        let name = st(c, "name");
        if name.is_empty() {
            errs.push(required(&cp, ""));
            continue;
        }
        let request = st(c, "request");
        let key = if request.is_empty() {
            name.to_string()
        } else {
            format!("{name}/{request}")
        };
        if !request.is_empty() {
            errs.extend(validate_dns1123_label_at(request, &cp.ch("request")));
        }
        if !seen.insert(key.clone()) {
            errs.push(duplicate(&cp, bs(&key)));
        }
        if !claims.contains(name) {
            let mut e = not_found(&cp, bs(name));
            e.detail = if claims.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                let mut list: Vec<&String> = claims.iter().collect();
                list.sort();
                let list: Vec<&str> = list.into_iter().map(String::as_str).collect();
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    list.join(", ")
                )
            };
            errs.push(e);
        }
    }
    errs
}

fn validate_port_num_or_name(v: &Value, p: &Path) -> Vec<FieldError> {
    match v {
        Value::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|m| invalid(p, bs(s), m))
            .collect(),
        other => {
            let n = as_int(other).unwrap_or(0);
            is_valid_port_num(n)
                .into_iter()
                .map(|m| invalid(p, bn(n), m))
                .collect()
        }
    }
}

/// `validateHandler` for probes (`lifecycle` adds `sleep` and drops `grpc`).
fn validate_handler(h: &Value, grace: Option<i64>, p: &Path, lifecycle: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        if !has(h, kind) {
            continue;
        }
        let kp = p.ch(kind);
        if n > 0 {
            errs.push(forbidden(&kp, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        let x = at(h, kind);
        match *kind {
            "exec" if arr(x, "command").is_empty() => {
                errs.push(required(&kp.ch("command"), ""));
            }
            "httpGet" => {
                if st(x, "path").is_empty() {
                    errs.push(required(&kp.ch("path"), ""));
                }
                errs.extend(validate_port_num_or_name(at(x, "port"), &kp.ch("port")));
                let scheme = st(x, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(not_supported(
                        &kp.ch("scheme"),
                        bs(scheme),
                        &["HTTP", "HTTPS"],
                    ));
                }
                for hdr in arr(x, "httpHeaders") {
                    let name = st(hdr, "name");
                    for m in is_http_header_name(name) {
                        errs.push(invalid(&kp.ch("httpHeaders"), bs(name), m));
                    }
                }
            }
            "tcpSocket" => errs.extend(validate_port_num_or_name(at(x, "port"), &kp.ch("port"))),
            "grpc" => {
                let port = int0(x, "port");
                errs.extend(validate_port_num_or_name(
                    &Value::from(port),
                    &kp.ch("port"),
                ));
            }
            "sleep" => {
                let secs = int0(x, "seconds");
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(invalid(
                        &kp,
                        bn(secs),
                        format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(required(p, "must specify a handler type"));
    }
    errs
}

fn validate_lifecycle(lc: &Value, grace: Option<i64>, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        if has(lc, hook) {
            errs.extend(validate_handler(at(lc, hook), grace, &p.ch(hook), true));
        }
    }
    errs
}

/// `validateProbe` + the liveness/readiness/startup specifics.
fn validate_probe(probe: &Value, grace: Option<i64>, p: &Path, kind: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if probe.is_null() {
        return errs;
    }
    errs.extend(validate_handler(probe, grace, p, false));
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(validate_nonnegative(int0(probe, f), &p.ch(f)));
    }
    if let Some(t) = int(probe, "terminationGracePeriodSeconds")
        && t <= 0
    {
        errs.push(invalid(
            &p.ch("terminationGracePeriodSeconds"),
            bn(t),
            "must be greater than 0",
        ));
    }
    match kind {
        "readinessProbe" => {
            if let Some(t) = int(probe, "terminationGracePeriodSeconds") {
                errs.push(invalid(
                    &p.ch("terminationGracePeriodSeconds"),
                    bn(t),
                    "must not be set for readinessProbes",
                ));
            }
        }
        _ => {
            let s = int0(probe, "successThreshold");
            if s != 1 {
                errs.push(invalid(&p.ch("successThreshold"), bn(s), "must be 1"));
            }
        }
    }
    errs
}

fn validate_probes(ctr: &Value, grace: Option<i64>, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if has(ctr, "lifecycle") {
        errs.extend(validate_lifecycle(
            at(ctr, "lifecycle"),
            grace,
            &p.ch("lifecycle"),
        ));
    }
    for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
        errs.extend(validate_probe(at(ctr, kind), grace, &p.ch(kind), kind));
    }
    errs
}

fn validate_id_range(v: &Value, k: &str, p: &Path) -> Vec<FieldError> {
    match int(v, k) {
        Some(id) if !(0..=MAX_INT32).contains(&id) => vec![invalid(
            &p.ch(k),
            bn(id),
            inclusive_range_error(0, MAX_INT32),
        )],
        _ => Vec::new(),
    }
}

fn validate_seccomp_profile(sp: &Value, p: &Path) -> Vec<FieldError> {
    if sp.is_null() {
        return Vec::new();
    }
    match st(sp, "type") {
        "Localhost" => {
            if st(sp, "localhostProfile").is_empty() {
                vec![required(
                    &p.ch("localhostProfile"),
                    "must be set when seccomp type is Localhost",
                )]
            } else {
                Vec::new()
            }
        }
        "RuntimeDefault" | "Unconfined" => {
            if has(sp, "localhostProfile") {
                vec![invalid(
                    &p.ch("localhostProfile"),
                    bs(st(sp, "localhostProfile")),
                    "can only be set when seccomp type is Localhost",
                )]
            } else {
                Vec::new()
            }
        }
        "" => vec![required(
            &p.ch("type"),
            "type is required when seccompProfile is set",
        )],
        other => vec![not_supported(
            &p.ch("type"),
            bs(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )],
    }
}

fn validate_security_context(sc: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if sc.is_null() {
        return errs;
    }
    errs.extend(validate_id_range(sc, "runAsUser", p));
    errs.extend(validate_id_range(sc, "runAsGroup", p));
    if let Some(pm) = sc.get("procMount").and_then(Value::as_str)
        && !matches!(pm, "Default" | "Unmasked")
    {
        errs.push(not_supported(
            &p.ch("procMount"),
            bs(pm),
            &["Default", "Unmasked"],
        ));
    }
    errs.extend(validate_seccomp_profile(
        at(sc, "seccompProfile"),
        &p.ch("seccompProfile"),
    ));
    if boolean(sc, "allowPrivilegeEscalation") == Some(false) {
        if boolean(sc, "privileged") == Some(true) {
            errs.push(invalid(
                p,
                bjo(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if arr(at(sc, "capabilities"), "add")
            .iter()
            .any(|c| c.as_str() == Some("CAP_SYS_ADMIN"))
        {
            errs.push(invalid(
                p,
                bjo(sc),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs
}

/// `validateContainerCommon`.
fn validate_container_common(
    ctr: &Value,
    vols: &HashMap<String, &Value>,
    claims: &HashSet<String>,
    p: &Path,
    restart_policy: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = st(ctr, "name");
    if name.is_empty() {
        errs.push(required(&p.ch("name"), ""));
    } else {
        errs.extend(validate_dns1123_label_at(name, &p.ch("name")));
    }
    if st(ctr, "image").is_empty() {
        errs.push(required(&p.ch("image"), ""));
    }
    match st(ctr, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&p.ch("terminationMessagePolicy"), "")),
        other => errs.push(not_supported(
            &p.ch("terminationMessagePolicy"),
            bs(other),
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(arr(ctr, "ports"), &p.ch("ports")));
    errs.extend(validate_env(arr(ctr, "env"), &p.ch("env")));
    errs.extend(validate_env_from(arr(ctr, "envFrom"), &p.ch("envFrom")));
    errs.extend(validate_volume_mounts(ctr, vols, &p.ch("volumeMounts")));
    errs.extend(validate_volume_devices(ctr, vols, &p.ch("volumeDevices")));
    errs.extend(validate_pull_policy(
        st(ctr, "imagePullPolicy"),
        &p.ch("imagePullPolicy"),
    ));
    errs.extend(validate_resource_requirements(
        at(ctr, "resources"),
        claims,
        &p.ch("resources"),
        false,
    ));
    let rp = p.ch("resizePolicy");
    let mut seen = HashSet::new();
    for (i, pol) in arr(ctr, "resizePolicy").iter().enumerate() {
        let res = st(pol, "resourceName");
        if !seen.insert(res.to_string()) {
            errs.push(duplicate(&rp.idx(i), bs(res)));
        }
        match res {
            "cpu" | "memory" => {}
            "" => errs.push(required(&rp, "")),
            other => errs.push(not_supported(&rp, bs(other), &["cpu", "memory"])),
        }
        let policy = st(pol, "restartPolicy");
        match policy {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(required(&rp, "")),
            other => errs.push(not_supported(
                &rp,
                bs(other),
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_policy == "Never" && policy != "NotRequired" {
            errs.push(invalid(
                &rp,
                bs(policy),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs.extend(validate_security_context(
        at(ctr, "securityContext"),
        &p.ch("securityContext"),
    ));
    errs
}

fn check_host_port_conflicts(ctrs: &[&Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (ci, c) in ctrs.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = int0(port, "hostPort");
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", st(port, "protocol"), st(port, "hostIP"), hp);
            if !seen.insert(key.clone()) {
                errs.push(duplicate(
                    &p.idx(ci).ch("ports").idx(pi).ch("hostPort"),
                    bs(&key),
                ));
            }
        }
    }
    errs
}

fn validate_tolerations(tols: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tols.iter().enumerate() {
        let tp = p.idx(i);
        let key = st(t, "key");
        let op = st(t, "operator");
        let effect = st(t, "effect");
        let value = st(t, "value");
        if !key.is_empty() {
            errs.extend(validate_qualified_name_at(key, &tp.ch("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid(
                &tp.ch("operator"),
                bs(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if has(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(invalid(
                &tp.ch("effect"),
                bs(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = validate_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(&tp.ch("operator"), bs(value), msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &tp.ch("operator"),
                        bs(value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &tp.ch("operator"),
                bs(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported(
                &tp.ch("effect"),
                bs(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

fn validate_node_selector_term(term: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, r) in arr(term, "matchExpressions").iter().enumerate() {
        let rp = p.ch("matchExpressions").idx(j);
        let values = arr(r, "values");
        match st(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &rp.ch("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &rp.ch("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(required(
                        &rp.ch("values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                }
            }
            other => errs.push(invalid(
                &rp.ch("operator"),
                bs(other),
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_qualified_name_at(st(r, "key"), &rp.ch("key")));
        for (k, v) in values.iter().enumerate() {
            let v = scalar_string(v);
            for m in validate_label_value(&v) {
                errs.push(invalid(&rp.ch("values").idx(k), bs(&v), m));
            }
        }
    }
    for (j, r) in arr(term, "matchFields").iter().enumerate() {
        let rp = p.ch("matchFields").idx(j);
        let op = st(r, "operator");
        if st(r, "key") != "metadata.name" {
            errs.push(invalid(
                &rp.ch("key"),
                bs(st(r, "key")),
                "not a valid field selector key",
            ));
        }
        match op {
            "In" | "NotIn" => {
                if arr(r, "values").len() != 1 {
                    errs.push(required(
                        &rp.ch("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(invalid(
                &rp.ch("operator"),
                bs(other),
                "not a valid selector operator",
            )),
        }
    }
    errs
}

fn validate_pod_affinity_terms(terms: &[Value], weighted: bool, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        let (term, tp) = if weighted {
            let w = int0(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(invalid(
                    &p.idx(i).ch("weight"),
                    bn(w),
                    "must be in the range 1-100",
                ));
            }
            (at(t, "podAffinityTerm"), p.idx(i).ch("podAffinityTerm"))
        } else {
            (t, p.idx(i))
        };
        errs.extend(validate_label_selector(
            at(term, "labelSelector"),
            &tp.ch("labelSelector"),
        ));
        errs.extend(validate_label_selector(
            at(term, "namespaceSelector"),
            &tp.ch("namespaceSelector"),
        ));
        for ns in arr(term, "namespaces") {
            let ns = scalar_string(ns);
            for m in name_is_dns_label(&ns, false) {
                errs.push(invalid(&tp.ch("namespace"), bs(&ns), m));
            }
        }
        let key = st(term, "topologyKey");
        if key.is_empty() {
            errs.push(required(&tp.ch("topologyKey"), "can not be empty"));
        } else {
            errs.extend(validate_qualified_name_at(key, &tp.ch("topologyKey")));
        }
    }
    errs
}

fn validate_affinity(aff: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if aff.is_null() {
        return errs;
    }
    let na = at(aff, "nodeAffinity");
    if !na.is_null() {
        let np = p.ch("nodeAffinity");
        let req = at(na, "requiredDuringSchedulingIgnoredDuringExecution");
        if !req.is_null() {
            let rp = np
                .ch("requiredDuringSchedulingIgnoredDuringExecution")
                .ch("nodeSelectorTerms");
            let terms = arr(req, "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(required(&rp, "must have at least one node selector term"));
            }
            for (i, t) in terms.iter().enumerate() {
                errs.extend(validate_node_selector_term(t, &rp.idx(i)));
            }
        }
        for (i, t) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = np
                .ch("preferredDuringSchedulingIgnoredDuringExecution")
                .idx(i);
            let w = int0(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(invalid(
                    &tp.ch("weight"),
                    bn(w),
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                at(t, "preference"),
                &tp.ch("preference"),
            ));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let pa = at(aff, kind);
        if pa.is_null() {
            continue;
        }
        let pp = p.ch(kind);
        let req = "requiredDuringSchedulingIgnoredDuringExecution";
        let pref = "preferredDuringSchedulingIgnoredDuringExecution";
        errs.extend(validate_pod_affinity_terms(
            arr(pa, req),
            false,
            &pp.ch(req),
        ));
        errs.extend(validate_pod_affinity_terms(
            arr(pa, pref),
            true,
            &pp.ch(pref),
        ));
    }
    errs
}

fn validate_topology_spread(tscs: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in tscs.iter().enumerate() {
        let cp = p.idx(i);
        let skew = int0(c, "maxSkew");
        if skew <= 0 {
            errs.push(invalid(
                &cp.ch("maxSkew"),
                bn(skew),
                "must be greater than zero",
            ));
        }
        let key = st(c, "topologyKey");
        if key.is_empty() {
            errs.push(required(&cp.ch("topologyKey"), "can not be empty"));
        } else {
            errs.extend(validate_qualified_name_at(key, &cp.ch("topologyKey")));
        }
        let when = st(c, "whenUnsatisfiable");
        match when {
            "DoNotSchedule" | "ScheduleAnyway" => {}
            "" => errs.push(required(&cp.ch("whenUnsatisfiable"), "")),
            other => errs.push(not_supported(
                &cp.ch("whenUnsatisfiable"),
                bs(other),
                &["DoNotSchedule", "ScheduleAnyway"],
            )),
        }
        let repeated = tscs[i + 1..]
            .iter()
            .any(|o| st(o, "topologyKey") == key && st(o, "whenUnsatisfiable") == when);
        if repeated {
            errs.push(duplicate(
                &cp.ch("{topologyKey, whenUnsatisfiable}"),
                bs(&format!("{{{key}, {when}}}")),
            ));
        }
        if let Some(md) = int(c, "minDomains") {
            if md <= 0 {
                errs.push(invalid(
                    &cp.ch("minDomains"),
                    bn(md),
                    "must be greater than zero",
                ));
            } else if when != "DoNotSchedule" {
                errs.push(invalid(
                    &cp.ch("minDomains"),
                    bn(md),
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}"
                    ),
                ));
            }
        }
        for f in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = c.get(f).and_then(Value::as_str)
                && !matches!(v, "Honor" | "Ignore")
            {
                errs.push(not_supported(&cp.ch(f), bs(v), &["Honor", "Ignore"]));
            }
        }
        let sel = at(c, "labelSelector");
        errs.extend(validate_label_selector(sel, &cp.ch("labelSelector")));
        let keys = arr(c, "matchLabelKeys");
        if !keys.is_empty() && sel.is_null() {
            errs.push(forbidden(
                &cp.ch("matchLabelKeys"),
                "must not be specified when labelSelector is not set",
            ));
        }
        let sel_keys: HashSet<String> = string_map(at(sel, "matchLabels"))
            .into_keys()
            .chain(
                arr(sel, "matchExpressions")
                    .iter()
                    .map(|e| st(e, "key").to_string()),
            )
            .collect();
        for (j, k) in keys.iter().enumerate() {
            let k = scalar_string(k);
            let kp = cp.ch("matchLabelKeys").idx(j);
            errs.extend(validate_qualified_name_at(&k, &kp));
            if sel_keys.contains(&k) {
                errs.push(invalid(
                    &kp,
                    bs(&k),
                    "exists in both matchLabelKeys and labelSelector",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpec`.
fn validate_pod_spec(spec: &Value, p: &Path, opts: &PodOpts) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !has(spec, "terminationGracePeriodSeconds") {
        errs.push(required(&p.ch("terminationGracePeriodSeconds"), ""));
    }
    let grace = int(spec, "terminationGracePeriodSeconds");
    let restart = st(spec, "restartPolicy");

    let vols = validate_volumes(arr(spec, "volumes"), opts, &p.ch("volumes"), &mut errs);

    let claims: HashSet<String> = arr(spec, "resourceClaims")
        .iter()
        .map(|c| st(c, "name").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let mut claim_names = HashSet::new();
    for (i, c) in arr(spec, "resourceClaims").iter().enumerate() {
        let cp = p.ch("resourceClaims").idx(i);
        let name = st(c, "name");
        if name.is_empty() {
            errs.push(required(&cp.ch("name"), ""));
        } else if !claim_names.insert(name) {
            errs.push(duplicate(&cp.ch("name"), bs(name)));
        } else {
            errs.extend(validate_dns1123_label_at(name, &cp.ch("name")));
        }
        let (a, b) = (
            has(c, "resourceClaimName"),
            has(c, "resourceClaimTemplateName"),
        );
        if a && b {
            errs.push(invalid(&cp, bjo(c), "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified"));
        }
        if !a && !b {
            errs.push(invalid(
                &cp,
                bjo(c),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            ));
        }
    }

    // Regular containers.
    let cpath = p.ch("containers");
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        errs.push(required(&cpath, ""));
    } else {
        let mut names = HashSet::new();
        for (i, c) in containers.iter().enumerate() {
            let ip = cpath.idx(i);
            errs.extend(validate_container_common(c, &vols, &claims, &ip, restart));
            let name = st(c, "name");
            if !names.insert(name) {
                errs.push(duplicate(&ip.ch("name"), bs(name)));
            }
            errs.extend(validate_probes(c, grace, &ip));
            if has(c, "restartPolicy") {
                errs.push(forbidden(
                    &ip.ch("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        let refs: Vec<&Value> = containers.iter().collect();
        errs.extend(check_host_port_conflicts(&refs, &cpath));
    }

    // Init containers.
    let ipath = p.ch("initContainers");
    let mut all_names: HashSet<&str> = containers.iter().map(|c| st(c, "name")).collect();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let ip = ipath.idx(i);
        errs.extend(validate_container_common(c, &vols, &claims, &ip, restart));
        let mut restart_always = false;
        if let Some(rp) = c.get("restartPolicy").and_then(Value::as_str) {
            if rp != "Always" {
                errs.push(not_supported(&ip.ch("restartPolicy"), bs(rp), &["Always"]));
            }
            restart_always = rp == "Always";
        }
        let name = st(c, "name");
        if all_names.contains(name) {
            errs.push(duplicate(&ip.ch("name"), bs(name)));
        } else if !name.is_empty() {
            all_names.insert(name);
        }
        errs.extend(check_host_port_conflicts(&[c], &ipath));
        if restart_always {
            errs.extend(validate_probes(c, grace, &ip));
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if has(c, f) {
                    errs.push(forbidden(
                        &ip.ch(f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    // Ephemeral containers (only reachable through the ephemeralcontainers subresource).
    let epath = p.ch("ephemeralContainers");
    for (i, c) in arr(spec, "ephemeralContainers").iter().enumerate() {
        let ip = epath.idx(i);
        errs.extend(validate_container_common(c, &vols, &claims, &ip, restart));
        let name = st(c, "name");
        if !all_names.insert(name) {
            errs.push(duplicate(&ip.ch("name"), bs(name)));
        }
        for f in [
            "ports",
            "resources",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ] {
            if !is_blank(at(c, f)) {
                errs.push(forbidden(
                    &ip.ch(f),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }

    if has(spec, "resources") {
        errs.extend(validate_resource_requirements(
            at(spec, "resources"),
            &claims,
            &p.ch("resources"),
            true,
        ));
    }

    // Host network: container ports must use the same host port.
    if boolean(spec, "hostNetwork") == Some(true) {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (int0(port, "hostPort"), int0(port, "containerPort"));
                if (opts.is_pod || hp != 0) && hp != cp {
                    errs.push(invalid(
                        &cpath.idx(i).ch("ports").idx(j).ch("hostPort"),
                        bn(hp),
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }

    match restart {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&p.ch("restartPolicy"), "")),
        other => errs.push(not_supported(
            &p.ch("restartPolicy"),
            bs(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = st(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&p.ch("dnsPolicy"), "")),
        other => errs.push(not_supported(
            &p.ch("dnsPolicy"),
            bs(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(validate_labels(
        at(spec, "nodeSelector"),
        &p.ch("nodeSelector"),
    ));

    let sc = at(spec, "securityContext");
    if !sc.is_null() {
        let sp = p.ch("securityContext");
        errs.extend(validate_id_range(sc, "fsGroup", &sp));
        errs.extend(validate_id_range(sc, "runAsUser", &sp));
        errs.extend(validate_id_range(sc, "runAsGroup", &sp));
        for (g, gid) in arr(sc, "supplementalGroups").iter().enumerate() {
            let id = as_int(gid).unwrap_or(0);
            if !(0..=MAX_INT32).contains(&id) {
                errs.push(invalid(
                    &sp.ch("supplementalGroups").idx(g),
                    bn(id),
                    inclusive_range_error(0, MAX_INT32),
                ));
            }
        }
        let mut sysctl_names = HashSet::new();
        for (i, s) in arr(sc, "sysctls").iter().enumerate() {
            let np = sp.ch("sysctls").idx(i).ch("name");
            let name = st(s, "name");
            let valid = name.len() <= 253
                && !name.is_empty()
                && name.split(['.', '/']).all(|seg| {
                    let b = seg.as_bytes();
                    !b.is_empty()
                        && is_lower_alnum(b[0])
                        && is_lower_alnum(b[b.len() - 1])
                        && b.iter()
                            .all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
                });
            if name.is_empty() {
                errs.push(required(&np, ""));
            } else if !valid {
                errs.push(invalid(
                    &np,
                    bs(name),
                    "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
                ));
            } else if !sysctl_names.insert(name) {
                errs.push(duplicate(&np, bs(name)));
            }
        }
        if let Some(pol) = sc.get("fsGroupChangePolicy").and_then(Value::as_str)
            && !matches!(pol, "OnRootMismatch" | "Always")
        {
            errs.push(not_supported(
                &sp.ch("fsGroupChangePolicy"),
                bs(pol),
                &["Always", "OnRootMismatch"],
            ));
        }
        errs.extend(validate_seccomp_profile(
            at(sc, "seccompProfile"),
            &sp.ch("seccompProfile"),
        ));
        if let Some(pol) = sc.get("supplementalGroupsPolicy").and_then(Value::as_str)
            && !matches!(pol, "Merge" | "Strict")
        {
            errs.push(not_supported(
                &sp.ch("supplementalGroupsPolicy"),
                bs(pol),
                &["Merge", "Strict"],
            ));
        }
        if let Some(pol) = sc.get("seLinuxChangePolicy").and_then(Value::as_str)
            && !matches!(pol, "MountOption" | "Recursive")
        {
            errs.push(not_supported(
                &sp.ch("seLinuxChangePolicy"),
                bs(pol),
                &["MountOption", "Recursive"],
            ));
        }
    }
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            errs.push(invalid(
                &p.ch("imagePullSecrets").idx(i),
                bjo(s),
                "only name may be set",
            ));
        }
    }
    errs.extend(validate_affinity(at(spec, "affinity"), &p.ch("affinity")));

    let dns = at(spec, "dnsConfig");
    let dp = p.ch("dnsConfig");
    if dns_policy == "None" && dns.is_null() {
        errs.push(required(
            &dp,
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    } else if dns_policy == "None" && arr(dns, "nameservers").is_empty() {
        errs.push(required(
            &dp.ch("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    } else if !dns.is_null() {
        let ns = arr(dns, "nameservers");
        if ns.len() > 3 {
            errs.push(invalid(
                &dp.ch("nameservers"),
                bj(at(dns, "nameservers")),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, n) in ns.iter().enumerate() {
            errs.extend(validate_ip(&dp.ch("nameservers").idx(i), &scalar_string(n)));
        }
        let searches = arr(dns, "searches");
        if searches.len() > 32 {
            errs.push(invalid(
                &dp.ch("searches"),
                bj(at(dns, "searches")),
                "must not have more than 32 search paths",
            ));
        }
        let joined: Vec<String> = searches.iter().map(scalar_string).collect();
        if joined.join(" ").len() > 2048 {
            errs.push(invalid(
                &dp.ch("searches"),
                bj(at(dns, "searches")),
                "must not have more than 2048 characters (including spaces) in the search list",
            ));
        }
        for (i, s) in joined.iter().enumerate() {
            if s == "." {
                continue;
            }
            let s = s.strip_suffix('.').unwrap_or(s);
            let ok = !s.is_empty()
                && s.split('.').all(|l| {
                    let l = l.strip_prefix('_').unwrap_or(l);
                    let b = l.as_bytes();
                    !b.is_empty()
                        && is_lower_alnum(b[0])
                        && is_lower_alnum(b[b.len() - 1])
                        && b.iter()
                            .all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
                });
            if !ok || s.len() > 253 {
                errs.push(invalid(
                    &dp.ch("searches").idx(i),
                    bs(s),
                    regex_error(
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                        "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
                        &["example.com"],
                    ),
                ));
            }
        }
        for (i, o) in arr(dns, "options").iter().enumerate() {
            if st(o, "name").is_empty() {
                errs.push(required(&dp.ch("options").idx(i), "must not be empty"));
            }
        }
    }
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        errs.extend(validate_qualified_name_at(
            st(g, "conditionType"),
            &p.ch("readinessGates").idx(i).ch("conditionType"),
        ));
    }
    let mut gates = HashSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let gp = p.ch("schedulingGates").idx(i);
        let name = st(g, "name");
        errs.extend(validate_qualified_name_at(name, &gp));
        if !gates.insert(name) {
            errs.push(duplicate(&gp, bs(name)));
        }
    }
    errs.extend(validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &p.ch("topologySpreadConstraints"),
    ));

    for (field, f) in [
        ("serviceAccountName", name_is_dns_subdomain as NameFn),
        ("nodeName", name_is_dns_subdomain),
    ] {
        let v = st(spec, field);
        if !v.is_empty() {
            for m in f(v, false) {
                errs.push(invalid(&p.ch(field), bs(v), m));
            }
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds")
        && !(1..=MAX_INT32).contains(&ads)
    {
        errs.push(invalid(
            &p.ch("activeDeadlineSeconds"),
            bn(ads),
            inclusive_range_error(1, MAX_INT32),
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = st(spec, field);
        if !v.is_empty() {
            errs.extend(validate_dns1123_label_at(v, &p.ch(field)));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &p.ch("tolerations"),
    ));
    for (i, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let hp = p.ch("hostAliases").idx(i);
        errs.extend(validate_ip(&hp.ch("ip"), st(ha, "ip")));
        for (j, h) in arr(ha, "hostnames").iter().enumerate() {
            errs.extend(validate_dns1123_subdomain_at(
                &scalar_string(h),
                &hp.ch("hostnames").idx(j),
            ));
        }
    }
    for field in ["priorityClassName", "runtimeClassName"] {
        let v = st(spec, field);
        if has(spec, field) && (field == "runtimeClassName" || !v.is_empty()) {
            errs.extend(validate_dns1123_subdomain_at(v, &p.ch(field)));
        }
    }
    if let Some(pp) = spec.get("preemptionPolicy").filter(|v| !v.is_null()) {
        match pp.as_str().unwrap_or("") {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(required(&p.ch("preemptionPolicy"), "")),
            other => errs.push(not_supported(
                &p.ch("preemptionPolicy"),
                bs(other),
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(overhead) = spec.get("overhead").filter(|v| v.is_object()) {
        let wrapped = serde_json::json!({ "limits": overhead });
        errs.extend(validate_resource_requirements(
            &wrapped,
            &HashSet::new(),
            &p.ch("overhead"),
            false,
        ));
    }
    if has(spec, "os") {
        let name = st(at(spec, "os"), "name");
        match name {
            "linux" | "windows" => {}
            "" => errs.push(required(&p.ch("os").ch("name"), "cannot be empty")),
            other => errs.push(not_supported(&p.ch("os"), bs(other), &["linux", "windows"])),
        }
    }
    errs
}

/// `ValidatePodTemplateSpec`.
fn validate_pod_template_spec(tmpl: &Value, p: &Path) -> Vec<FieldError> {
    let meta = at(tmpl, "metadata");
    let mut errs = validate_labels(at(meta, "labels"), &p.ch("labels"));
    errs.extend(validate_annotations(
        at(meta, "annotations"),
        &p.ch("annotations"),
    ));
    let spec = at(tmpl, "spec");
    errs.extend(validate_pod_spec(
        spec,
        &p.ch("spec"),
        &PodOpts {
            is_pod: false,
            pod_name: String::new(),
        },
    ));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &p.ch("spec").ch("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

fn pod_opts(pod: &Value) -> PodOpts {
    PodOpts {
        is_pod: true,
        pod_name: st(at(pod, "metadata"), "name").to_string(),
    }
}

/// `validatePodMetadataAndSpec`.
fn validate_pod_metadata_and_spec(pod: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(pod, requires_namespace, name_is_dns_subdomain);
    let spec = at(pod, "spec");
    let sp = Path::new("spec");
    let annotations = at(at(pod, "metadata"), "annotations");
    if let Some(v) = annotations.get("kubernetes.io/config.mirror")
        && st(spec, "nodeName").is_empty()
    {
        errs.push(invalid(
            &Path::new("metadata.annotations").key("kubernetes.io/config.mirror"),
            bs(&scalar_string(v)),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = annotations.get("controller.kubernetes.io/pod-deletion-cost") {
        let s = scalar_string(v);
        let first_ok =
            s == "0" || s.starts_with('-') || s.starts_with(|c: char| ('1'..='9').contains(&c));
        if !first_ok || s.parse::<i32>().is_err() {
            errs.push(invalid(
                &Path::new("metadata.annotations")
                    .key("controller.kubernetes.io/pod-deletion-cost"),
                bs(&s),
                "must be a 32bit integer",
            ));
        }
    }
    errs.extend(validate_pod_spec(spec, &sp, &pod_opts(pod)));
    if st(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            for (si, src) in arr(at(vol, "projected"), "sources").iter().enumerate() {
                if has(src, "serviceAccountToken") {
                    errs.push(forbidden(
                        &sp.ch("volumes")
                            .idx(vi)
                            .ch("projected")
                            .ch("sources")
                            .idx(si)
                            .ch("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for kind in ["containers", "initContainers"] {
        for (i, c) in arr(spec, kind).iter().enumerate() {
            let image = st(c, "image");
            if image.trim() != image {
                errs.push(invalid(
                    &sp.ch(kind).idx(i).ch("image"),
                    bs(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

fn validate_pod_create(pod: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_pod_metadata_and_spec(pod, requires_namespace);
    let spec = at(pod, "spec");
    let sp = Path::new("spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &sp.ch("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !st(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(forbidden(
            &sp.ch("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A short description of what differs between two specs, in the spirit of `cmp.Diff`.
fn spec_diff(old: &Value, new: &Value, type_name: &str) -> String {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        if sem_eq(a, b) {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &child,
                        x.get(k).unwrap_or(&NULL),
                        y.get(k).unwrap_or(&NULL),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), p, q, out);
                }
            }
            _ => {
                out.push(format!("- \t{path}: {}", go_json(a, false)));
                out.push(format!("+ \t{path}: {}", go_json(b, false)));
            }
        }
    }
    let mut lines = Vec::new();
    walk("", old, new, &mut lines);
    format!("  {type_name}{{\n{}\n  }}\n", lines.join("\n"))
}

fn validate_pod_update(new: &Value, old: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    errs.extend(validate_pod_metadata_and_spec(new, requires_namespace));
    let sp = Path::new("spec");
    let ns = at(new, "spec");
    let os = at(old, "spec");

    // Mirror pod annotation may not change.
    let na = at(at(new, "metadata"), "annotations");
    let oa = at(at(old, "metadata"), "annotations");
    let mirror = "kubernetes.io/config.mirror";
    if has(oa, mirror) && at(na, mirror) != at(oa, mirror) {
        errs.push(forbidden(
            &Path::new("metadata.annotations").key(mirror),
            "may not remove or update mirror pod annotation",
        ));
    } else if !has(oa, mirror) && has(na, mirror) {
        errs.push(forbidden(
            &Path::new("metadata.annotations").key(mirror),
            "may not add mirror pod annotation",
        ));
    }

    for kind in ["containers", "initContainers"] {
        let (nc, oc) = (arr(ns, kind), arr(os, kind));
        if nc.len() != oc.len() {
            errs.push(forbidden(
                &sp.ch(kind),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = st(c, "image");
            if image.is_empty() {
                errs.push(required(&sp.ch(kind).idx(i).ch("image"), ""));
            }
            if image.trim() != image {
                errs.push(invalid(
                    &sp.ch(kind).idx(i).ch("image"),
                    bs(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let ads_path = sp.ch("activeDeadlineSeconds");
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(invalid(
                    &ads_path,
                    bn(n),
                    inclusive_range_error(0, MAX_INT32),
                ));
                return errs;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(invalid(
                    &ads_path,
                    bn(n),
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(invalid(
            &ads_path,
            Bv::Raw("null".into()),
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    // Tolerations: only additions (tolerationSeconds of existing ones may change).
    let new_tols = arr(ns, "tolerations");
    for old_t in arr(os, "tolerations") {
        let strip = |t: &Value| {
            let mut t = t.clone();
            if let Some(m) = t.as_object_mut() {
                m.remove("tolerationSeconds");
            }
            t
        };
        let o = strip(old_t);
        if !new_tols.iter().any(|n| sem_eq(&strip(n), &o)) {
            errs.push(forbidden(
                &sp.ch("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Scheduling gates: only deletions.
    let old_gates: HashSet<&str> = arr(os, "schedulingGates")
        .iter()
        .map(|g| st(g, "name"))
        .collect();
    let new_gates = arr(ns, "schedulingGates");
    let mut added: Vec<(usize, &str)> = Vec::new();
    for (i, g) in new_gates.iter().enumerate() {
        let name = st(g, "name");
        if !old_gates.contains(name) {
            added.retain(|(_, n)| *n != name);
            added.push((i, name));
        }
    }
    for (i, name) in added {
        errs.push(forbidden(
            &sp.ch("schedulingGates").idx(i).ch("name"),
            &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
        ));
    }

    if sem_eq(ns, os) {
        return errs;
    }
    let mut munged = ns.clone();
    for kind in ["containers", "initContainers"] {
        if let Some(list) = munged.get_mut(kind).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                if let Some(m) = c.as_object_mut() {
                    match arr(os, kind)[i].get("image") {
                        Some(img) => m.insert("image".into(), img.clone()),
                        None => m.remove("image"),
                    };
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = int(os, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0) && int(ns, "terminationGracePeriodSeconds") == Some(1) {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                os["terminationGracePeriodSeconds"].clone(),
            );
        }
        if !arr(os, "schedulingGates").is_empty() {
            // Gated pods may add node selectors and node affinity.
            let old_sel = string_map(at(os, "nodeSelector"));
            let new_sel = string_map(at(ns, "nodeSelector"));
            if old_sel != new_sel {
                if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                    errs.push(invalid(
                        &sp.ch("nodeSelector"),
                        bj(at(ns, "nodeSelector")),
                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                    ));
                }
                match os.get("nodeSelector") {
                    Some(v) => m.insert("nodeSelector".into(), v.clone()),
                    None => m.remove("nodeSelector"),
                };
            }
            let old_na = at(at(os, "affinity"), "nodeAffinity").clone();
            if !sem_eq(at(at(ns, "affinity"), "nodeAffinity"), &old_na) {
                let aff = m
                    .entry("affinity")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(a) = aff.as_object_mut() {
                    if old_na.is_null() {
                        a.remove("nodeAffinity");
                    } else {
                        a.insert("nodeAffinity".into(), old_na);
                    }
                }
            }
        }
    }
    if !sem_eq(&munged, os) {
        let diff = spec_diff(os, &munged, "core.PodSpec");
        errs.push(forbidden(
            &sp,
            &format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{diff}"
            ),
        ));
    }
    errs
}

// ---------------------------------------------------------------------------
// Workload controllers (apps, batch, ReplicationController, PodTemplate)
// ---------------------------------------------------------------------------

fn template_labels(tmpl: &Value) -> BTreeMap<String, String> {
    string_map(at(at(tmpl, "metadata"), "labels"))
}

fn template_labels_bv(tmpl: &Value) -> Bv {
    labels_bv(at(at(tmpl, "metadata"), "labels"))
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet.
fn validate_required_selector(spec: &Value, p: &Path, empty_msg: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sel = at(spec, "selector");
    if sel.is_null() {
        errs.push(required(&p.ch("selector"), ""));
    } else {
        errs.extend(validate_label_selector(sel, &p.ch("selector")));
        if obj(sel, "matchLabels").is_none_or(Map::is_empty)
            && arr(sel, "matchExpressions").is_empty()
        {
            errs.push(invalid(&p.ch("selector"), selector_bv(sel), empty_msg));
        }
    }
    errs
}

/// `intstr.IntOrString` as Go's JSON prints it.
fn int_or_string_bv(v: &Value) -> Bv {
    match v {
        Value::String(s) => Bv::Raw(go_json(&Value::String(s.clone()), false)),
        other => bn(as_int(other).unwrap_or(0)),
    }
}

fn percent_value(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    if !is_valid_percent(s).is_empty() {
        return None;
    }
    s[..s.len() - 1].parse().ok()
}

fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(_) => percent_value(v).unwrap_or(0),
        other => as_int(other).unwrap_or(0),
    }
}

fn validate_positive_int_or_percent(v: &Value, p: &Path) -> Vec<FieldError> {
    match v {
        Value::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|m| invalid(p, int_or_string_bv(v), m))
            .collect(),
        other => validate_nonnegative(as_int(other).unwrap_or(0), p),
    }
}

fn is_not_more_than_100_percent(v: &Value, p: &Path) -> Vec<FieldError> {
    match percent_value(v) {
        Some(x) if x > 100 => vec![invalid(
            p,
            int_or_string_bv(v),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (used by Deployments and ReplicaSets).
fn validate_template_for_replica_set(
    spec: &Value,
    sel: &Result<Selector, ()>,
    p: &Path,
    owner: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let tmpl = at(spec, "template");
    let Ok(selector) = sel else { return errs };
    if !selector.is_empty() && !selector.matches(&template_labels(tmpl)) {
        errs.push(invalid(
            &p.ch("metadata").ch("labels"),
            template_labels_bv(tmpl),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(tmpl, p));
    let restart = st(at(tmpl, "spec"), "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &p.ch("spec").ch("restartPolicy"),
            bs(restart),
            &["Always"],
        ));
    }
    if has(at(tmpl, "spec"), "activeDeadlineSeconds") {
        errs.push(forbidden(
            &p.ch("spec").ch("activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
    errs
}

fn rolling_update_deployment_bv(ru: &Value) -> Value {
    let mut m = Map::new();
    m.insert("MaxUnavailable".into(), at(ru, "maxUnavailable").clone());
    m.insert("MaxSurge".into(), at(ru, "maxSurge").clone());
    Value::Object(m)
}

/// Internal `{Type, RollingUpdate}` strategy structs as `json.Marshal` prints them.
fn strategy_bv(strategy: &Value, rolling: Option<Value>) -> Bv {
    let mut m = Map::new();
    m.insert(
        "Type".into(),
        Value::String(st(strategy, "type").to_string()),
    );
    m.insert("RollingUpdate".into(), rolling.unwrap_or(Value::Null));
    Bv::Raw(go_json(&Value::Object(m), false))
}

fn validate_deployment_spec(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_nonnegative(
        int0(spec, "replicas"),
        &p.ch("replicas"),
    ));
    errs.extend(validate_required_selector(
        spec,
        p,
        "empty selector is invalid for deployment",
    ));
    let sel = label_selector_as_selector(at(spec, "selector"));
    if sel.is_err() {
        errs.push(invalid(
            &p.ch("selector"),
            selector_bv(at(spec, "selector")),
            "invalid label selector",
        ));
    }
    errs.extend(validate_template_for_replica_set(
        spec,
        &sel,
        &p.ch("template"),
        "ReplicaSet",
    ));

    let strategy = at(spec, "strategy");
    let sp = p.ch("strategy");
    let ru = at(strategy, "rollingUpdate");
    match st(strategy, "type") {
        "Recreate" => {
            if !ru.is_null() {
                errs.push(forbidden(
                    &sp.ch("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            if ru.is_null() {
                errs.push(required(
                    &sp.ch("rollingUpdate"),
                    "this should be defaulted and never be nil",
                ));
            } else {
                let rp = sp.ch("rollingUpdate");
                let mu = at(ru, "maxUnavailable");
                let ms = at(ru, "maxSurge");
                errs.extend(validate_positive_int_or_percent(
                    mu,
                    &rp.ch("maxUnavailable"),
                ));
                errs.extend(validate_positive_int_or_percent(ms, &rp.ch("maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(invalid(
                        &rp.ch("maxUnavailable"),
                        int_or_string_bv(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(is_not_more_than_100_percent(mu, &rp.ch("maxUnavailable")));
            }
        }
        _ => {
            let rolling = (!ru.is_null()).then(|| rolling_update_deployment_bv(ru));
            errs.push(not_supported(
                &sp,
                strategy_bv(strategy, rolling),
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    let min_ready = int0(spec, "minReadySeconds");
    errs.extend(validate_nonnegative(min_ready, &p.ch("minReadySeconds")));
    if let Some(r) = int(spec, "revisionHistoryLimit") {
        errs.extend(validate_nonnegative(r, &p.ch("revisionHistoryLimit")));
    }
    if has(spec, "rollbackTo") {
        errs.extend(validate_nonnegative(
            int0(at(spec, "rollbackTo"), "revision"),
            &p.ch("rollback").ch("version"),
        ));
    }
    if let Some(pd) = int(spec, "progressDeadlineSeconds") {
        errs.extend(validate_nonnegative(pd, &p.ch("progressDeadlineSeconds")));
        if pd <= min_ready {
            errs.push(invalid(
                &p.ch("progressDeadlineSeconds"),
                bn(pd),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_replica_set_spec(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_nonnegative(
        int0(spec, "replicas"),
        &p.ch("replicas"),
    ));
    errs.extend(validate_nonnegative(
        int0(spec, "minReadySeconds"),
        &p.ch("minReadySeconds"),
    ));
    errs.extend(validate_required_selector(
        spec,
        p,
        "empty selector is invalid for deployment",
    ));
    let sel = label_selector_as_selector(at(spec, "selector"));
    if sel.is_err() {
        errs.push(invalid(
            &p.ch("selector"),
            selector_bv(at(spec, "selector")),
            "invalid label selector",
        ));
    }
    errs.extend(validate_template_for_replica_set(
        spec,
        &sel,
        &p.ch("template"),
        "ReplicaSet",
    ));
    errs
}

fn validate_statefulset_spec(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match st(spec, "podManagementPolicy") {
        "" => errs.push(required(&p.ch("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            &p.ch("podManagementPolicy"),
            bs(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = at(spec, "updateStrategy");
    let ru = at(us, "rollingUpdate");
    let up = p.ch("updateStrategy");
    match st(us, "type") {
        "" => errs.push(required(&up, "")),
        "OnDelete" => {
            if !ru.is_null() {
                errs.push(invalid(
                    &up.ch("rollingUpdate"),
                    bjo(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if !ru.is_null() {
                let rp = up.ch("rollingUpdate");
                errs.extend(validate_nonnegative(
                    int0(ru, "partition"),
                    &rp.ch("partition"),
                ));
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let mp = rp.ch("maxUnavailable");
                    errs.extend(validate_positive_int_or_percent(mu, &mp));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(invalid(&mp, int_or_string_bv(mu), "cannot be 0"));
                    }
                    errs.extend(is_not_more_than_100_percent(mu, &mp));
                }
            }
        }
        _ => {
            let rolling = (!ru.is_null()).then(|| {
                let mut m = Map::new();
                m.insert("Partition".into(), Value::from(int0(ru, "partition")));
                m.insert("MaxUnavailable".into(), at(ru, "maxUnavailable").clone());
                Value::Object(m)
            });
            errs.push(invalid(
                &up,
                strategy_bv(us, rolling),
                "must be 'RollingUpdate' or 'OnDelete'",
            ));
        }
    }
    let policy = at(spec, "persistentVolumeClaimRetentionPolicy");
    if !policy.is_null() {
        let pp = p.ch("persistentVolumeClaimRetentionPolicy");
        for f in ["whenDeleted", "whenScaled"] {
            let v = st(policy, f);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(not_supported(&pp.ch(f), bs(v), &["Retain", "Delete"]));
            }
        }
    }
    errs.extend(validate_nonnegative(
        int0(spec, "replicas"),
        &p.ch("replicas"),
    ));
    errs.extend(validate_nonnegative(
        int0(spec, "minReadySeconds"),
        &p.ch("minReadySeconds"),
    ));
    if has(spec, "ordinals") {
        errs.extend(validate_nonnegative(
            int0(at(spec, "ordinals"), "start"),
            &p.ch("ordinals.start"),
        ));
    }
    errs.extend(validate_required_selector(
        spec,
        p,
        "empty selector is invalid for statefulset",
    ));
    let tmpl = at(spec, "template");
    match label_selector_as_selector(at(spec, "selector")) {
        Err(()) => errs.push(invalid(
            &p.ch("selector"),
            selector_bv(at(spec, "selector")),
            "",
        )),
        Ok(selector) => {
            let tp = p.ch("template");
            if !selector.is_empty() && !selector.matches(&template_labels(tmpl)) {
                errs.push(invalid(
                    &tp.ch("metadata").ch("labels"),
                    template_labels_bv(tmpl),
                    "`selector` does not match template `labels`",
                ));
            }
            // Kubernetes validates only the template's labels and annotations for StatefulSets.
            let meta = at(tmpl, "metadata");
            errs.extend(validate_labels(at(meta, "labels"), &tp.ch("labels")));
            errs.extend(validate_annotations(
                at(meta, "annotations"),
                &tp.ch("annotations"),
            ));
        }
    }
    let restart = st(at(tmpl, "spec"), "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &p.ch("template").ch("spec").ch("restartPolicy"),
            bs(restart),
            &["Always"],
        ));
    }
    if has(at(tmpl, "spec"), "activeDeadlineSeconds") {
        errs.push(forbidden(
            &p.ch("template").ch("spec").ch("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

fn validate_daemonset_spec(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sel = at(spec, "selector");
    let tmpl = at(spec, "template");
    errs.extend(validate_label_selector(sel, &p.ch("selector")));
    if let Ok(selector) = label_selector_as_selector(sel)
        && !selector.matches(&template_labels(tmpl))
    {
        errs.push(invalid(
            &p.ch("template").ch("metadata").ch("labels"),
            template_labels_bv(tmpl),
            "`selector` does not match template `labels`",
        ));
    }
    if !sel.is_null()
        && obj(sel, "matchLabels").is_none_or(Map::is_empty)
        && arr(sel, "matchExpressions").is_empty()
    {
        errs.push(invalid(
            &p.ch("selector"),
            selector_bv(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(tmpl, &p.ch("template")));
    let restart = st(at(tmpl, "spec"), "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &p.ch("template").ch("spec").ch("restartPolicy"),
            bs(restart),
            &["Always"],
        ));
    }
    if has(at(tmpl, "spec"), "activeDeadlineSeconds") {
        errs.push(forbidden(
            &p.ch("template").ch("spec").ch("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(validate_nonnegative(
        int0(spec, "minReadySeconds"),
        &p.ch("minReadySeconds"),
    ));
    errs.extend(validate_nonnegative(
        int0(spec, "templateGeneration"),
        &p.ch("templateGeneration"),
    ));
    let us = at(spec, "updateStrategy");
    let up = p.ch("updateStrategy");
    let ru = at(us, "rollingUpdate");
    match st(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            if ru.is_null() {
                errs.push(required(&up.ch("rollingUpdate"), ""));
            } else {
                let rp = up.ch("rollingUpdate");
                let mu = at(ru, "maxUnavailable");
                let ms = at(ru, "maxSurge");
                errs.extend(validate_positive_int_or_percent(
                    mu,
                    &rp.ch("maxUnavailable"),
                ));
                errs.extend(validate_positive_int_or_percent(ms, &rp.ch("maxSurge")));
                errs.extend(is_not_more_than_100_percent(mu, &rp.ch("maxUnavailable")));
                errs.extend(is_not_more_than_100_percent(ms, &rp.ch("maxSurge")));
                let (has_u, has_s) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if has_u && has_s {
                    errs.push(invalid(
                        &rp.ch("maxSurge"),
                        int_or_string_bv(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_u && !has_s {
                    errs.push(required(
                        &rp.ch("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        }
        _ => {
            let rolling = (!ru.is_null()).then(|| rolling_update_deployment_bv(ru));
            errs.push(not_supported(
                &up,
                strategy_bv(us, rolling),
                &["RollingUpdate", "OnDelete"],
            ));
        }
    }
    if let Some(r) = int(spec, "revisionHistoryLimit") {
        errs.extend(validate_nonnegative(r, &p.ch("revisionHistoryLimit")));
    }
    errs
}

fn validate_selector_immutable(new: &Value, old: &Value) -> Vec<FieldError> {
    let (ns, os) = (
        at(at(new, "spec"), "selector"),
        at(at(old, "spec"), "selector"),
    );
    validate_immutable(ns, os, &Path::new("spec.selector"), selector_bv(ns))
}

fn validate_replication_controller(rc: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(rc, requires_namespace, name_is_dns_subdomain);
    errs.extend(validate_replication_controller_spec(at(rc, "spec")));
    errs
}

fn validate_replication_controller_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = validate_nonnegative(int0(spec, "minReadySeconds"), &p.ch("minReadySeconds"));
    let selector = string_map(at(spec, "selector"));
    if selector.is_empty() {
        errs.push(required(&p.ch("selector"), ""));
    }
    errs.extend(validate_nonnegative(
        int0(spec, "replicas"),
        &p.ch("replicas"),
    ));
    let tmpl = at(spec, "template");
    let tp = p.ch("template");
    if tmpl.is_null() {
        errs.push(required(&tp, ""));
        return errs;
    }
    let labels = template_labels(tmpl);
    if !selector.is_empty() && !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        errs.push(invalid(
            &tp.ch("metadata").ch("labels"),
            template_labels_bv(tmpl),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(tmpl, &tp));
    let restart = st(at(tmpl, "spec"), "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &tp.ch("spec").ch("restartPolicy"),
            bs(restart),
            &["Always"],
        ));
    }
    if has(at(tmpl, "spec"), "activeDeadlineSeconds") {
        errs.push(forbidden(
            &tp.ch("spec").ch("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

fn validate_controller_revision(cr: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(cr, requires_namespace, name_is_dns_subdomain);
    if at(cr, "data").is_null() {
        errs.push(required(&Path::new("data"), "data is mandatory"));
    }
    errs.extend(validate_nonnegative(
        int0(cr, "revision"),
        &Path::new("revision"),
    ));
    errs
}

// Jobs.

const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

fn validate_has_label(tmpl: &Value, key: &str, expected: &str) -> Vec<FieldError> {
    let labels = at(at(tmpl, "metadata"), "labels");
    let p = Path::new("spec.template.metadata.labels").key(key);
    match labels.get(key) {
        None => vec![required(&p, &format!("must be '{expected}'"))],
        Some(v) if scalar_string(v) != expected => {
            vec![invalid(&p, bj(labels), format!("must be '{expected}'"))]
        }
        _ => Vec::new(),
    }
}

/// `validateGeneratedSelector`.
fn validate_generated_selector(job: &Value, require_prefixed: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = at(job, "spec");
    if boolean(spec, "manualSelector") == Some(true) || at(spec, "selector").is_null() {
        return errs;
    }
    let meta = at(job, "metadata");
    let (uid, name) = (st(meta, "uid"), st(meta, "name"));
    if uid.is_empty() {
        errs.push(required(&Path::new("metadata.uid"), ""));
    }
    let tmpl = at(spec, "template");
    errs.extend(validate_has_label(tmpl, LEGACY_CONTROLLER_UID_LABEL, uid));
    errs.extend(validate_has_label(tmpl, LEGACY_JOB_NAME_LABEL, name));
    let mut expected = BTreeMap::new();
    if require_prefixed {
        errs.extend(validate_has_label(tmpl, CONTROLLER_UID_LABEL, uid));
        errs.extend(validate_has_label(tmpl, JOB_NAME_LABEL, name));
        expected.insert(CONTROLLER_UID_LABEL.to_string(), uid.to_string());
        expected.insert(JOB_NAME_LABEL.to_string(), name.to_string());
    }
    expected.insert(LEGACY_CONTROLLER_UID_LABEL.to_string(), uid.to_string());
    expected.insert(LEGACY_JOB_NAME_LABEL.to_string(), name.to_string());
    if let Ok(sel) = label_selector_as_selector(at(spec, "selector"))
        && !sel.matches(&expected)
    {
        errs.push(invalid(
            &Path::new("spec.selector"),
            selector_bv(at(spec, "selector")),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// `validateJobSpec` (shared by Jobs and CronJob job templates).
fn validate_job_spec_common(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        if let Some(v) = int(spec, f) {
            errs.extend(validate_nonnegative(v, &p.ch(f)));
        }
    }
    let max_failed = int(spec, "maxFailedIndexes");
    let per_index = int(spec, "backoffLimitPerIndex");
    if let Some(v) = max_failed {
        errs.extend(validate_nonnegative(v, &p.ch("maxFailedIndexes")));
        if per_index.is_none() {
            errs.push(required(
                &p.ch("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(mb) = spec.get("managedBy").and_then(Value::as_str) {
        let mp = p.ch("managedBy");
        match mb.split_once('/') {
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                for m in is_dns1123_subdomain(host) {
                    errs.push(invalid(&mp, bs(host), m));
                }
                let ok = path
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
                if !ok {
                    errs.push(invalid(
                        &mp,
                        bs(path),
                        regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
                    ));
                }
            }
            _ if mb.is_empty() => errs.push(required(&mp, "")),
            _ => errs.push(invalid(
                &mp,
                bs(mb),
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
        if mb.len() > 63 {
            errs.push(too_long(&mp, 63));
        }
    }
    let completions = int(spec, "completions");
    let parallelism = int(spec, "parallelism");
    let mode = spec.get("completionMode").and_then(Value::as_str);
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(not_supported(
                &p.ch("completionMode"),
                bs(mode),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if completions.is_none() {
                errs.push(required(
                    &p.ch("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(par) = parallelism.filter(|&x| x > 100_000) {
                errs.push(invalid(
                    &p.ch("parallelism"),
                    bn(par),
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed)
                && m > c
            {
                errs.push(invalid(
                    &p.ch("maxFailedIndexes"),
                    bn(m),
                    "must be less than or equal to completions",
                ));
            }
            if let Some(m) = max_failed.filter(|&m| m > 100_000) {
                errs.push(invalid(
                    &p.ch("maxFailedIndexes"),
                    bn(m),
                    "must be less than or equal to 100000",
                ));
            }
            if completions.is_some_and(|c| c > 100_000) && per_index.is_some() {
                if max_failed.is_none() {
                    errs.push(required(
                        &p.ch("maxFailedIndexes"),
                        "must be specified when completions is above 100000",
                    ));
                }
                if let Some(par) = parallelism.filter(|&x| x > 10_000) {
                    errs.push(invalid(
                        &p.ch("parallelism"),
                        bn(par),
                        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
                    ));
                }
                if let Some(m) = max_failed.filter(|&m| m > 10_000) {
                    errs.push(invalid(
                        &p.ch("maxFailedIndexes"),
                        bn(m),
                        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
                    ));
                }
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(v) = per_index {
            errs.push(invalid(
                &p.ch("backoffLimitPerIndex"),
                bn(v),
                "requires indexed completion mode",
            ));
        }
        if let Some(v) = max_failed {
            errs.push(invalid(
                &p.ch("maxFailedIndexes"),
                bn(v),
                "requires indexed completion mode",
            ));
        }
    }
    let pfp = at(spec, "podFailurePolicy");
    if !pfp.is_null() {
        errs.extend(validate_pod_failure_policy(
            spec,
            pfp,
            &p.ch("podFailurePolicy"),
        ));
    }
    if has(spec, "successPolicy") && mode != Some("Indexed") {
        errs.push(invalid(
            &p.ch("successPolicy"),
            bjo(at(spec, "successPolicy")),
            "requires indexed completion mode",
        ));
    }
    if let Some(rp) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        if !pfp.is_null() {
            if rp != "Failed" {
                errs.push(not_supported(
                    &p.ch("podReplacementPolicy"),
                    bs(rp),
                    &["Failed"],
                ));
            }
        } else if !matches!(rp, "Failed" | "TerminatingOrFailed") {
            errs.push(not_supported(
                &p.ch("podReplacementPolicy"),
                bs(rp),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tmpl = at(spec, "template");
    errs.extend(validate_pod_template_spec(tmpl, &p.ch("template")));
    let rp = p.ch("template").ch("spec").ch("restartPolicy");
    match st(at(tmpl, "spec"), "restartPolicy") {
        "Always" | "" => errs.push(required(&rp, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" | "Never" => {
            if !pfp.is_null() && st(at(tmpl, "spec"), "restartPolicy") != "Never" {
                errs.push(invalid(
                    &rp,
                    bs("OnFailure"),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(not_supported(&rp, bs(other), &["OnFailure", "Never"])),
    }
    errs
}

fn validate_pod_failure_policy(spec: &Value, pfp: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rules = arr(pfp, "rules");
    let rp = p.ch("rules");
    if rules.len() > 20 {
        errs.push(too_many(&rp, rules.len(), 20));
    }
    let tspec = at(at(spec, "template"), "spec");
    let names: HashSet<&str> = arr(tspec, "containers")
        .iter()
        .chain(arr(tspec, "initContainers"))
        .map(|c| st(c, "name"))
        .collect();
    const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
    for (i, rule) in rules.iter().enumerate() {
        let rulep = rp.idx(i);
        let action = st(rule, "action");
        if action.is_empty() {
            errs.push(required(
                &rulep.ch("action"),
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            ));
        } else if action == "FailIndex" {
            if !has(spec, "backoffLimitPerIndex") {
                errs.push(invalid(
                    &rulep.ch("action"),
                    bs(action),
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
        } else if !ACTIONS.contains(&action) {
            errs.push(not_supported(&rulep.ch("action"), bs(action), ACTIONS));
        }
        let on_exit = at(rule, "onExitCodes");
        let on_conds = arr(rule, "onPodConditions");
        if !on_exit.is_null() {
            let ep = rulep.ch("onExitCodes");
            let op = st(on_exit, "operator");
            if op.is_empty() {
                errs.push(required(
                    &ep.ch("operator"),
                    "valid values: [\"In\" \"NotIn\"]",
                ));
            } else if !matches!(op, "In" | "NotIn") {
                errs.push(not_supported(&ep.ch("operator"), bs(op), &["In", "NotIn"]));
            }
            if let Some(cn) = on_exit.get("containerName").and_then(Value::as_str)
                && !names.contains(cn)
            {
                errs.push(invalid(
                    &ep.ch("containerName"),
                    bs(cn),
                    "must be one of the container or initContainer names in the pod template",
                ));
            }
            let values: Vec<i64> = arr(on_exit, "values").iter().filter_map(as_int).collect();
            let vp = ep.ch("values");
            if values.is_empty() {
                errs.push(invalid(
                    &vp,
                    bj(at(on_exit, "values")),
                    "at least one value is required",
                ));
            } else if values.len() > 255 {
                errs.push(too_many(&vp, values.len(), 255));
            }
            let mut seen = HashSet::new();
            let mut ordered = true;
            for (j, v) in values.iter().enumerate() {
                if op == "In" && *v == 0 {
                    errs.push(invalid(
                        &vp.idx(j),
                        bn(*v),
                        "must not be 0 for the In operator",
                    ));
                }
                if !seen.insert(*v) {
                    errs.push(duplicate(&vp.idx(j), bn(*v)));
                }
                if j > 0 && values[j - 1] > *v {
                    ordered = false;
                }
            }
            if !ordered {
                errs.push(invalid(&vp, bj(at(on_exit, "values")), "must be ordered"));
            }
        }
        if !on_conds.is_empty() {
            let cp = rulep.ch("onPodConditions");
            if on_conds.len() > 20 {
                errs.push(too_many(&cp, on_conds.len(), 20));
            }
            for (j, c) in on_conds.iter().enumerate() {
                let pp = cp.idx(j);
                errs.extend(validate_qualified_name_at(st(c, "type"), &pp.ch("type")));
                match st(c, "status") {
                    "" => errs.push(required(
                        &pp.ch("status"),
                        "valid values: [\"False\" \"True\" \"Unknown\"]",
                    )),
                    "True" | "False" | "Unknown" => {}
                    other => errs.push(not_supported(
                        &pp.ch("status"),
                        bs(other),
                        &["False", "True", "Unknown"],
                    )),
                }
            }
        }
        if !on_exit.is_null() && !on_conds.is_empty() {
            errs.push(mk(
                ErrorKind::Invalid,
                &rulep,
                None,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if on_exit.is_null() && on_conds.is_empty() {
            errs.push(mk(
                ErrorKind::Invalid,
                &rulep,
                None,
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
    errs
}

/// `ValidateJobSpec`: the spec rules plus the selector checks.
fn validate_job_spec_full(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_job_spec_common(spec, p);
    let sel = at(spec, "selector");
    if sel.is_null() {
        errs.push(required(&p.ch("selector"), ""));
    } else {
        errs.extend(validate_label_selector(sel, &p.ch("selector")));
    }
    if let Ok(selector) = label_selector_as_selector(sel) {
        let tmpl = at(spec, "template");
        if !selector.matches(&template_labels(tmpl)) {
            errs.push(invalid(
                &p.ch("template").ch("metadata").ch("labels"),
                template_labels_bv(tmpl),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs
}

/// `ValidateJob`.
fn validate_job(job: &Value, requires_namespace: bool, require_prefixed: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(job, requires_namespace, name_is_dns_subdomain);
    errs.extend(validate_generated_selector(job, require_prefixed));
    let spec = at(job, "spec");
    errs.extend(validate_job_spec_full(spec, &Path::new("spec")));
    if st(spec, "completionMode") == "Indexed"
        && let Some(c) = int(spec, "completions").filter(|&c| c > 0)
    {
        let name = st(at(job, "metadata"), "name");
        let host = format!("{name}-{}", c - 1);
        if !is_dns1123_label(&host).is_empty() {
            errs.push(invalid(
                &Path::new("metadata.name"),
                bs(name),
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    errs
}

/// The job strategy's `ValidateUpdate`: `ValidateJob` followed by `ValidateJobUpdate`.
fn validate_job_update(new: &Value, old: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let ns = at(new, "spec");
    let os = at(old, "spec");
    let old_labels = at(at(at(os, "template"), "metadata"), "labels");
    let require_prefixed = has(old_labels, JOB_NAME_LABEL) && has(old_labels, CONTROLLER_UID_LABEL);
    let mut errs = validate_job(new, requires_namespace, require_prefixed);
    errs.extend(validate_object_meta_update(new, old));
    let p = Path::new("spec");
    errs.extend(validate_job_spec_full(ns, &p));
    // Completions: immutable, except for Indexed jobs scaled together with parallelism.
    let (nc, oc) = (at(ns, "completions"), at(os, "completions"));
    if !sem_eq(nc, oc) {
        if st(ns, "completionMode") != "Indexed" {
            errs.push(invalid(&p.ch("completions"), value_bv(nc), IMMUTABLE));
        } else if let Some(c) = as_int(nc)
            && Some(c) != int(ns, "parallelism")
        {
            errs.push(invalid(
                &p.ch("completions"),
                bn(c),
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    errs.extend(validate_immutable(
        at(ns, "selector"),
        at(os, "selector"),
        &p.ch("selector"),
        selector_bv(at(ns, "selector")),
    ));
    // The pod template is immutable, except scheduling directives of suspended jobs that never started.
    let mut old_tmpl = at(os, "template").clone();
    let new_tmpl = at(ns, "template");
    let suspended = boolean(os, "suspend") == Some(true);
    let not_started = !has(at(old, "status"), "startTime");
    if suspended && not_started {
        allow_scheduling_directive_changes(&mut old_tmpl, new_tmpl);
    }
    errs.extend(validate_immutable(
        new_tmpl,
        &old_tmpl,
        &p.ch("template"),
        bjo(new_tmpl),
    ));
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        errs.extend(validate_immutable(
            at(ns, f),
            at(os, f),
            &p.ch(f),
            value_bv(at(ns, f)),
        ));
    }
    errs
}

/// Copies the mutable scheduling directives of `new_tmpl` into `old_tmpl` (suspended jobs).
fn allow_scheduling_directive_changes(old_tmpl: &mut Value, new_tmpl: &Value) {
    let nt_spec = at(new_tmpl, "spec");
    let Some(ot) = old_tmpl.as_object_mut() else {
        return;
    };
    let meta = ot
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        for f in ["labels", "annotations"] {
            match at(at(new_tmpl, "metadata"), f) {
                Value::Null => m.remove(f),
                v => m.insert(f.into(), v.clone()),
            };
        }
    }
    let ospec = ot
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(s) = ospec.as_object_mut() else {
        return;
    };
    for f in ["nodeSelector", "tolerations", "schedulingGates"] {
        match at(nt_spec, f) {
            Value::Null => s.remove(f),
            v => s.insert(f.into(), v.clone()),
        };
    }
    let new_aff = at(nt_spec, "affinity");
    let mut old_aff = s.get("affinity").cloned().unwrap_or(Value::Null);
    match (new_aff.is_null(), old_aff.is_null()) {
        (true, false) => {
            if let Some(a) = old_aff.as_object_mut() {
                a.remove("nodeAffinity");
            }
            if old_aff.as_object().is_some_and(Map::is_empty) {
                old_aff = Value::Null;
            }
        }
        (false, true) => {
            let mut a = Map::new();
            if has(new_aff, "nodeAffinity") {
                a.insert("nodeAffinity".into(), at(new_aff, "nodeAffinity").clone());
            }
            old_aff = Value::Object(a);
        }
        (false, false) => {
            if let Some(a) = old_aff.as_object_mut() {
                match at(new_aff, "nodeAffinity") {
                    Value::Null => a.remove("nodeAffinity"),
                    v => a.insert("nodeAffinity".into(), v.clone()),
                };
            }
        }
        (true, true) => {}
    }
    if old_aff.is_null() {
        s.remove("affinity");
    } else {
        s.insert("affinity".into(), old_aff);
    }
}

/// `validateJobTemplateSpec` for CronJobs.
fn validate_job_template_spec(jt: &Value, p: &Path) -> Vec<FieldError> {
    let spec = at(jt, "spec");
    let sp = p.ch("spec");
    let mut errs = validate_job_spec_common(spec, &sp);
    if has(spec, "selector") {
        errs.push(invalid(
            &sp.ch("selector"),
            selector_bv(at(spec, "selector")),
            "`selector` will be auto-generated",
        ));
    }
    if boolean(spec, "manualSelector") == Some(true) {
        errs.push(not_supported(
            &sp.ch("manualSelector"),
            Bv::Raw("true".into()),
            &["nil", "false"],
        ));
    }
    errs
}

fn validate_cronjob_spec(spec: &Value, old_spec: Option<&Value>, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let schedule = st(spec, "schedule");
    let sp = p.ch("schedule");
    let tz = spec.get("timeZone").and_then(Value::as_str);
    if schedule.is_empty() {
        errs.push(required(&sp, ""));
    } else {
        let allow_tz = old_spec.is_some_and(|o| st(o, "schedule").contains("TZ"));
        if let Err(e) = parse_cron_schedule(schedule) {
            errs.push(invalid(&sp, bs(schedule), e));
        }
        if allow_tz && schedule.contains("TZ") && tz.is_some() {
            errs.push(invalid(
                &sp,
                bs(schedule),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(invalid(
                &sp,
                bs(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(v) = int(spec, "startingDeadlineSeconds") {
        errs.extend(validate_nonnegative(v, &p.ch("startingDeadlineSeconds")));
    }
    let old_tz = old_spec
        .and_then(|o| o.get("timeZone"))
        .and_then(Value::as_str);
    if (old_spec.is_none() || old_tz != tz)
        && let Some(tz) = tz
    {
        errs.extend(validate_time_zone(tz, &p.ch("timeZone")));
    }
    match st(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(required(&p.ch("concurrencyPolicy"), "")),
        other => errs.push(not_supported(
            &p.ch("concurrencyPolicy"),
            bs(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    errs.extend(validate_job_template_spec(
        at(spec, "jobTemplate"),
        &p.ch("jobTemplate"),
    ));
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(v) = int(spec, f) {
            errs.extend(validate_nonnegative(v, &p.ch(f)));
        }
    }
    errs
}

fn validate_time_zone(tz: &str, p: &Path) -> Vec<FieldError> {
    if tz.is_empty() {
        return vec![invalid(
            p,
            bs(tz),
            "timeZone must be nil or non-empty string",
        )];
    }
    for part in tz.split('/') {
        let ok = part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c));
        if !ok {
            return vec![invalid(p, bs(tz), format!("unknown time zone {tz}"))];
        }
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("local") {
        errs.push(invalid(
            p,
            bs(tz),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if !time_zone_exists(tz) {
        errs.push(invalid(p, bs(tz), format!("unknown time zone {tz}")));
    }
    errs
}

/// Whether `time.LoadLocation` would know the zone; uses the system zoneinfo when present.
fn time_zone_exists(tz: &str) -> bool {
    if tz == "UTC" || tz == "Local" || tz.eq_ignore_ascii_case("local") {
        return true;
    }
    let dir = std::path::Path::new("/usr/share/zoneinfo");
    if !dir.is_dir() {
        return true;
    }
    dir.join(tz).is_file()
}

// ---------------------------------------------------------------------------
// Services, endpoints, ingress
// ---------------------------------------------------------------------------

/// The IP family of this cluster's service network (skiff allocates IPv4 service IPs only).
const CLUSTER_IP_FAMILY: &str = "IPv4";

fn is_headless(spec: &Value) -> bool {
    let ips = arr(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

fn externally_accessible(spec: &Value) -> bool {
    let t = st(spec, "type");
    t == "LoadBalancer"
        || t == "NodePort"
        || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

/// Internal `core.ServicePort` as `json.Marshal` prints it (no JSON tags on internal types).
fn service_port_key_bv(protocol: &str, port: i64) -> Bv {
    Bv::Raw(format!(
        "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{port},\"TargetPort\":0,\"NodePort\":0}}",
        go_json(&Value::String(protocol.to_string()), false)
    ))
}

fn string_list(v: &Value, k: &str) -> Vec<String> {
    arr(v, k).iter().map(scalar_string).collect()
}

fn validate_service(svc: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(svc, requires_namespace, name_is_dns1035_label);
    let annotations = at(at(svc, "metadata"), "annotations");
    let hints = annotations.get("service.kubernetes.io/topology-aware-hints");
    let mode = annotations.get("service.kubernetes.io/topology-mode");
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(invalid(
                &Path::new("metadata.annotations").key("service.kubernetes.io/topology-mode"),
                bs(&scalar_string(m)),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
    }
    let spec = at(svc, "spec");
    let p = Path::new("spec");
    let svc_type = st(spec, "type");
    let headless = is_headless(spec);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(required(&p.ch("ports"), ""));
    }
    let cluster_ips = string_list(spec, "clusterIPs");
    match svc_type {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(invalid(
                &p.ch("clusterIPs").idx(0),
                bs(&cluster_ips[0]),
                format!("may not be set to 'None' for {svc_type} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(forbidden(
                    &p.ch("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    &p.ch("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if has(spec, "ipFamilyPolicy") {
                errs.push(forbidden(
                    &p.ch("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = st(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required(&p.ch("externalName"), ""));
            } else {
                errs.extend(validate_dns1123_subdomain_at(cname, &p.ch("externalName")));
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = p.ch("ports").idx(i);
        let name = st(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&pp.ch("name"), ""));
        } else if !name.is_empty() {
            errs.extend(validate_dns1123_label_at(name, &pp.ch("name")));
            if !names.insert(name) {
                errs.push(duplicate(&pp.ch("name"), bs(name)));
            }
        }
        let num = int0(port, "port");
        for m in is_valid_port_num(num) {
            errs.push(invalid(&pp.ch("port"), bn(num), m));
        }
        let proto = st(port, "protocol");
        if proto.is_empty() {
            errs.push(required(&pp.ch("protocol"), ""));
        } else if !PROTOCOLS.contains(&proto) {
            errs.push(not_supported(&pp.ch("protocol"), bs(proto), PROTOCOLS));
        }
        errs.extend(validate_port_num_or_name(
            at(port, "targetPort"),
            &pp.ch("targetPort"),
        ));
        if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
            errs.extend(validate_qualified_name_at(ap, &pp.ch("appProtocol")));
        }
    }
    if has(spec, "selector") {
        errs.extend(validate_labels(at(spec, "selector"), &p.ch("selector")));
    }
    let affinity = st(spec, "sessionAffinity");
    match affinity {
        "" => errs.push(required(&p.ch("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => errs.push(not_supported(
            &p.ch("sessionAffinity"),
            bs(other),
            &["ClientIP", "None"],
        )),
    }
    let sac = at(spec, "sessionAffinityConfig");
    let sacp = p.ch("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let detail = "when session affinity type is ClientIP";
        if sac.is_null() {
            errs.push(required(&sacp, detail));
        } else if at(sac, "clientIP").is_null() {
            errs.push(required(&sacp.ch("clientIP"), detail));
        } else if let Some(t) = int(at(sac, "clientIP"), "timeoutSeconds") {
            if t <= 0 || t > 86400 {
                errs.push(invalid(
                    &sacp.ch("clientIP").ch("timeoutSeconds"),
                    bn(t),
                    "must be greater than 0 and less than 86400",
                ));
            }
        } else {
            errs.push(required(&sacp.ch("clientIP").ch("timeoutSeconds"), detail));
        }
    } else if affinity == "None" && !sac.is_null() {
        errs.push(forbidden(
            &sacp,
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(validate_cluster_ips_related(spec));
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = scalar_string(ip);
        let ip_path = p.ch("externalIPs").idx(i);
        let ip_errs = validate_ip(&ip_path, &ip);
        if !ip_errs.is_empty() {
            errs.extend(ip_errs);
        } else {
            errs.extend(validate_non_special_ip(&ip, &ip_path));
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if svc_type.is_empty() {
        errs.push(required(&p.ch("type"), ""));
    } else if !TYPES.contains(&svc_type) {
        errs.push(not_supported(&p.ch("type"), bs(svc_type), TYPES));
    }
    if svc_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int0(port, "nodePort") != 0 {
                errs.push(forbidden(
                    &p.ch("ports").idx(i).ch("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int0(port, "nodePort");
        if np != 0 && !node_ports.insert((st(port, "protocol"), np)) {
            errs.push(duplicate(&p.ch("ports").idx(i).ch("nodePort"), bn(np)));
        }
    }
    let mut port_keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (proto, num) = (st(port, "protocol"), int0(port, "port"));
        if !port_keys.insert((proto, num)) {
            errs.push(duplicate(
                &p.ch("ports").idx(i),
                service_port_key_bv(proto, num),
            ));
        }
    }
    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let rp = p.ch("LoadBalancerSourceRanges");
        if svc_type != "LoadBalancer" {
            errs.push(forbidden(
                &rp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(&rp.idx(i), scalar_string(r).trim()));
        }
    } else if let Some(v) =
        annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges")
    {
        let ap = Path::new("metadata.annotations")
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if svc_type != "LoadBalancer" {
            errs.push(forbidden(
                &ap,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let v = scalar_string(v);
        let v = v.trim();
        if !v.is_empty() {
            for cidr in v.split(',') {
                errs.extend(validate_cidr(&ap, cidr.trim()));
            }
        }
    }
    if has(spec, "allocateLoadBalancerNodePorts") && svc_type != "LoadBalancer" {
        errs.push(forbidden(
            &p.ch("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if svc_type == "LoadBalancer" && !has(spec, "allocateLoadBalancerNodePorts") {
        errs.push(required(&Path::new("allocateLoadBalancerNodePorts"), ""));
    }
    if let Some(class) = spec.get("loadBalancerClass").and_then(Value::as_str) {
        if svc_type == "LoadBalancer" {
            errs.extend(validate_qualified_name_at(
                class,
                &p.ch("loadBalancerClass"),
            ));
        } else {
            errs.push(forbidden(
                &p.ch("loadBalancerClass"),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
    let etp = st(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(invalid(
                &p.ch("externalTrafficPolicy"),
                bs(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(required(&p.ch("externalTrafficPolicy"), ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(not_supported(
            &p.ch("externalTrafficPolicy"),
            bs(etp),
            &["Cluster", "Local"],
        ));
    }
    let hcnp = int0(spec, "healthCheckNodePort");
    let needs_health_check = svc_type == "LoadBalancer" && etp == "Local";
    if !needs_health_check {
        if hcnp != 0 {
            errs.push(invalid(
                &p.ch("healthCheckNodePort"),
                bn(hcnp),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hcnp != 0 {
        for m in is_valid_port_num(hcnp) {
            errs.push(invalid(&p.ch("healthCheckNodePort"), bn(hcnp), m));
        }
    }
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None => {
            if matches!(svc_type, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(required(&p.ch("internalTrafficPolicy"), ""));
            }
        }
        Some("Cluster" | "Local") => {}
        Some(other) => errs.push(not_supported(
            &p.ch("internalTrafficPolicy"),
            bs(other),
            &["Cluster", "Local"],
        )),
    }
    if let Some(td) = spec.get("trafficDistribution").and_then(Value::as_str) {
        const TD: &[&str] = &["PreferClose", "PreferSameNode", "PreferSameZone"];
        if !TD.contains(&td) {
            errs.push(not_supported(&p.ch("trafficDistribution"), bs(td), TD));
        }
    }
    errs.extend(validate_service_ip_families_for_cluster(spec));
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips_related(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if st(spec, "type") == "ExternalName" {
        return errs;
    }
    let p = Path::new("spec");
    let ips_path = p.ch("clusterIPs");
    let cluster_ip = st(spec, "clusterIP");
    let ips = string_list(spec, "clusterIPs");
    let ips_bv = || bj(at(spec, "clusterIPs"));
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(invalid(
                &ips_path,
                ips_bv(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(invalid(
            &ips_path,
            ips_bv(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = string_list(spec, "ipFamilies");
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if !matches!(f.as_str(), "IPv4" | "IPv6") {
            errs.push(not_supported(
                &p.ch("ipFamilies").idx(i),
                bs(f),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f.clone()) {
            errs.push(duplicate(&p.ch("ipFamilies").idx(i), bs(f)));
        }
    }
    if let Some(pol) = spec.get("ipFamilyPolicy").and_then(Value::as_str)
        && !matches!(pol, "SingleStack" | "PreferDualStack" | "RequireDualStack")
    {
        errs.push(not_supported(
            &p.ch("ipFamilyPolicy"),
            bs(pol),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut bad_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                errs.push(invalid(
                    &ips_path,
                    ips_bv(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(&ips_path.idx(i), ip);
        bad_ips |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(invalid(&ips_path, ips_bv(), "may only hold up to 2 values"));
    }
    if bad_ips {
        return errs;
    }
    if ips.len() > 1 {
        let v6: Vec<bool> = ips.iter().map(|ip| is_ipv6_string(ip)).collect();
        let dual = ips.len() == 2 && v6[0] != v6[1];
        if !dual {
            errs.push(invalid(
                &ips_path,
                ips_bv(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate() {
            if i >= families.len() {
                break;
            }
            if families[i] == "IPv4" && is_ipv6_string(ip) {
                errs.push(invalid(
                    &ips_path.idx(i),
                    bs(ip),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_ipv6_string(ip) {
                errs.push(invalid(
                    &ips_path.idx(i),
                    bs(ip),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// The family checks the service IP allocator performs for a single-stack cluster.
fn validate_service_ip_families_for_cluster(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if st(spec, "type") == "ExternalName" {
        return errs;
    }
    let p = Path::new("spec");
    let policy = spec.get("ipFamilyPolicy").and_then(Value::as_str);
    let ips = string_list(spec, "clusterIPs");
    let families = string_list(spec, "ipFamilies");
    if policy == Some("SingleStack") {
        if ips.len() == 2 {
            errs.push(invalid(
                &p.ch("ipFamilyPolicy"),
                bs("SingleStack"),
                "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified",
            ));
        }
        if families.len() == 2 {
            errs.push(invalid(
                &p.ch("ipFamilyPolicy"),
                bs("SingleStack"),
                "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified",
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        let family = if is_ipv6_string(ip) { "IPv6" } else { "IPv4" };
        if family != CLUSTER_IP_FAMILY && parse_ip(ip).is_some() {
            errs.push(invalid(
                &p.ch("clusterIPs").idx(i),
                bj(at(spec, "clusterIPs")),
                format!("may not use {family} on a cluster which is not configured for it"),
            ));
        }
    }
    let headless_selectorless = is_headless(spec) && string_map(at(spec, "selector")).is_empty();
    if headless_selectorless {
        return errs;
    }
    if policy == Some("RequireDualStack") {
        errs.push(invalid(
            &p.ch("ipFamilyPolicy"),
            bs("RequireDualStack"),
            "Cluster is not configured for dual stack services",
        ));
    }
    for (i, f) in families.iter().enumerate() {
        if f != CLUSTER_IP_FAMILY && matches!(f.as_str(), "IPv4" | "IPv6") {
            errs.push(invalid(
                &p.ch("ipFamilies").idx(i),
                if ips.is_empty() {
                    Bv::Raw("null".into())
                } else {
                    bj(at(spec, "clusterIPs"))
                },
                format!("ipfamily {f} is not configured on cluster"),
            ));
        }
    }
    errs
}

fn validate_non_special_ip(ip: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(addr) = parse_ip(ip) else {
        return vec![invalid(p, bs(ip), "must be a valid IP address")];
    };
    if addr.is_unspecified() {
        errs.push(invalid(p, bs(ip), format!("may not be unspecified ({ip})")));
    }
    if addr.is_loopback() {
        errs.push(invalid(
            p,
            bs(ip),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local = match addr {
        std::net::IpAddr::V4(a) => a.is_link_local(),
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(invalid(
            p,
            bs(ip),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let ll_multicast = match addr {
        std::net::IpAddr::V4(a) => a.octets()[0] == 224 && a.octets()[1] == 0 && a.octets()[2] == 0,
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if ll_multicast {
        errs.push(invalid(
            p,
            bs(ip),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

fn validate_service_update(new: &Value, old: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    let (ns, os) = (at(new, "spec"), at(old, "spec"));
    let (nt, ot) = (st(ns, "type"), st(os, "type"));
    let new_ips = string_list(ns, "clusterIPs");
    let old_ips = string_list(os, "clusterIPs");
    // An update that carries no cluster IP keeps the allocated one (see `patchAllocatedValues`).
    let keeps_ips = new_ips.is_empty() && st(ns, "clusterIP").is_empty();
    if nt != "ExternalName"
        && ot != "ExternalName"
        && !(is_headless(ns) && is_headless(os))
        && !keeps_ips
    {
        let ips_bv = || bj(at(ns, "clusterIPs"));
        let p0 = Path::new("spec.clusterIPs").idx(0);
        match new_ips.len().cmp(&old_ips.len()) {
            Ordering::Equal => {
                for (i, ip) in old_ips.iter().enumerate() {
                    if *ip != new_ips[i] {
                        errs.push(invalid(
                            &Path::new("spec.clusterIPs").idx(i),
                            ips_bv(),
                            "may not change once set",
                        ));
                    }
                }
            }
            Ordering::Less => {
                if new_ips.is_empty() {
                    errs.push(invalid(&p0, ips_bv(), "primary clusterIP can not be unset"));
                }
                if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                    errs.push(invalid(&p0, ips_bv(), "may not change once set"));
                }
                if new_ips.len() == 1
                    && ns.get("ipFamilyPolicy").and_then(Value::as_str) != Some("SingleStack")
                {
                    errs.push(invalid(
                        &Path::new("spec.ipFamilyPolicy"),
                        value_bv(at(ns, "ipFamilyPolicy")),
                        "must be set to 'SingleStack' when releasing the secondary clusterIP",
                    ));
                }
            }
            Ordering::Greater => {
                if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
                    errs.push(invalid(&p0, ips_bv(), "may not change once set"));
                }
            }
        }
    }
    if nt != "ExternalName"
        && ot != "ExternalName"
        && is_headless(ns) == is_headless(os)
        && !is_headless(ns)
    {
        let nf = string_list(ns, "ipFamilies");
        let of = string_list(os, "ipFamilies");
        let fp0 = Path::new("spec.ipFamilies").idx(0);
        if nf.len() == of.len() {
            for (i, f) in of.iter().enumerate() {
                if *f != nf[i] {
                    errs.push(invalid(
                        &fp0,
                        bj(at(ns, "ipFamilies")),
                        "may not change once set",
                    ));
                }
            }
        } else if !nf.is_empty() && !of.is_empty() && nf[0] != of[0] {
            errs.push(invalid(
                &fp0,
                bj(at(ns, "clusterIPs")),
                "may not change once set",
            ));
        }
    }
    if ot == "LoadBalancer"
        && nt == "LoadBalancer"
        && at(ns, "loadBalancerClass") != at(os, "loadBalancerClass")
    {
        errs.push(invalid(
            &Path::new("spec.loadBalancerClass"),
            value_bv(at(ns, "loadBalancerClass")),
            "may not change once set",
        ));
    }
    let needs =
        |s: &Value| st(s, "type") == "LoadBalancer" && st(s, "externalTrafficPolicy") == "Local";
    if needs(ns)
        && needs(os)
        && int0(ns, "healthCheckNodePort") != int0(os, "healthCheckNodePort")
        && has(ns, "healthCheckNodePort")
    {
        errs.push(forbidden(&Path::new("spec.healthCheckNodePort"), IMMUTABLE));
    }
    errs.extend(validate_service(new, requires_namespace));
    errs
}

fn validate_endpoints(ep: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(ep, requires_namespace, name_is_dns_subdomain);
    let p = Path::new("subsets");
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let sp = p.idx(i);
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            errs.push(required(
                &sp,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for kind in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(ss, kind).iter().enumerate() {
                let ap = sp.ch(kind).idx(j);
                let ip = st(a, "ip");
                errs.extend(validate_ip(&ap.ch("ip"), ip));
                let host = st(a, "hostname");
                if !host.is_empty() {
                    errs.extend(validate_dns1123_label_at(host, &ap.ch("hostname")));
                }
                if let Some(node) = a.get("nodeName").and_then(Value::as_str) {
                    errs.extend(validate_dns1123_subdomain_at(node, &ap.ch("nodeName")));
                }
                errs.extend(validate_non_special_ip(ip, &ap.ch("ip")));
            }
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = sp.ch("ports").idx(j);
            let name = st(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(&pp.ch("name"), ""));
            } else if !name.is_empty() {
                errs.extend(validate_dns1123_label_at(name, &pp.ch("name")));
            }
            let num = int0(port, "port");
            for m in is_valid_port_num(num) {
                errs.push(invalid(&pp.ch("port"), bn(num), m));
            }
            let proto = st(port, "protocol");
            if proto.is_empty() {
                errs.push(required(&pp.ch("protocol"), ""));
            } else if !PROTOCOLS.contains(&proto) {
                errs.push(not_supported(&pp.ch("protocol"), bs(proto), PROTOCOLS));
            }
            if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
                errs.extend(validate_qualified_name_at(ap, &pp.ch("appProtocol")));
            }
        }
    }
    errs
}

fn validate_endpoint_slice(es: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(es, requires_namespace, name_is_dns_subdomain);
    let address_type = st(es, "addressType");
    let atp = Path::new("addressType");
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if address_type.is_empty() {
        errs.push(required(&atp, ""));
    } else if !TYPES.contains(&address_type) {
        errs.push(not_supported(&atp, bs(address_type), TYPES));
    }
    let endpoints = arr(es, "endpoints");
    let ep = Path::new("endpoints");
    if endpoints.len() > 1000 {
        errs.push(too_many(&ep, endpoints.len(), 1000));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let ip = ep.idx(i);
        let addrs = arr(e, "addresses");
        let ap = ip.ch("addresses");
        if addrs.is_empty() {
            errs.push(required(&ap, "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(too_many(&ap, addrs.len(), 100));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = scalar_string(a);
            let aip = ap.idx(j);
            match address_type {
                "IPv4" | "IPv6" => {
                    let e = validate_ip(&aip, &a);
                    if e.is_empty() {
                        let v6 = is_ipv6_string(&a);
                        if v6 != (address_type == "IPv6") {
                            errs.push(invalid(
                                &aip,
                                bs(&a),
                                format!("must be an {address_type} address"),
                            ));
                        } else {
                            errs.extend(validate_non_special_ip(&a, &aip));
                        }
                    } else {
                        errs.extend(e);
                    }
                }
                "FQDN" => errs.extend(validate_dns1123_subdomain_at(&a, &aip)),
                _ => {}
            }
        }
        if let Some(h) = e.get("hostname").and_then(Value::as_str) {
            errs.extend(validate_dns1123_label_at(h, &ip.ch("hostname")));
        }
        if let Some(n) = e.get("nodeName").and_then(Value::as_str) {
            errs.extend(validate_dns1123_subdomain_at(n, &ip.ch("nodeName")));
        }
    }
    let ports = arr(es, "ports");
    let pp = Path::new("ports");
    if ports.len() > 100 {
        errs.push(too_many(&pp, ports.len(), 100));
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let ip = pp.idx(i);
        let name = st(port, "name");
        if !name.is_empty() {
            errs.extend(validate_dns1123_label_at(name, &ip.ch("name")));
        }
        if !names.insert(name) {
            errs.push(duplicate(&ip.ch("name"), bs(name)));
        }
        let proto = st(port, "protocol");
        if proto.is_empty() {
            errs.push(required(&ip.ch("protocol"), ""));
        } else if !PROTOCOLS.contains(&proto) {
            errs.push(not_supported(&ip.ch("protocol"), bs(proto), PROTOCOLS));
        }
        if let Some(n) = int(port, "port") {
            for m in is_valid_port_num(n) {
                errs.push(invalid(&ip.ch("port"), bn(n), m));
            }
        }
        if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
            errs.extend(validate_qualified_name_at(ap, &ip.ch("appProtocol")));
        }
    }
    errs
}

fn validate_ingress_backend(b: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (res, svc) = (has(b, "resource"), has(b, "service"));
    if res && svc {
        return vec![invalid(
            p,
            bs(""),
            "cannot set both resource and service backends",
        )];
    }
    if res {
        let r = at(b, "resource");
        let rp = p.ch("resource");
        if st(r, "kind").is_empty() {
            errs.push(required(&rp.ch("kind"), "kind is required"));
        }
        if st(r, "name").is_empty() {
            errs.push(required(&rp.ch("name"), "name is required"));
        }
        return errs;
    }
    if !svc {
        return vec![invalid(
            p,
            bs(""),
            "resource or service backend is required",
        )];
    }
    let s = at(b, "service");
    let name = st(s, "name");
    if name.is_empty() {
        errs.push(required(&p.ch("service").ch("name"), ""));
    } else {
        for m in name_is_dns1035_label(name, false) {
            errs.push(invalid(&p.ch("service").ch("name"), bs(name), m));
        }
    }
    let port = at(s, "port");
    let pname = st(port, "name");
    let pnum = int0(port, "number");
    if !pname.is_empty() && pnum != 0 {
        errs.push(invalid(
            p,
            bs(""),
            "cannot set both port name & port number",
        ));
    } else if !pname.is_empty() {
        for m in is_valid_port_name(pname) {
            errs.push(invalid(
                &p.ch("service").ch("port").ch("name"),
                bs(pname),
                m,
            ));
        }
    } else if pnum != 0 {
        for m in is_valid_port_num(pnum) {
            errs.push(invalid(
                &p.ch("service").ch("port").ch("number"),
                bn(pnum),
                m,
            ));
        }
    } else {
        errs.push(required(p, "port name or number is required"));
    }
    errs
}

fn validate_ingress(ing: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(ing, requires_namespace, name_is_dns_subdomain);
    let spec = at(ing, "spec");
    let p = Path::new("spec");
    let rules = arr(spec, "rules");
    if has(spec, "defaultBackend") {
        errs.extend(validate_ingress_backend(
            at(spec, "defaultBackend"),
            &p.ch("defaultBackend"),
        ));
    } else if rules.is_empty() {
        errs.push(invalid(
            &p.ch("rules"),
            Bv::Raw(if at(spec, "rules").is_null() {
                "null".into()
            } else {
                "[]".into()
            }),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = p.ch("rules").idx(i);
        let host = st(r, "host");
        if !host.is_empty() {
            if parse_ip(host).is_some() {
                errs.push(invalid(
                    &rp.ch("host"),
                    bs(host),
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for m in msgs {
                errs.push(invalid(&rp.ch("host"), bs(host), m));
            }
        }
        let http = at(r, "http");
        if http.is_null() {
            continue;
        }
        let hp = rp.ch("http");
        let paths = arr(http, "paths");
        if paths.is_empty() {
            errs.push(required(&hp.ch("paths"), ""));
        }
        for (j, path) in paths.iter().enumerate() {
            let pp = hp.ch("paths").idx(j);
            let path_type = path.get("pathType").and_then(Value::as_str);
            let Some(path_type) = path_type else {
                errs.push(required(&pp.ch("pathType"), "pathType must be specified"));
                continue;
            };
            let pv = st(path, "path");
            match path_type {
                "Exact" | "Prefix" => {
                    if !pv.starts_with('/') {
                        errs.push(invalid(&pp.ch("path"), bs(pv), "must be an absolute path"));
                    }
                    if !pv.is_empty() {
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if pv.contains(seq) {
                                errs.push(invalid(
                                    &pp.ch("path"),
                                    bs(pv),
                                    format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suf in ["/..", "/."] {
                            if pv.ends_with(suf) {
                                errs.push(invalid(
                                    &pp.ch("path"),
                                    bs(pv),
                                    format!("cannot end with '{suf}'"),
                                ));
                            }
                        }
                    }
                }
                "ImplementationSpecific" => {
                    if !pv.is_empty() && !pv.starts_with('/') {
                        errs.push(invalid(&pp.ch("path"), bs(pv), "must be an absolute path"));
                    }
                }
                other => errs.push(not_supported(
                    &pp.ch("pathType"),
                    bs(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            errs.extend(validate_ingress_backend(
                at(path, "backend"),
                &pp.ch("backend"),
            ));
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        for (j, h) in arr(tls, "hosts").iter().enumerate() {
            let h = scalar_string(h);
            let hp = p.ch("tls").idx(i).ch("hosts").idx(j);
            let msgs = if h.contains('*') {
                is_wildcard_dns1123_subdomain(&h)
            } else {
                is_dns1123_subdomain(&h)
            };
            for m in msgs {
                errs.push(invalid(&hp, bs(&h), m));
            }
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        for m in is_dns1123_subdomain(class) {
            errs.push(invalid(&p.ch("ingressClassName"), bs(class), m));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Config, storage, namespaces, nodes and the rest of core
// ---------------------------------------------------------------------------

const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Standard base64 decoding (with or without padding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    let trimmed = s.trim_end_matches('=');
    if s.len() - trimmed.len() > 2 {
        return None;
    }
    for c in trimmed.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'\r' | b'\n' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn validate_config_map(cm: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(cm, requires_namespace, name_is_dns_subdomain);
    let mut total = 0usize;
    let binary = obj(cm, "binaryData");
    if let Some(data) = obj(cm, "data") {
        for k in sorted_keys(data) {
            let kp = Path::new("data").key(k);
            for m in is_config_map_key(k) {
                errs.push(invalid(&kp, bs(k), m));
            }
            if binary.is_some_and(|b| b.contains_key(k.as_str())) {
                errs.push(invalid(
                    &kp,
                    bs(k),
                    "duplicate of key present in binaryData",
                ));
            }
            total += scalar_string(&data[k]).len();
        }
    }
    if let Some(bin) = binary {
        for k in sorted_keys(bin) {
            for m in is_config_map_key(k) {
                errs.push(invalid(&Path::new("binaryData").key(k), bs(k), m));
            }
            let raw = scalar_string(&bin[k]);
            total += base64_decode(&raw).map_or(raw.len() * 3 / 4, |b| b.len());
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long(&Path::new("[]"), MAX_SECRET_SIZE));
    }
    errs
}

fn validate_config_map_update(
    new: &Value,
    old: &Value,
    requires_namespace: bool,
) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    if boolean(old, "immutable") == Some(true) {
        if boolean(new, "immutable") != Some(true) {
            errs.push(forbidden(
                &Path::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        for f in ["data", "binaryData"] {
            if !sem_eq(at(new, f), at(old, f)) {
                errs.push(forbidden(
                    &Path::new(f),
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errs.extend(validate_config_map(new, requires_namespace));
    errs
}

/// Go's `json.Unmarshal` into `map[string]interface{}`: the error text for bad input.
fn go_json_object_error(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return Some("unexpected end of JSON input".to_string());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => return None,
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) => {
            let trimmed = text.trim_start();
            let first = trimmed.chars().next().unwrap_or(' ');
            for literal in ["true", "false", "null"] {
                if literal.starts_with(first) {
                    for (have, want) in trimmed.chars().zip(literal.chars()) {
                        if have != want {
                            return Some(format!(
                                "invalid character {} in literal {literal} (expecting {})",
                                go_char_quote(have),
                                go_char_quote(want)
                            ));
                        }
                    }
                    if let Some(next) = trimmed[literal.len().min(trimmed.len())..]
                        .trim_start()
                        .chars()
                        .next()
                    {
                        return Some(format!(
                            "invalid character {} after top-level value",
                            go_char_quote(next)
                        ));
                    }
                }
            }
            if e.is_eof() {
                Some("unexpected end of JSON input".to_string())
            } else if !matches!(first, '{' | '[' | '"' | '-' | '0'..='9' | 't' | 'f' | 'n') {
                Some(format!(
                    "invalid character {} looking for beginning of value",
                    go_char_quote(first)
                ))
            } else {
                Some(e.to_string())
            }
        }
    }
}

fn go_char_quote(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\n' => "'\\n'".to_string(),
        c => format!("'{c}'"),
    }
}

fn validate_secret(secret: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(secret, requires_namespace, name_is_dns_subdomain);
    let dp = Path::new("data");
    let empty = Map::new();
    let data = obj(secret, "data").unwrap_or(&empty);
    let mut total = 0;
    let mut decoded: HashMap<&str, Vec<u8>> = HashMap::new();
    for k in sorted_keys(data) {
        for m in is_config_map_key(k) {
            errs.push(invalid(&dp.key(k), bs(k), m));
        }
        let raw = scalar_string(&data[k]);
        let bytes = base64_decode(&raw).unwrap_or_else(|| raw.as_bytes().to_vec());
        total += bytes.len();
        decoded.insert(k.as_str(), bytes);
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long(&dp, MAX_SECRET_SIZE));
    }
    let json_key = |key: &str, errs: &mut Vec<FieldError>| match decoded.get(key) {
        None => errs.push(required(&dp.key(key), "")),
        Some(b) => {
            if let Some(e) = go_json_object_error(b) {
                errs.push(invalid(&dp.key(key), bs("<secret contents redacted>"), e));
            }
        }
    };
    match st(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let name = st(
                at(at(secret, "metadata"), "annotations"),
                "kubernetes.io/service-account.name",
            );
            if name.is_empty() {
                errs.push(required(
                    &Path::new("metadata.annotations").key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => json_key(".dockercfg", &mut errs),
        "kubernetes.io/dockerconfigjson" => json_key(".dockerconfigjson", &mut errs),
        "kubernetes.io/basic-auth"
            if !decoded.contains_key("username") && !decoded.contains_key("password") =>
        {
            errs.push(required(&dp.key("username"), ""));
            errs.push(required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if decoded.get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            errs.push(required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !decoded.contains_key(key) {
                    errs.push(required(&dp.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

fn validate_secret_update(new: &Value, old: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    let (nt, ot) = (st(new, "type"), st(old, "type"));
    if nt != ot {
        errs.push(invalid(&Path::new("type"), bs(nt), IMMUTABLE));
    }
    if boolean(old, "immutable") == Some(true) {
        if boolean(new, "immutable") != Some(true) {
            errs.push(forbidden(
                &Path::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        if !sem_eq(at(new, "data"), at(old, "data")) {
            errs.push(forbidden(
                &Path::new("data"),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs.extend(validate_secret(new, requires_namespace));
    errs
}

fn validate_namespace(ns: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(ns, requires_namespace, name_is_dns_label);
    let p = Path::new("spec.finalizers");
    for f in arr(at(ns, "spec"), "finalizers") {
        let f = scalar_string(f);
        errs.extend(validate_qualified_name_at(&f, &p));
        errs.extend(validate_kube_finalizer_name(&f, &p));
    }
    errs
}

fn validate_taints(taints: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let tp = p.idx(i);
        let key = st(t, "key");
        errs.extend(validate_qualified_name_at(key, &tp.ch("key")));
        let value = st(t, "value");
        let msgs = validate_label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid(&tp.ch("value"), bs(value), msgs.join(";")));
        }
        let effect = st(t, "effect");
        if effect.is_empty() {
            errs.push(required(&tp.ch("effect"), ""));
        } else if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(not_supported(
                &tp.ch("effect"),
                bs(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if !seen.insert((effect, key)) {
            let mut m = Map::new();
            m.insert("Key".into(), Value::String(key.to_string()));
            m.insert("Value".into(), Value::String(value.to_string()));
            m.insert("Effect".into(), Value::String(effect.to_string()));
            m.insert("TimeAdded".into(), at(t, "timeAdded").clone());
            let mut e = duplicate(&tp, Bv::Raw(go_json(&Value::Object(m), false)));
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

fn validate_node_resources(node: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let status = at(node, "status");
    for kind in ["capacity", "allocatable"] {
        if let Some(list) = obj(status, kind) {
            for name in sorted_keys(list) {
                let p = Path::new("status").ch(kind).ch(name);
                match quantity_of(&list[name]) {
                    Ok(q) => errs.extend(validate_resource_quantity_value(name, &q, &p)),
                    Err(m) => errs.push(invalid(&p, value_bv(&list[name]), m)),
                }
            }
        }
    }
    errs
}

fn validate_node(node: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(node, requires_namespace, name_is_dns_subdomain);
    let spec = at(node, "spec");
    // Kubernetes reports node taints under `metadata.taints`.
    errs.extend(validate_taints(
        arr(spec, "taints"),
        &Path::new("metadata.taints"),
    ));
    errs.extend(validate_node_resources(node));
    let cidrs = string_list(spec, "podCIDRs");
    let cp = Path::new("spec.podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(validate_cidr(&cp.idx(i), c));
    }
    if cidrs.len() > 1 {
        let fams: Vec<bool> = cidrs.iter().map(|c| c.contains(':')).collect();
        if cidrs.len() > 2 || fams[0] == fams[1] {
            errs.push(invalid(
                &cp,
                bj(at(spec, "podCIDRs")),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(duplicate(&cp.idx(i), bs(c)));
            }
        }
    }
    errs
}

fn validate_node_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    errs.extend(validate_node_resources(new));
    let (ns, os) = (at(new, "spec"), at(old, "spec"));
    let mut seen = HashSet::new();
    for (i, a) in arr(at(new, "status"), "addresses").iter().enumerate() {
        if !seen.insert(normalize(a).to_string()) {
            errs.push(duplicate(&Path::new("status.addresses").idx(i), bjo(a)));
        }
    }
    let old_cidrs = string_list(os, "podCIDRs");
    let new_cidrs = string_list(ns, "podCIDRs");
    if !old_cidrs.is_empty() && old_cidrs != new_cidrs {
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(forbidden(&Path::new("spec.podCIDRs"), msg));
        } else {
            for (i, c) in old_cidrs.iter().enumerate() {
                if *c != new_cidrs[i] {
                    errs.push(forbidden(&Path::new("spec.podCIDRs"), msg));
                }
            }
        }
    }
    let old_pid = st(os, "providerID");
    if !old_pid.is_empty() && old_pid != st(ns, "providerID") {
        errs.push(forbidden(
            &Path::new("spec.providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(
        arr(ns, "taints"),
        &Path::new("metadata.taints"),
    ));
    if st(ns, "externalID") != st(os, "externalID") {
        errs.push(forbidden(
            &Path::new("spec.externalID"),
            "may not be updated",
        ));
    }
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
fn validate_pvc_spec(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes = string_list(spec, "accessModes");
    if modes.is_empty() {
        errs.push(required(
            &p.ch("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if has(spec, "selector") {
        errs.extend(validate_label_selector(
            at(spec, "selector"),
            &p.ch("selector"),
        ));
    }
    const MODES: &[&str] = &[
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    let (mut rwop, mut other) = (false, false);
    for m in &modes {
        if !MODES.contains(&m.as_str()) {
            errs.push(not_supported(&p.ch("accessModes"), bs(m), MODES));
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else if MODES.contains(&m.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(forbidden(
            &p.ch("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let sp = p.ch("resources").key("storage");
    match at(at(at(spec, "resources"), "requests"), "storage") {
        Value::Null => errs.push(required(&sp, "")),
        v => match quantity_of(v) {
            Err(m) => errs.push(invalid(&sp, value_bv(v), m)),
            Ok(q) if q.sign() <= 0 => errs.push(invalid(
                &sp,
                bs(&q.to_k8s_string()),
                "must be greater than zero",
            )),
            Ok(_) => {}
        },
    }
    if let Some(class) = spec
        .get("storageClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        for m in is_dns1123_subdomain(class) {
            errs.push(invalid(&p.ch("storageClassName"), bs(class), m));
        }
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !matches!(mode, "Block" | "Filesystem")
    {
        errs.push(not_supported(
            &p.ch("volumeMode"),
            bs(mode),
            &["Block", "Filesystem"],
        ));
    }
    for field in ["dataSource", "dataSourceRef"] {
        let ds = at(spec, field);
        if ds.is_null() {
            continue;
        }
        let dp = p.ch(field);
        if st(ds, "name").is_empty() {
            errs.push(required(&dp.ch("name"), ""));
        }
        if st(ds, "kind").is_empty() {
            errs.push(required(&dp.ch("kind"), ""));
        }
        let group = st(ds, "apiGroup");
        let kind = st(ds, "kind");
        if group.is_empty() && kind != "PersistentVolumeClaim" {
            let list = format!(
                "[{{\"Group\":\"\",\"Kind\":{}}}]",
                go_json(&Value::String(kind.to_string()), false)
            );
            errs.push(invalid(
                &dp,
                Bv::Raw(list),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
    }
    if let Some(vac) = spec
        .get("volumeAttributesClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        for m in is_dns1123_subdomain(vac) {
            errs.push(invalid(&p.ch("volumeAttributesClassName"), bs(vac), m));
        }
    }
    errs
}

fn validate_pvc(pvc: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(pvc, requires_namespace, name_is_dns_subdomain);
    errs.extend(validate_pvc_spec(at(pvc, "spec"), &Path::new("spec")));
    errs
}

fn validate_pvc_update(new: &Value, old: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    errs.extend(validate_pvc(new, requires_namespace));
    let (ns, os) = (at(new, "spec"), at(old, "spec"));
    let mut new_clone = ns.clone();
    let mut old_clone = os.clone();
    if st(os, "volumeName").is_empty()
        && let Some(o) = old_clone.as_object_mut()
    {
        match ns.get("volumeName") {
            Some(v) => o.insert("volumeName".into(), v.clone()),
            None => o.remove("volumeName"),
        };
    }
    // Bound claims may change their storage request and volume attributes class.
    if st(at(new, "status"), "phase") == "Bound" {
        for spec in [&mut new_clone, &mut old_clone] {
            if let Some(req) = spec
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut)
            {
                req.remove("storage");
            }
            if let Some(o) = spec.as_object_mut() {
                o.remove("volumeAttributesClassName");
            }
        }
    }
    if !sem_eq(&new_clone, &old_clone) {
        let diff = spec_diff(&old_clone, &new_clone, "core.PersistentVolumeClaimSpec");
        errs.push(forbidden(
            &Path::new("spec"),
            &format!("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{diff}"),
        ));
    }
    let size = |s: &Value| quantity_of(at(at(at(s, "resources"), "requests"), "storage")).ok();
    let capacity = quantity_of(at(at(at(old, "status"), "capacity"), "storage")).ok();
    if let (Some(n), Some(o), Some(c)) = (size(ns), size(os), capacity)
        && n.cmp(&o) == Ordering::Less
        && n.cmp(&c) != Ordering::Greater
    {
        errs.push(forbidden(
            &Path::new("spec.resources.requests.storage"),
            "field can not be less than status.capacity",
        ));
    }
    errs.extend(validate_immutable(
        at(ns, "volumeMode"),
        at(os, "volumeMode"),
        &Path::new("volumeMode"),
        value_bv(at(ns, "volumeMode")),
    ));
    errs
}

fn validate_persistent_volume(pv: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(pv, false, name_is_dns_subdomain);
    let spec = at(pv, "spec");
    let p = Path::new("spec");
    if string_list(spec, "accessModes").is_empty() {
        errs.push(required(&p.ch("accessModes"), ""));
    }
    match obj(spec, "capacity") {
        None => errs.push(required(&p.ch("capacity"), "")),
        Some(cap) => {
            for name in sorted_keys(cap) {
                let cp = p.ch("capacity").key(name);
                if name != "storage" {
                    errs.push(not_supported(&cp, bs(name), &["storage"]));
                }
                match quantity_of(&cap[name]) {
                    Ok(q) => errs.extend(validate_resource_quantity_value(name, &q, &cp)),
                    Err(m) => errs.push(invalid(&cp, value_bv(&cap[name]), m)),
                }
            }
        }
    }
    let policy = st(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        errs.push(not_supported(
            &p.ch("persistentVolumeReclaimPolicy"),
            bs(policy),
            &["Delete", "Recycle", "Retain"],
        ));
    }
    errs
}

fn validate_event(ev: &Value, group: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = st(at(ev, "metadata"), "namespace");
    let involved = if group == "events.k8s.io" {
        at(ev, "regarding")
    } else {
        at(ev, "involvedObject")
    };
    let involved_ns = st(involved, "namespace");
    let event_time = at(ev, "eventTime");
    let (reporting_controller, reporting_field) = if group == "events.k8s.io" {
        (st(ev, "reportingController"), "reportingController")
    } else {
        (st(ev, "reportingComponent"), "reportingComponent")
    };
    let ip = Path::new("involvedObject.namespace");
    if event_time.is_null() {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(invalid(
                    &ip,
                    bs(involved_ns),
                    "does not match event.namespace",
                ));
            }
        } else if ns != involved_ns {
            errs.push(invalid(
                &ip,
                bs(involved_ns),
                "does not match event.namespace",
            ));
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(invalid(
                &ip,
                bs(involved_ns),
                "does not match event.namespace",
            ));
        }
        let rp = Path::new(reporting_field);
        if reporting_controller.is_empty() {
            errs.push(required(&rp, ""));
        }
        errs.extend(validate_qualified_name_at(reporting_controller, &rp));
        let instance = st(ev, "reportingInstance");
        if instance.is_empty() {
            errs.push(required(&Path::new("reportingInstance"), ""));
        }
        if instance.len() > 128 {
            errs.push(invalid(
                &Path::new("reportingInstance"),
                bs(""),
                "can have at most 128 characters",
            ));
        }
        let action = st(ev, "action");
        if action.is_empty() {
            errs.push(required(&Path::new("action"), ""));
        }
        if action.len() > 128 {
            errs.push(invalid(
                &Path::new("action"),
                bs(""),
                "can have at most 128 characters",
            ));
        }
        let reason = st(ev, "reason");
        if reason.is_empty() {
            errs.push(required(&Path::new("reason"), ""));
        }
        if reason.len() > 128 {
            errs.push(invalid(
                &Path::new("reason"),
                bs(""),
                "can have at most 128 characters",
            ));
        }
        let note = if group == "events.k8s.io" {
            st(ev, "note")
        } else {
            st(ev, "message")
        };
        if note.len() > 1024 {
            errs.push(invalid(
                &Path::new("message"),
                bs(""),
                "can have at most 1024 characters",
            ));
        }
    }
    for m in is_dns1123_subdomain(ns) {
        errs.push(invalid(&Path::new("namespace"), bs(ns), m));
    }
    if group == "events.k8s.io" {
        errs.extend(validate_object_meta(ev, true, name_is_dns_subdomain));
        if event_time.is_null() {
            errs.push(required(&Path::new("eventTime"), ""));
        }
        let t = st(ev, "type");
        if t != "Normal" && t != "Warning" {
            errs.push(invalid(
                &Path::new("type"),
                bs(""),
                format!("has invalid value: {t}"),
            ));
        }
    }
    errs
}

fn validate_lease(lease: &Value, requires_namespace: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(lease, requires_namespace, name_is_dns_subdomain);
    let spec = at(lease, "spec");
    let p = Path::new("spec");
    if let Some(d) = int(spec, "leaseDurationSeconds")
        && d <= 0
    {
        errs.push(invalid(
            &p.ch("leaseDurationSeconds"),
            bn(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = int(spec, "leaseTransitions")
        && t < 0
    {
        errs.push(invalid(&p.ch("leaseTransitions"), bn(t), NEGATIVE));
    }
    if let Some(s) = spec.get("strategy").and_then(Value::as_str)
        && s != "OldestEmulationVersion"
    {
        errs.push(not_supported(
            &p.ch("strategy"),
            bs(s),
            &["OldestEmulationVersion"],
        ));
    }
    errs
}

// ---------------------------------------------------------------------------
// Cron schedules (github.com/robfig/cron/v3 standard parser)
// ---------------------------------------------------------------------------

struct CronBounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: CronBounds = CronBounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: CronBounds = CronBounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: CronBounds = CronBounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: CronBounds = CronBounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: CronBounds = CronBounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `strconv.Atoi` followed by robfig's `mustParseInt`.
fn cron_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        ));
    }
    let n: i64 = match expr.parse() {
        Ok(n) => n,
        Err(_) => {
            return Err(format!(
                "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
                go_quote(expr)
            ));
        }
    };
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n as u64)
}

fn cron_int_or_name(expr: &str, b: &CronBounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    cron_int(expr)
}

fn cron_range(expr: &str, b: &CronBounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = b.min;
        end = b.max;
    } else {
        start = cron_int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => cron_int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Go's `time.ParseDuration` (validity only).
fn go_duration_ok(s: &str) -> Result<(), String> {
    let orig = s;
    let err = || format!("time: invalid duration {}", go_quote(orig));
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(err());
        }
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                go_quote(unit),
                go_quote(orig)
            ));
        }
        rest = &rest[unit_end..];
    }
    Ok(())
}

/// `cron.ParseStandard`: `Err` carries robfig's error text.
fn parse_cron_schedule(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(space) = spec.find(' ') else {
            return Err(format!(
                "provided bad location {}: unknown time zone {}",
                &spec[eq + 1..],
                &spec[eq + 1..]
            ));
        };
        let loc = &spec[eq + 1..space];
        if !time_zone_exists(loc) || loc.is_empty() {
            return Err(format!(
                "provided bad location {loc}: unknown time zone {loc}"
            ));
        }
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            s if s.starts_with("@every ") => go_duration_ok(&s["@every ".len()..])
                .map_err(|e| format!("failed to parse duration {s}: {e}")),
            s => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        for expr in field.split(',').filter(|e| !e.is_empty()) {
            cron_range(expr, bounds)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Validates an object on create (`old = None`) or update (`old = Some(stored object)`), after
/// defaulting. Returns all field errors (empty = valid), including immutable-field checks on update.
/// The stored object is defaulted (on a copy) before the comparison, as Kubernetes does when it
/// reads objects back from storage.
pub fn validate(
    group: &str,
    kind: &str,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    // Like Kubernetes, compare against the stored object as it decodes: with defaults applied
    // (objects stored before a default existed must not look changed).
    let defaulted_old = old.map(|o| {
        let mut o = without_managed_fields(o);
        crate::api::defaults::apply_defaults(group, kind, &mut o);
        o
    });
    let old = defaulted_old.as_ref();
    match (group, kind, old) {
        ("", "Pod", None) => validate_pod_create(obj, namespaced),
        ("", "Pod", Some(old)) => validate_pod_update(obj, old, namespaced),
        ("", "PodTemplate", old) => {
            let mut errs = match old {
                None => validate_object_meta(obj, namespaced, name_is_dns_subdomain),
                Some(o) => validate_object_meta_update(obj, o),
            };
            errs.extend(validate_pod_template_spec(
                at(obj, "template"),
                &Path::new("template"),
            ));
            errs
        }
        ("", "ReplicationController", None) => validate_replication_controller(obj, namespaced),
        ("", "ReplicationController", Some(old)) => {
            let mut errs = validate_object_meta_update(obj, old);
            errs.extend(validate_replication_controller_spec(at(obj, "spec")));
            errs
        }
        ("", "Service", None) => validate_service(obj, namespaced),
        ("", "Service", Some(old)) => validate_service_update(obj, old, namespaced),
        ("", "ConfigMap", None) => validate_config_map(obj, namespaced),
        ("", "ConfigMap", Some(old)) => validate_config_map_update(obj, old, namespaced),
        ("", "Secret", None) => validate_secret(obj, namespaced),
        ("", "Secret", Some(old)) => validate_secret_update(obj, old, namespaced),
        ("", "Namespace", None) => validate_namespace(obj, namespaced),
        ("", "Namespace", Some(old)) => validate_object_meta_update(obj, old),
        ("", "Node", None) => validate_node(obj, namespaced),
        ("", "Node", Some(old)) => validate_node_update(obj, old),
        ("", "ServiceAccount", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_object_meta(obj, namespaced, name_is_dns_subdomain));
            errs
        }
        ("", "Endpoints", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_endpoints(obj, namespaced));
            errs
        }
        ("", "PersistentVolumeClaim", None) => validate_pvc(obj, namespaced),
        ("", "PersistentVolumeClaim", Some(old)) => validate_pvc_update(obj, old, namespaced),
        ("", "PersistentVolume", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_persistent_volume(obj));
            errs
        }
        ("", "Event", old) | ("events.k8s.io", "Event", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_event(obj, group));
            errs
        }
        ("apps", "Deployment", old) => {
            let mut errs = match old {
                None => validate_object_meta(obj, namespaced, name_is_dns_subdomain),
                Some(o) => validate_object_meta_update(obj, o),
            };
            errs.extend(validate_deployment_spec(
                at(obj, "spec"),
                &Path::new("spec"),
            ));
            if let Some(o) = old {
                errs.extend(validate_selector_immutable(obj, o));
            }
            errs
        }
        ("apps", "ReplicaSet", old) => {
            let mut errs = match old {
                None => validate_object_meta(obj, namespaced, name_is_dns_subdomain),
                Some(o) => validate_object_meta_update(obj, o),
            };
            errs.extend(validate_replica_set_spec(
                at(obj, "spec"),
                &Path::new("spec"),
            ));
            if let Some(o) = old {
                errs.extend(validate_selector_immutable(obj, o));
            }
            errs
        }
        ("apps", "StatefulSet", None) => {
            let mut errs = validate_object_meta(obj, namespaced, name_is_dns_label);
            errs.extend(validate_statefulset_spec(
                at(obj, "spec"),
                &Path::new("spec"),
            ));
            errs
        }
        ("apps", "StatefulSet", Some(old)) => {
            let mut errs = validate_object_meta_update(obj, old);
            let (ns, os) = (at(obj, "spec"), at(old, "spec"));
            errs.extend(validate_statefulset_spec(ns, &Path::new("spec")));
            let mut clone = ns.clone();
            if let Some(m) = clone.as_object_mut() {
                for f in [
                    "replicas",
                    "template",
                    "updateStrategy",
                    "minReadySeconds",
                    "ordinals",
                    "persistentVolumeClaimRetentionPolicy",
                ] {
                    match os.get(f) {
                        Some(v) => m.insert(f.into(), v.clone()),
                        None => m.remove(f),
                    };
                }
            }
            if !sem_eq(&clone, os) {
                errs.push(forbidden(
                    &Path::new("spec"),
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
            errs
        }
        ("apps", "DaemonSet", old) => {
            let mut errs = match old {
                None => validate_object_meta(obj, namespaced, name_is_dns_subdomain),
                Some(o) => validate_object_meta_update(obj, o),
            };
            errs.extend(validate_daemonset_spec(at(obj, "spec"), &Path::new("spec")));
            if let Some(o) = old {
                errs.extend(validate_selector_immutable(obj, o));
            }
            errs
        }
        ("apps", "ControllerRevision", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_controller_revision(obj, namespaced));
            if let Some(o) = old {
                errs.extend(validate_immutable(
                    at(obj, "data"),
                    at(o, "data"),
                    &Path::new("data"),
                    bjo(at(obj, "data")),
                ));
            }
            errs
        }
        ("batch", "Job", None) => validate_job(obj, namespaced, true),
        ("batch", "Job", Some(old)) => validate_job_update(obj, old, namespaced),
        ("batch", "CronJob", None) => {
            let mut errs = validate_object_meta(obj, namespaced, name_is_dns_subdomain);
            errs.extend(validate_cronjob_spec(
                at(obj, "spec"),
                None,
                &Path::new("spec"),
            ));
            let name = st(at(obj, "metadata"), "name");
            if name.len() > 52 {
                errs.push(invalid(
                    &Path::new("metadata.name"),
                    bs(name),
                    "must be no more than 52 characters",
                ));
            }
            errs
        }
        ("batch", "CronJob", Some(old)) => {
            let mut errs = validate_object_meta_update(obj, old);
            errs.extend(validate_cronjob_spec(
                at(obj, "spec"),
                Some(at(old, "spec")),
                &Path::new("spec"),
            ));
            errs
        }
        ("coordination.k8s.io", "Lease", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_lease(obj, namespaced));
            errs
        }
        ("networking.k8s.io", "Ingress", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_ingress(obj, namespaced));
            errs
        }
        ("discovery.k8s.io", "EndpointSlice", old) => {
            let mut errs = old
                .map(|o| validate_object_meta_update(obj, o))
                .unwrap_or_default();
            errs.extend(validate_endpoint_slice(obj, namespaced));
            if let Some(o) = old {
                let (n, ot) = (at(obj, "addressType"), at(o, "addressType"));
                errs.extend(validate_immutable(
                    n,
                    ot,
                    &Path::new("addressType"),
                    value_bv(n),
                ));
            }
            errs
        }
        (_, _, None) => validate_object_meta(obj, namespaced, name_is_dns_subdomain),
        (_, _, Some(old)) => validate_object_meta_update(obj, old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::defaults::apply_defaults;
    use serde_json::json;

    #[test]
    fn semantic_equality_is_equality_of_normalized_values() {
        let values = [
            json!(null),
            json!({}),
            json!([]),
            json!([null]),
            json!({"a": null}),
            json!({"a": {}}),
            json!({"a": {"b": []}}),
            json!({"a": 1}),
            json!({"a": 1.0}),
            json!({"a": 1.5}),
            json!({"a": "1"}),
            json!({"a": 1, "b": null}),
            json!({"b": {}, "a": 1}),
            json!({"a": 1, "b": 2}),
            json!({"a": [1, {"c": null}]}),
            json!({"a": [1, {}]}),
            json!({"a": [1, {"c": 0}]}),
            json!({"a": [{}, 1]}),
            json!(""),
            json!(0),
            json!(false),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(
                    sem_eq(a, b),
                    normalize(a) == normalize(b),
                    "{a} against {b}"
                );
            }
        }
    }

    fn check(
        group: &str,
        kind: &str,
        namespaced: bool,
        mut obj: Value,
        old: Option<&Value>,
    ) -> Vec<String> {
        apply_defaults(group, kind, &mut obj);
        validate(group, kind, namespaced, &obj, old)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(group, kind, &mut obj);
        obj
    }

    fn deployment(name: &str, selector: Value, labels: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": selector,
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
            }
        })
    }

    fn pod(name: &str, containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"containers": containers}})
    }

    #[test]
    fn name_messages() {
        let errs = check(
            "apps",
            "Deployment",
            true,
            deployment("Foo", json!({"matchLabels": {"a": "b"}}), json!({"a": "b"})),
            None,
        );
        assert_eq!(
            errs,
            vec![
                "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(
            is_dns1123_label("Ab_c"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
        assert!(is_dns1123_subdomain("my.example-1.com").is_empty());
        // Services use DNS-1035 labels; namespaces DNS-1123 labels.
        let svc = json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
        assert_eq!(
            check("", "Service", true, svc, None),
            vec![
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        let ns = json!({"metadata": {"name": "team.a"}});
        assert_eq!(
            check("", "Namespace", false, ns, None),
            vec!["metadata.name: Invalid value: \"team.a\": must not contain dots"]
        );
        // generateName is validated with a masked trailing dash; a name is required.
        let gen_only = json!({"metadata": {"generateName": "web-", "namespace": "default"}});
        assert_eq!(
            check("", "ConfigMap", true, gen_only, None),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        // Cluster-scoped kinds may not carry a namespace.
        let node = json!({"metadata": {"name": "n1", "namespace": "default"}});
        assert_eq!(
            check("", "Node", false, node, None),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn label_and_annotation_messages() {
        assert_eq!(
            validate_label_key("a/b/c"),
            vec!["a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
        assert_eq!(
            validate_label_key("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(validate_label_key("Example.com/x").len(), 1);
        assert!(validate_label_key("app.kubernetes.io/name").is_empty());
        assert!(validate_label_value("").is_empty());
        assert_eq!(
            validate_label_value("-bad"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
        );
        assert_eq!(
            validate_label_value(&"x".repeat(64)),
            vec!["must be no more than 63 bytes".to_string()]
        );
        assert_eq!(
            validate_qualified_name(&"y".repeat(64)),
            vec!["name part must be no more than 63 bytes".to_string()]
        );

        let cm = json!({"metadata": {"name": "c", "namespace": "default", "labels": {"ok": "bad value"},
            "annotations": {"big": "x".repeat(300 * 1024)}}});
        let errs = check("", "ConfigMap", true, cm, None);
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].starts_with(
                "metadata.labels: Invalid value: \"bad value\": a valid label must be"
            )
        );
        assert_eq!(
            errs[1],
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn selector_mismatch_and_empty_selector() {
        let d = deployment(
            "web",
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "other"}),
        );
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
            ]
        );
        let d = deployment("web", json!({}), json!({"app": "web"}));
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
        );
        let mut d = deployment("web", json!({}), json!({"app": "web"}));
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let d = deployment(
            "web",
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
            json!({"tier": "fe"}),
        );
        assert!(check("apps", "Deployment", true, d, None).is_empty());
        let d = deployment(
            "web",
            json!({"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}),
            json!({"tier": "fe"}),
        );
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid selector operator",
                "spec.selector: Invalid value: {\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Bogus\"}]}: invalid label selector"
            ]
        );
    }

    #[test]
    fn deployment_strategy_and_update() {
        let mut d = deployment("web", json!({"matchLabels": {"a": "b"}}), json!({"a": "b"}));
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        d["spec"]["replicas"] = json!(-1);
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"
            ]
        );
        let mut d = deployment("web", json!({"matchLabels": {"a": "b"}}), json!({"a": "b"}));
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ]
        );
        let mut d = deployment("web", json!({"matchLabels": {"a": "b"}}), json!({"a": "b"}));
        d["spec"]["strategy"] = json!({"type": "Canary"});
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            check("apps", "Deployment", true, d, None),
            vec![
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy: Unsupported value: {\"Type\":\"Canary\",\"RollingUpdate\":null}: supported values: \"Recreate\", \"RollingUpdate\""
            ]
        );
        // Selector is immutable in apps/v1.
        let old = defaulted(
            "apps",
            "Deployment",
            deployment(
                "web",
                json!({"matchLabels": {"a": "b"}}),
                json!({"a": "b", "c": "d"}),
            ),
        );
        let new = deployment(
            "web",
            json!({"matchLabels": {"c": "d"}}),
            json!({"a": "b", "c": "d"}),
        );
        assert_eq!(
            check("apps", "Deployment", true, new, Some(&old)),
            vec![
                "spec.selector: Invalid value: {\"matchLabels\":{\"c\":\"d\"}}: field is immutable"
            ]
        );
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        assert!(check("apps", "Deployment", true, scaled, Some(&old)).is_empty());
    }

    #[test]
    fn pod_container_errors() {
        let p = pod("p", json!([{"name": "a"}]));
        assert_eq!(
            check("", "Pod", true, p, None),
            vec!["spec.containers[0].image: Required value"]
        );
        let p = pod("p", json!([]));
        assert_eq!(
            check("", "Pod", true, p, None),
            vec!["spec.containers: Required value"]
        );
        let mut p = pod(
            "p",
            json!([
                {"name": "Web", "image": "nginx", "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}],
                 "volumeMounts": [{"name": "missing", "mountPath": "/data"}],
                 "resources": {"requests": {"cpu": "2", "memory": "1Gix"}, "limits": {"cpu": "1"}},
                 "env": [{"name": "A=B", "value": "x"}]},
                {"name": "web", "image": "nginx"}
            ]),
        );
        p["spec"]["initContainers"] = json!([{"name": "web", "image": "busybox"}]);
        p["spec"]["restartPolicy"] = json!("Sometimes");
        p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]);
        p["spec"]["activeDeadlineSeconds"] = json!(0);
        p["spec"]["terminationGracePeriodSeconds"] = json!(-5);
        let errs = check("", "Pod", true, p, None);
        let expected = vec![
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"1Gix\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.initContainers[0].name: Duplicate value: \"web\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        ];
        assert_eq!(errs, expected);
    }

    #[test]
    fn pod_update_rules() {
        let old = defaulted(
            "",
            "Pod",
            pod(
                "p",
                json!([{"name": "a", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]),
            ),
        );
        // Image changes are allowed.
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        new["metadata"]["labels"] = json!({"x": "y"});
        assert!(check("", "Pod", true, new, Some(&old)).is_empty());
        // Other spec changes are forbidden.
        let mut new = old.clone();
        new["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(8080);
        let errs = check("", "Pod", true, new, Some(&old));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ));
        assert!(errs[0].contains("containers[0].ports[0].containerPort"));
        // Adding a container.
        let mut new = old.clone();
        new["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "b", "image": "b"}));
        assert_eq!(
            check("", "Pod", true, new, Some(&old)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        // activeDeadlineSeconds may only shrink; tolerations may only be added.
        let mut with_deadline = old.clone();
        with_deadline["spec"]["activeDeadlineSeconds"] = json!(100);
        let mut new = with_deadline.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(200);
        assert_eq!(
            check("", "Pod", true, new, Some(&with_deadline)),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "k", "operator": "Exists"}));
        assert!(check("", "Pod", true, new, Some(&old)).is_empty());
        let mut tolerant = old.clone();
        tolerant["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "gpu", "operator": "Equal", "value": "a"}));
        let old = tolerant;
        let mut new = old.clone();
        new["spec"]["tolerations"][2]["value"] = json!("b");
        assert_eq!(
            check("", "Pod", true, new, Some(&old)),
            vec![
                "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
            ]
        );
        // Name is immutable.
        let mut new = old.clone();
        new["metadata"]["name"] = json!("q");
        assert_eq!(
            check("", "Pod", true, new, Some(&old))[0],
            "metadata.name: Invalid value: \"q\": field is immutable"
        );
    }

    #[test]
    fn update_against_undefaulted_stored_object() {
        // A pod stored without defaults (e.g. by an older server) can still get a label update.
        let stored = pod("p", json!([{"name": "a", "image": "nginx:1.25"}]));
        let mut new = stored.clone();
        new["metadata"]["labels"] = json!({"tier": "web"});
        assert!(check("", "Pod", true, new, Some(&stored)).is_empty());
    }

    fn job(name: &str, uid: &str, restart: &str) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"template": {"spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl:5.34"}]}}}
        })
    }

    #[test]
    fn job_rules() {
        assert!(check("batch", "Job", true, job("pi", "u-1", "Never"), None).is_empty());
        let mut no_restart = job("pi", "u-1", "");
        no_restart["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        assert_eq!(
            check("batch", "Job", true, no_restart, None),
            vec![
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
        let mut bad = job("pi", "u-1", "Never");
        bad["spec"]["parallelism"] = json!(-1);
        bad["spec"]["completionMode"] = json!("Indexed");
        bad["spec"]["backoffLimit"] = json!(-2);
        let errs = check("batch", "Job", true, bad, None);
        assert_eq!(
            errs,
            vec![
                "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
                "spec.completions: Required value: when completion mode is Indexed",
            ]
        );
        // A generated selector that was tampered with.
        let mut tampered = defaulted("batch", "Job", job("pi", "u-1", "Never"));
        tampered["spec"]["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}});
        let errs: Vec<String> = validate("batch", "Job", true, &tampered, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.selector: Invalid value: {\"matchLabels\":{\"batch.kubernetes.io/controller-uid\":\"other\"}}: `selector` not auto-generated",
                "spec.template.metadata.labels: Invalid value: {\"batch.kubernetes.io/controller-uid\":\"u-1\",\"batch.kubernetes.io/job-name\":\"pi\",\"controller-uid\":\"u-1\",\"job-name\":\"pi\"}: `selector` does not match template `labels`",
            ]
        );
    }

    #[test]
    fn job_template_immutable() {
        let old = defaulted("batch", "Job", job("pi", "u-1", "Never"));
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        let errs = check("batch", "Job", true, new, Some(&old));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("spec.template: Invalid value: {\""),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("\"image\":\"perl:5.36\""));
        assert!(errs[0].ends_with(": field is immutable"));
        // Parallelism and suspension may change; completions may not.
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(3);
        new["spec"]["suspend"] = json!(true);
        assert!(check("batch", "Job", true, new, Some(&old)).is_empty());
        let mut new = old.clone();
        new["spec"]["completions"] = json!(4);
        assert_eq!(
            check("batch", "Job", true, new, Some(&old)),
            vec!["spec.completions: Invalid value: 4: field is immutable"]
        );
        // A suspended job that never started may change scheduling directives, but not containers.
        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        let mut new = suspended.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        new["spec"]["template"]["metadata"]["annotations"] = json!({"note": "x"});
        assert!(check("batch", "Job", true, new.clone(), Some(&suspended)).is_empty());
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        assert_eq!(check("batch", "Job", true, new, Some(&suspended)).len(), 1);
    }

    #[test]
    fn cronjob_rules() {
        let cj = |schedule: &str| {
            json!({"metadata": {"name": "nightly", "namespace": "default"}, "spec": {"schedule": schedule,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "a", "image": "busybox:1.36"}]}}}}}})
        };
        for ok in [
            "*/5 * * * *",
            "0 3 * * 1-5",
            "@hourly",
            "@every 1h30m",
            "15 2 1,15 jan-jun ?",
            "0 0 * * SUN",
        ] {
            assert!(
                check("batch", "CronJob", true, cj(ok), None).is_empty(),
                "{ok}"
            );
        }
        let cases = [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@weird", "unrecognized descriptor: @weird"),
            (
                "@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
            ),
        ];
        for (schedule, msg) in cases {
            assert_eq!(
                check("batch", "CronJob", true, cj(schedule), None),
                vec![format!(
                    "spec.schedule: Invalid value: {}: {msg}",
                    go_quote(schedule)
                )],
                "{schedule}"
            );
        }
        let mut with_tz = cj("0 0 * * *");
        with_tz["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
        with_tz["spec"]["concurrencyPolicy"] = json!("Sometimes");
        let errs = check("batch", "CronJob", true, with_tz, None);
        assert_eq!(
            errs[1],
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
        );
        let mut manual = cj("0 0 * * *");
        manual["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] =
            json!("Always");
        assert_eq!(
            check("batch", "CronJob", true, manual, None),
            vec![
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
        let long = json!({"metadata": {"name": "n".repeat(53), "namespace": "default"}, "spec": cj("@daily")["spec"].clone()});
        assert_eq!(
            check("batch", "CronJob", true, long, None),
            vec![format!(
                "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
                "n".repeat(53)
            )]
        );
    }

    #[test]
    fn service_rules() {
        let svc = |spec: Value| json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        assert!(
            check(
                "",
                "Service",
                true,
                svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "",
                "Service",
                true,
                svc(json!({"selector": {"app": "web"}})),
                None
            ),
            vec!["spec.ports: Required value"]
        );
        assert!(check("", "Service", true, svc(json!({"clusterIP": "None"})), None).is_empty());
        assert!(
            check(
                "",
                "Service",
                true,
                svc(json!({"type": "ExternalName", "externalName": "db.example.com."})),
                None
            )
            .is_empty()
        );
        let errs = check(
            "",
            "Service",
            true,
            svc(
                json!({"type": "Fancy", "ports": [{"port": 80}, {"port": 80, "name": "x"}, {"port": 0, "name": "x", "targetPort": "HTTP"}]}),
            ),
            None,
        );
        assert_eq!(
            errs,
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[2].name: Duplicate value: \"x\"",
                "spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].targetPort: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.ports[2].targetPort: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
                "spec.type: Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                "spec.ports[1]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}",
            ]
        );
        // clusterIP may not change once allocated.
        let mut old = defaulted(
            "",
            "Service",
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
        );
        old["spec"]["clusterIP"] = json!("10.96.0.10");
        old["spec"]["clusterIPs"] = json!(["10.96.0.10"]);
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.96.0.11");
        new["spec"].as_object_mut().unwrap().remove("clusterIPs");
        assert_eq!(
            check("", "Service", true, new, Some(&old)),
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
        );
        let mut new = old.clone();
        new["spec"]["ports"][0]["port"] = json!(8080);
        assert!(check("", "Service", true, new, Some(&old)).is_empty());
        assert_eq!(
            check(
                "",
                "Service",
                true,
                svc(json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})),
                None
            ),
            vec![
                "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": Cluster is not configured for dual stack services"
            ]
        );
    }

    #[test]
    fn config_and_secret_rules() {
        let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"good.key": "1", "bad key": "2"}});
        assert_eq!(
            check("", "ConfigMap", true, cm, None),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        let big = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "x".repeat(1024 * 1024 + 1)}});
        assert_eq!(
            check("", "ConfigMap", true, big, None),
            vec!["[]: Too long: may not be more than 1048576 bytes"]
        );
        let old = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "1"}});
        let new = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "2"}});
        assert_eq!(
            check("", "ConfigMap", true, new, Some(&old)),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let tls = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            check("", "Secret", true, tls, None),
            vec!["data[tls.key]: Required value"]
        );
        let docker = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": "not json"}});
        assert_eq!(
            check("", "Secret", true, docker, None),
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')"
            ]
        );
        let docker = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": "[]"}});
        assert_eq!(
            check("", "Secret", true, docker, None),
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
            ]
        );
        let old = defaulted(
            "",
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "default"}}),
        );
        let new = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}});
        assert_eq!(
            check("", "Secret", true, new, Some(&old)),
            vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
        );
    }

    #[test]
    fn resources_and_quantities_in_pods() {
        let p = pod(
            "p",
            json!([{"name": "a", "image": "a", "resources": {
                "limits": {"nvidia.com/gpu": "1", "memory": "-1Gi", "hugepages-2Mi": "3Mi"},
                "requests": {"nvidia.com/gpu": "2", "storage": "1Gi"}}}]),
        );
        let errs = check("", "Pod", true, p, None);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources.limits[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                // Pods default missing requests to their limits.
                "spec.containers[0].resources.requests[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be equal to nvidia.com/gpu limit of 1",
                "spec.containers[0].resources.requests[storage]: Invalid value: \"storage\": must be a standard resource for containers",
            ]
        );
    }

    #[test]
    fn statefulset_daemonset_rules() {
        let sts = json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {
            "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}});
        assert!(check("apps", "StatefulSet", true, sts.clone(), None).is_empty());
        let old = defaulted("apps", "StatefulSet", sts.clone());
        let mut new = old.clone();
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            check("apps", "StatefulSet", true, new, Some(&old)),
            vec![
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(check("apps", "StatefulSet", true, new, Some(&old)).is_empty());
        let mut dotted = sts.clone();
        dotted["metadata"]["name"] = json!("db.main");
        assert_eq!(
            check("apps", "StatefulSet", true, dotted, None),
            vec!["metadata.name: Invalid value: \"db.main\": must not contain dots"]
        );

        let ds = json!({"metadata": {"name": "agent", "namespace": "default"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}});
        assert_eq!(
            check("apps", "DaemonSet", true, ds, None),
            vec![
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            ]
        );
    }

    #[test]
    fn valid_objects_pass() {
        let cases = vec![
            (
                "",
                "Namespace",
                false,
                json!({"metadata": {"name": "team-a"}}),
            ),
            (
                "",
                "Node",
                false,
                json!({"metadata": {"name": "node-1"}, "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}}}),
            ),
            (
                "",
                "ServiceAccount",
                true,
                json!({"metadata": {"name": "robot", "namespace": "default"}}),
            ),
            (
                "",
                "Secret",
                true,
                json!({"metadata": {"name": "s", "namespace": "default"}, "stringData": {"password": "x"}}),
            ),
            (
                "",
                "PersistentVolumeClaim",
                true,
                json!({"metadata": {"name": "data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}),
            ),
            (
                "",
                "Endpoints",
                true,
                json!({"metadata": {"name": "web", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}),
            ),
            (
                "",
                "Event",
                true,
                json!({"metadata": {"name": "p.123", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started", "message": "ok"}),
            ),
            (
                "coordination.k8s.io",
                "Lease",
                true,
                json!({"metadata": {"name": "leader", "namespace": "kube-system"},
                "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
            ),
            (
                "networking.k8s.io",
                "Ingress",
                true,
                json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"rules": [
                {"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
            ),
            (
                "discovery.k8s.io",
                "EndpointSlice",
                true,
                json!({"metadata": {"name": "web-abc", "namespace": "default"},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}], "ports": [{"port": 80}]}),
            ),
            (
                "apps",
                "ControllerRevision",
                true,
                json!({"metadata": {"name": "web-1", "namespace": "default"}, "data": {}, "revision": 1}),
            ),
            (
                "",
                "Pod",
                true,
                json!({"metadata": {"name": "full", "namespace": "default"}, "spec": {
                "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["true"]},
                                   {"name": "sidecar", "image": "envoy:1", "restartPolicy": "Always", "readinessProbe": {"tcpSocket": {"port": 9901}}}],
                "containers": [{"name": "app", "image": "registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                    "envFrom": [{"configMapRef": {"name": "cfg"}}],
                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/healthz"}},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                            {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.conf"}]}}],
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": "x"}}}]}}),
            ),
        ];
        for (group, kind, namespaced, obj) in cases {
            assert_eq!(
                check(group, kind, namespaced, obj, None),
                Vec::<String>::new(),
                "{kind}"
            );
        }
    }

    #[test]
    fn quantity_parsing() {
        let table: &[(&str, Option<i128>, &str)] = &[
            ("0", Some(0), "0"),
            ("1", Some(1000), "1"),
            ("100m", Some(100), "100m"),
            ("0.5", Some(500), "500m"),
            ("1.5", Some(1500), "1500m"),
            ("2000m", Some(2000), "2"),
            ("1k", Some(1_000_000), "1k"),
            ("64Mi", Some(64 * 1024 * 1024 * 1000), "64Mi"),
            ("1024Mi", Some(1024 * 1024 * 1024 * 1000), "1Gi"),
            ("1536Mi", Some(1536 * 1024 * 1024 * 1000), "1536Mi"),
            ("1.5Gi", Some(1536 * 1024 * 1024 * 1000), "1536Mi"),
            ("512", Some(512_000), "512"),
            ("0.5Ki", Some(512_000), "512"),
            ("1e3", Some(1_000_000), "1e3"),
            ("1.5e3", Some(1_500_000), "1500"),
            ("1E3", Some(1_000_000), "1E3"),
            ("1E", Some(1_000_000_000_000_000_000_000), "1E"),
            ("1G", Some(1_000_000_000_000), "1G"),
            ("1000000", Some(1_000_000_000), "1M"),
            ("1n", Some(1), "1n"),
            ("0.0001", Some(1), "100u"),
            ("-1", Some(-1000), "-1"),
            ("+2", Some(2000), "+2"),
            (".5", Some(500), "500m"),
            ("5.", Some(5000), "5."),
            (" 3 ", Some(3000), "3"),
            ("", None, ""),
            ("1K", None, ""),
            ("1Mb", None, ""),
            ("1.2.3", None, ""),
            ("abc", None, ""),
            ("1e", None, ""),
            ("1 Gi", None, ""),
            ("--1", None, ""),
        ];
        for (input, milli, canonical) in table {
            assert_eq!(parse_quantity(input), *milli, "parse {input:?}");
            if milli.is_some() {
                assert_eq!(
                    canonical_quantity(input).as_deref(),
                    Some(*canonical),
                    "canonical {input:?}"
                );
            }
        }
        assert_eq!(default_resource_quantity("0.0001").as_deref(), Some("1m"));
        assert_eq!(default_resource_quantity("1.5m").as_deref(), Some("2m"));
        assert_eq!(default_resource_quantity("100m").as_deref(), Some("100m"));
        assert_eq!(
            default_resource_quantity("8388608Ki").as_deref(),
            Some("8Gi")
        );
        let a = Quantity::parse("1Gi").unwrap();
        let b = Quantity::parse("1073741824").unwrap();
        let c = Quantity::parse("1G").unwrap();
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_eq!(a.cmp(&c), Ordering::Greater);
        assert_eq!(
            Quantity::parse("-1")
                .unwrap()
                .cmp(&Quantity::parse("1m").unwrap()),
            Ordering::Less
        );
    }

    #[test]
    fn messages_and_rendering() {
        let e = FieldError {
            kind: ErrorKind::Invalid,
            field: "spec.replicas".into(),
            value: Some("-1".into()),
            detail: "must be greater than or equal to 0".into(),
        };
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(ErrorKind::Required.reason(), "FieldValueRequired");
        assert_eq!(ErrorKind::NotSupported.reason(), "FieldValueNotSupported");
        let r = FieldError {
            kind: ErrorKind::Required,
            field: "spec.x".into(),
            value: None,
            detail: String::new(),
        };
        assert_eq!(
            invalid_message("apps", "Deployment", "web", std::slice::from_ref(&e)),
            format!("Deployment.apps \"web\" is invalid: {e}")
        );
        assert_eq!(
            invalid_message("", "Pod", "p", &[e.clone(), r.clone(), r.clone()]),
            format!("Pod \"p\" is invalid: [{e}, spec.x: Required value]")
        );
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
        assert_eq!(
            go_json(&json!({"b": 1, "a": "<x>"}), true),
            "{\"a\":\"\\u003cx\\u003e\",\"b\":1}"
        );
    }
}
