//! Reading manifests: files, directories and stdin; multi-document YAML or JSON;
//! `kind: List` expansion.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
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
pub fn split_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    if text.trim_start().starts_with('{') {
        for doc in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            docs.push(doc.map_err(|e| e.to_string())?);
        }
    } else {
        for doc in serde_yaml::Deserializer::from_str(text) {
            docs.push(Value::deserialize(doc).map_err(|e| e.to_string())?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_document_yaml_and_skips_empty_docs() {
        let text = "---\n# just a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  on: yes\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n...\n";
        let docs = split_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "a");
        // YAML 1.2: `yes` is a string, not a boolean.
        assert_eq!(docs[0]["data"]["on"], "yes");
        assert_eq!(docs[1]["kind"], "Deployment");
        assert!(split_documents("").unwrap().is_empty());
        assert!(split_documents("---\n---\n").unwrap().is_empty());
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
