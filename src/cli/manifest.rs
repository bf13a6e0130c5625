//! Reading manifests: files, directories and stdin; multi-document YAML or JSON;
//! `kind: List` expansion.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::CliError;

/// One object read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where it came from: a file path or `STDIN` (used in error messages).
    pub source: String,
    pub object: Value,
}

impl Manifest {
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.metadata_str("name")
    }

    pub fn namespace(&self) -> &str {
        self.metadata_str("namespace")
    }

    fn metadata_str(&self, field: &str) -> &str {
        self.object
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Reads every `-f` argument in order: a file, a directory (its `*.yaml`, `*.yml` and
/// `*.json` files in name order, not recursing) or `-` for stdin.
pub fn read_all(filenames: &[PathBuf]) -> Result<Vec<Manifest>, CliError> {
    let mut out = Vec::new();
    for path in filenames {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| CliError::Read {
                    path: "STDIN".into(),
                    source,
                })?;
            out.extend(parse_source("STDIN", &text)?);
        } else if path.is_dir() {
            for file in manifest_files(path)? {
                out.extend(read_file(&file)?);
            }
        } else if path.exists() {
            out.extend(read_file(path)?);
        } else {
            return Err(CliError::PathNotFound(path.display().to_string()));
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Vec<Manifest>, CliError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Read {
        path: source.clone(),
        source: e,
    })?;
    parse_source(&source, &text)
}

/// The manifest files directly inside `dir`, sorted by name.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let read_err = |source| CliError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one source into objects, checking each has `apiVersion` and `kind`.
pub fn parse_source(source: &str, text: &str) -> Result<Vec<Manifest>, CliError> {
    let objects = split_documents(text).map_err(|message| CliError::Parse {
        source_name: source.to_string(),
        message,
    })?;
    let mut out = Vec::new();
    for object in objects {
        let mut missing = Vec::new();
        for field in ["apiVersion", "kind"] {
            if object
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                missing.push(format!("{field} not set"));
            }
        }
        if !missing.is_empty() {
            return Err(CliError::Invalid {
                source_name: source.to_string(),
                message: format!("error validating data: [{}]", missing.join(", ")),
            });
        }
        out.push(Manifest {
            source: source.to_string(),
            object,
        });
    }
    Ok(out)
}

/// Splits a YAML stream (or a stream of JSON objects) into objects, skipping empty
/// documents and expanding lists (`kind: List` and other `*List` kinds with `items`).
///
/// Plain YAML scalars are read the way kubectl reads them (YAML 1.1): `yes`/`no`/`on`/
/// `off`/`y`/`n` are booleans, `0644` is octal (420), `1_000` is 1000; quoted scalars
/// stay strings.
pub fn split_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    if text.trim_start().starts_with('{') {
        for doc in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            docs.push(doc.map_err(|e| e.to_string())?);
        }
    } else {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let seed = yaml11::ValueSeed { source: text };
            docs.push(seed.deserialize(doc).map_err(|e| e.to_string())?);
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        expand(doc, &mut out)?;
    }
    Ok(out)
}

fn expand(doc: Value, out: &mut Vec<Value>) -> Result<(), String> {
    match doc {
        Value::Null => Ok(()),
        Value::Object(ref map) if map.is_empty() => Ok(()),
        Value::Object(mut map) => {
            let is_list = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && map
                    .get("items")
                    .is_some_and(|i| i.is_array() || i.is_null());
            if !is_list {
                out.push(Value::Object(map));
                return Ok(());
            }
            if let Some(Value::Array(items)) = map.remove("items") {
                for item in items {
                    expand(item, out)?;
                }
            }
            Ok(())
        }
        other => Err(format!(
            "expected an object, got {}",
            match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            }
        )),
    }
}

/// YAML 1.1 scalar resolution on top of serde_yaml (which implements YAML 1.2).
///
/// serde_yaml hands plain scalars it doesn't resolve itself to the visitor as strings
/// borrowed from the source text; the character before such a string tells whether it
/// was quoted, so only plain scalars are re-resolved.
mod yaml11 {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    /// Deserializes one YAML document into a JSON value, resolving plain scalars like
    /// YAML 1.1. `source` must be the text the deserializer reads.
    #[derive(Clone, Copy)]
    pub struct ValueSeed<'s> {
        pub source: &'s str,
    }

    impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for ValueSeed<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a YAML value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
            Ok(float(v as f64))
        }

        fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
            Ok(float(v as f64))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(float(v))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
            if self.is_plain(v) {
                Ok(resolve_plain(v))
            } else {
                Ok(Value::String(v.to_string()))
            }
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut map = Map::new();
            let mut merges = Vec::new();
            while let Some(key) = access.next_key_seed(self)? {
                let value = access.next_value_seed(self)?;
                let key = key_string(key);
                if key == "<<" {
                    merges.push(value);
                } else {
                    map.insert(key, value);
                }
            }
            // `<<: *anchor` (or a list of anchors) merges keys the map doesn't set.
            for merge in merges {
                let sources = match merge {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for source in sources {
                    if let Value::Object(entries) = source {
                        for (k, v) in entries {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Ok(Value::Object(map))
        }
    }

    impl ValueSeed<'_> {
        /// Whether `v` (borrowed from the source) was written as a plain scalar: not
        /// preceded by a quote, and not explicitly tagged (`!!str 0644`).
        fn is_plain(&self, v: &str) -> bool {
            let start = (v.as_ptr() as usize).wrapping_sub(self.source.as_ptr() as usize);
            let Some(before) = self.source.get(..start) else {
                return false;
            };
            if before.ends_with(['\'', '"']) {
                return false;
            }
            let previous_token = before
                .trim_end_matches([' ', '\t'])
                .rsplit([' ', '\t', '\n', ':', '-', ',', '[', '{'])
                .next()
                .unwrap_or("");
            !previous_token.starts_with('!')
        }
    }

    fn float(v: f64) -> Value {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }

    /// Map keys are strings in JSON: other scalars are written out (as kubectl does).
    fn key_string(key: Value) -> String {
        match key {
            Value::String(s) => s,
            Value::Null => "null".to_string(),
            other => other.to_string(),
        }
    }

    /// A plain scalar serde_yaml left as a string, resolved the YAML 1.1 way.
    pub fn resolve_plain(v: &str) -> Value {
        const TRUE: &[&str] = &["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"];
        const FALSE: &[&str] = &["n", "N", "no", "No", "NO", "off", "Off", "OFF"];
        if TRUE.contains(&v) {
            return Value::Bool(true);
        }
        if FALSE.contains(&v) {
            return Value::Bool(false);
        }
        if !v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
            return Value::String(v.to_string());
        }
        let plain: String = v.chars().filter(|&c| c != '_').collect();
        if let Some(n) = parse_int(&plain) {
            return Value::Number(n);
        }
        if is_float(&plain)
            && let Ok(f) = plain.parse::<f64>()
        {
            return float(f);
        }
        Value::String(v.to_string())
    }

    /// Integers as Go's `strconv.ParseInt(s, 0, 64)` (or `ParseUint`) reads them:
    /// optional sign, then `0x`/`0o`/`0b` prefixes, a leading `0` for octal, else decimal.
    fn parse_int(s: &str) -> Option<Number> {
        let (negative, unsigned) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (radix, digits) = match unsigned.get(..2) {
            Some("0x" | "0X") => (16, &unsigned[2..]),
            Some("0o" | "0O") => (8, &unsigned[2..]),
            Some("0b" | "0B") => (2, &unsigned[2..]),
            _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
            _ => (10, unsigned),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let magnitude = i128::from_str_radix(digits, radix).ok()?;
        let value = if negative { -magnitude } else { magnitude };
        if let Ok(i) = i64::try_from(value) {
            return Some(i.into());
        }
        u64::try_from(value).ok().map(Number::from)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    fn is_float(s: &str) -> bool {
        let s = s.strip_prefix(['+', '-']).unwrap_or(s);
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let mantissa_ok = match mantissa.split_once('.') {
            Some(("", frac)) => digits(frac),
            Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
            None => digits(mantissa),
        };
        let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
        mantissa_ok && exponent_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_document_yaml_and_skips_empty_docs() {
        let text = "---\n# just a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  on: yes\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n...\n";
        let docs = split_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "a");
        // As with kubectl (YAML 1.1), plain `on` and `yes` are booleans.
        assert_eq!(docs[0]["data"]["true"], true);
        assert_eq!(docs[1]["kind"], "Deployment");
        assert!(split_documents("").unwrap().is_empty());
        assert!(split_documents("---\n---\n").unwrap().is_empty());
    }

    #[test]
    fn plain_scalars_resolve_like_kubectl() {
        let text = "mode: 0644\nquoted: '0644'\ndq: \"0644\"\ntagged: !!str 0755\nhex: 0x1F\n\
                    under: 1_000\nnine: 09\nneg: -012\nbig: 0777777777777777777777777\nu: 18446744073709551615\n\
                    yes: yes\nlabel: y\noff: Off\nq: 'on'\nf: 1_0.5\nd: 2024-01-01\n\
                    ver: 1.2.3\nt: 1:30\nplainstr: hello\nnull: ~\nlist: [on, '1', 010]\n\
                    anchor: &a {a: 1, b: 2}\nmerged: {<<: *a, b: 3}\n";
        let v = &split_documents(text).unwrap()[0];
        assert_eq!(v["mode"], 420);
        assert_eq!(v["quoted"], "0644");
        assert_eq!(v["dq"], "0644");
        assert_eq!(v["tagged"], "0755");
        assert_eq!(v["hex"], 31);
        assert_eq!(v["under"], 1000);
        assert_eq!(v["nine"], 9.0);
        assert_eq!(v["neg"], -10);
        // Too big for an integer: a float, as with Go's strconv.
        assert_eq!(v["big"], 7.777777777777778e23);
        assert_eq!(v["u"], u64::MAX);
        assert_eq!(v["true"], true, "the key `yes` is the boolean true");
        assert_eq!(v["label"], true);
        assert_eq!(v["false"], false);
        assert_eq!(v["q"], "on");
        assert_eq!(v["f"], 10.5);
        assert_eq!(v["d"], "2024-01-01");
        assert_eq!(v["ver"], "1.2.3");
        assert_eq!(v["t"], "1:30");
        assert_eq!(v["plainstr"], "hello");
        assert_eq!(v["null"], serde_json::Value::Null);
        assert_eq!(v["list"], serde_json::json!([true, "1", 8]));
        assert_eq!(v["merged"], serde_json::json!({"b": 3, "a": 1}));
    }

    #[test]
    fn expands_lists_recursively() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: b}\n---\napiVersion: v1\nkind: List\nitems: []\n";
        let docs = split_documents(text).unwrap();
        let names: Vec<_> = docs.iter().map(|d| d["metadata"]["name"].clone()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn json_streams_are_accepted() {
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}}\n\t{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"b\"}}";
        let docs = split_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["kind"], "Secret");
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(split_documents("- a\n- b\n").is_err());
        assert!(split_documents("a: [\n").is_err());
        let err = parse_source("x.yaml", "metadata:\n  name: a\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error validating \"x.yaml\": error validating data: [apiVersion not set, kind not set]"
        );
    }

    #[test]
    fn manifest_accessors() {
        let m = &parse_source(
            "STDIN",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n",
        )
        .unwrap()[0];
        assert_eq!(m.source, "STDIN");
        assert_eq!(
            (m.api_version(), m.kind(), m.name(), m.namespace()),
            ("apps/v1", "Deployment", "web", "prod")
        );
    }

    #[test]
    fn directories_are_read_in_name_order_without_recursing() {
        let dir = std::env::temp_dir().join(format!("skiff-cli-manifests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        let cm = |n: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\n");
        std::fs::write(dir.join("b.yml"), cm("b")).unwrap();
        std::fs::write(dir.join("a.yaml"), cm("a")).unwrap();
        std::fs::write(
            dir.join("c.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        std::fs::write(dir.join("nested/d.yaml"), cm("d")).unwrap();
        let got = read_all(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<_> = got.iter().map(|m| m.name().to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(got[0].source.ends_with("a.yaml"));
        let missing = read_all(&[dir.join("nope.yaml")]).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
