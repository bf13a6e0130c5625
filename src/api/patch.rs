//! The three patch formats a Kubernetes `PATCH` request may carry:
//!
//! * [`json_patch()`]: RFC 6902 JSON patch (`application/json-patch+json`);
//! * [`merge_patch`]: RFC 7386 JSON merge patch (`application/merge-patch+json`);
//! * [`strategic_merge_patch`]: Kubernetes strategic merge patch
//!   (`application/strategic-merge-patch+json`), driven by the list metadata of the
//!   OpenAPI v3 schemas the server publishes.
//!
//! The module also exposes the schema helpers [`resolve`] and [`list_strategy`], which
//! server-side apply shares with strategic merge.
//!
//! Everything here works on `serde_json::Value`s and never touches storage; the API
//! layer turns a [`PatchError`] into a `Status` with [`PatchError::status_code`].

use serde_json::{Map, Value};

/// The most operations one JSON patch may hold (the limit Kubernetes enforces).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// `$patch`: `replace`, `delete` or `merge` for a map or a list element.
const PATCH_DIRECTIVE: &str = "$patch";
/// `$retainKeys`: the keys of a map that survive the patch.
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
/// `$deleteFromPrimitiveList/<field>`: values to remove from a list of primitives.
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
/// `$setElementOrder/<field>`: the order the merged list must follow.
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Errors applying a patch; each maps to an HTTP 422/400 in the API layer.
///
/// [`PatchError::status_code`] gives the HTTP status Kubernetes answers with.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch body is malformed: not JSON, or not of the shape its patch type requires.
    #[error("invalid patch: {reason}")]
    InvalidPatch {
        /// What is wrong with the patch.
        reason: String,
    },
    /// A JSON patch holds more operations than [`MAX_JSON_PATCH_OPERATIONS`].
    #[error("the JSON patch has {count} operations, more than the {max} allowed")]
    TooManyOperations {
        /// How many operations the patch holds.
        count: usize,
        /// The most that are accepted.
        max: usize,
    },
    /// A JSON patch `test` operation found a different value.
    #[error("JSON patch operation {index} (test) failed: the value at {path:?} does not match")]
    TestFailed {
        /// Zero-based index of the operation in the patch.
        index: usize,
        /// The JSON pointer the operation tested.
        path: String,
    },
    /// A JSON patch operation refers to a location that does not exist.
    #[error("JSON patch operation {index} ({op}) failed: path {path:?} does not exist")]
    PathNotFound {
        /// Zero-based index of the operation in the patch.
        index: usize,
        /// The operation name (`add`, `remove`, ...).
        op: &'static str,
        /// The JSON pointer (`path`, or `from` for move/copy) that was not found.
        path: String,
    },
    /// A JSON patch operation could not be applied for a reason other than a missing path.
    #[error("JSON patch operation {index} ({op}) failed at {path:?}: {reason}")]
    OperationFailed {
        /// Zero-based index of the operation in the patch.
        index: usize,
        /// The operation name (`add`, `remove`, ...).
        op: &'static str,
        /// The operation's target JSON pointer.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// The patch, or the object being patched, is not a JSON object.
    #[error("the {what} must be a JSON object")]
    NotAnObject {
        /// Which document: `"patch"` or `"target"`.
        what: &'static str,
    },
    /// A strategic merge directive is unknown or malformed.
    #[error("invalid {directive} directive at {path}: {reason}")]
    InvalidDirective {
        /// Where in the object the directive appears (dotted field path).
        path: String,
        /// The directive (`$patch`, `$retainKeys`, `$setElementOrder/...`, ...).
        directive: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An element of a list merged by key lacks the merge key.
    #[error("an element of the list {path} does not contain the merge key {keys}")]
    MissingMergeKey {
        /// The list's dotted field path.
        path: String,
        /// The merge key(s), comma separated.
        keys: String,
    },
    /// The patch sets a field that its own `$retainKeys` list would drop.
    #[error("the patch of {path} sets the field {key:?}, which is not in its $retainKeys list")]
    RetainKeysMismatch {
        /// The map's dotted field path.
        path: String,
        /// The field missing from `$retainKeys`.
        key: String,
    },
    /// The elements of a patch list are not in the order of its `$setElementOrder` list,
    /// or are missing from it.
    #[error("the patch of the list {path} does not agree with its $setElementOrder list")]
    SetElementOrderMismatch {
        /// The list's dotted field path.
        path: String,
    },
    /// A list cannot be merged: it mixes objects and other values.
    #[error("cannot merge the list {path}: {reason}")]
    UnmergeableList {
        /// The list's dotted field path.
        path: String,
        /// Why it cannot be merged.
        reason: String,
    },
}

impl PatchError {
    /// The HTTP status Kubernetes answers this error with: 400 for a malformed patch,
    /// 413 for a JSON patch with too many operations, 422 for a patch that is well formed
    /// but cannot be applied to this object.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::InvalidPatch { .. }
            | PatchError::NotAnObject { .. }
            | PatchError::InvalidDirective { .. }
            | PatchError::SetElementOrderMismatch { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::TestFailed { .. }
            | PatchError::PathNotFound { .. }
            | PatchError::OperationFailed { .. }
            | PatchError::MissingMergeKey { .. }
            | PatchError::RetainKeysMismatch { .. }
            | PatchError::UnmergeableList { .. } => 422,
        }
    }
}

// ---------------------------------------------------------------------------
// RFC 6902 JSON patch
// ---------------------------------------------------------------------------

/// RFC 6902 JSON patch. `patch` is the raw request body.
///
/// The body must be a JSON array of operations. Operations apply in order to a copy of
/// `target`; the first failing one aborts the whole patch. As in Kubernetes, `test` treats
/// numbers by value (`1` equals `1.0`) and a `test` of `null` against an absent object
/// member succeeds.
pub fn json_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::InvalidPatch {
            reason: format!("a JSON patch must be an array of operations: {e}"),
        })?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            count: ops.0.len(),
            max: MAX_JSON_PATCH_OPERATIONS,
        });
    }
    let mut doc = target.clone();
    for (index, op) in ops.0.iter().enumerate() {
        match op {
            json_patch::PatchOperation::Test(test) => {
                json_test(&doc, test.path.as_str(), &test.value, index)?
            }
            other => json_patch::patch_unsafe(&mut doc, std::slice::from_ref(other))
                .map_err(|e| json_patch_error(e, other, index))?,
        }
    }
    Ok(doc)
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as Op;
    match op {
        Op::Add(_) => "add",
        Op::Remove(_) => "remove",
        Op::Replace(_) => "replace",
        Op::Move(_) => "move",
        Op::Copy(_) => "copy",
        Op::Test(_) => "test",
    }
}

fn json_patch_error(
    err: json_patch::PatchError,
    op: &json_patch::PatchOperation,
    index: usize,
) -> PatchError {
    use json_patch::{PatchErrorKind as Kind, PatchOperation as Op};
    let name = op_name(op);
    let path = op.path().as_str().to_owned();
    match err.kind {
        Kind::InvalidPointer => PatchError::PathNotFound {
            index,
            op: name,
            path,
        },
        Kind::InvalidFromPointer => {
            let from = match op {
                Op::Move(m) => m.from.as_str().to_owned(),
                Op::Copy(c) => c.from.as_str().to_owned(),
                _ => path,
            };
            PatchError::PathNotFound {
                index,
                op: name,
                path: from,
            }
        }
        Kind::TestFailed => PatchError::TestFailed { index, path },
        Kind::CannotMoveInsideItself => PatchError::OperationFailed {
            index,
            op: name,
            path,
            reason: "cannot move a value into one of its own children".to_owned(),
        },
        other => PatchError::OperationFailed {
            index,
            op: name,
            path,
            reason: other.to_string(),
        },
    }
}

/// The `test` operation, with Kubernetes' (evanphx/json-patch) semantics.
fn json_test(doc: &Value, path: &str, expected: &Value, index: usize) -> Result<(), PatchError> {
    let not_found = || PatchError::PathNotFound {
        index,
        op: "test",
        path: path.to_owned(),
    };
    let failed = || PatchError::TestFailed {
        index,
        path: path.to_owned(),
    };
    let actual = match path.rsplit_once('/') {
        None => Some(doc),
        Some((parent, last)) => {
            let token = last.replace("~1", "/").replace("~0", "~");
            match doc.pointer(parent).ok_or_else(not_found)? {
                Value::Object(map) => match map.get(&token) {
                    Some(v) => Some(v),
                    // Testing an absent member against null succeeds.
                    None if expected.is_null() => return Ok(()),
                    None => return Err(failed()),
                },
                Value::Array(list) => Some(
                    canonical_index(&token)
                        .and_then(|i| list.get(i))
                        .ok_or_else(not_found)?,
                ),
                _ => None,
            }
        }
    };
    match actual {
        Some(actual) if json_equal(actual, expected) => Ok(()),
        Some(_) => Err(failed()),
        None => Err(not_found()),
    }
}

/// An RFC 6901 array index: digits without a leading zero.
fn canonical_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// JSON equality comparing numbers by value, so that `1` equals `1.0`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------
// RFC 7386 JSON merge patch
// ---------------------------------------------------------------------------

/// RFC 7386 JSON merge patch (null deletes; objects merge recursively; everything else replaces).
///
/// Key order of `target` is kept; new keys are appended in patch order.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    apply_merge_patch(&mut out, patch);
    out
}

fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.shift_remove(key);
            } else {
                apply_merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Schema helpers
// ---------------------------------------------------------------------------

/// The list-merge metadata of a property, read from its schema: used by strategic merge and by server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListStrategy {
    /// The list is replaced whole (no merge metadata, `x-kubernetes-list-type: atomic`,
    /// or `x-kubernetes-patch-strategy: replace`).
    Atomic,
    /// Elements are objects identified by these keys and merged element-wise
    /// (`x-kubernetes-patch-merge-key`, else `x-kubernetes-list-map-keys`).
    MergeByKeys(Vec<String>),
    /// Elements are values merged as a set: union, keeping order
    /// (`x-kubernetes-patch-strategy: merge` without a merge key, or `x-kubernetes-list-type: set`).
    Set,
}

/// Resolve a schema node: follows `$ref: "#/components/schemas/NAME"` and `allOf: [{"$ref": ...}]` wrappers.
///
/// References that cannot be resolved leave the node as it is (its caller then sees a
/// schema without properties, i.e. an unknown type). `#/definitions/NAME` (OpenAPI v2)
/// references are followed too.
pub fn resolve<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    let mut current = schema;
    // Bounded, so that a reference cycle cannot loop forever.
    for _ in 0..64 {
        let reference = match current.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference,
            None => {
                let wrapped = current
                    .get("allOf")
                    .and_then(Value::as_array)
                    .and_then(|all| all.first());
                match wrapped {
                    Some(inner) if current.get("properties").is_none() => {
                        current = inner;
                        continue;
                    }
                    _ => break,
                }
            }
        };
        let name = reference
            .strip_prefix("#/components/schemas/")
            .or_else(|| reference.strip_prefix("#/definitions/"));
        let target = name.and_then(|name| {
            if name.contains('~') {
                schemas.get(&name.replace("~1", "/").replace("~0", "~"))
            } else {
                schemas.get(name)
            }
        });
        match target {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

/// The `x-kubernetes-patch-strategy` values declared on a schema node or its resolved target.
fn patch_strategies<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> Vec<&'a str> {
    let declared = |s: &'a Value| s.get("x-kubernetes-patch-strategy").and_then(Value::as_str);
    declared(schema)
        .or_else(|| declared(resolve(schema, schemas)))
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads an extension from a schema node, else from its resolved target.
fn extension<'a>(
    schema: &'a Value,
    schemas: &'a Map<String, Value>,
    name: &str,
) -> Option<&'a Value> {
    schema
        .get(name)
        .or_else(|| resolve(schema, schemas).get(name))
}

/// The list strategy declared on a (resolved or unresolved) array property schema.
///
/// Strategic-merge metadata wins: `x-kubernetes-patch-strategy` containing `merge` gives
/// [`ListStrategy::MergeByKeys`] with `x-kubernetes-patch-merge-key`, or
/// [`ListStrategy::Set`] when there is no merge key; containing `replace` gives
/// [`ListStrategy::Atomic`]. Without patch metadata, `x-kubernetes-list-type` decides
/// (`map` with `x-kubernetes-list-map-keys`, `set`, `atomic`). Anything else is atomic.
pub fn list_strategy(prop_schema: &Value, schemas: &Map<String, Value>) -> ListStrategy {
    let strategies = patch_strategies(prop_schema, schemas);
    if strategies.contains(&"merge") {
        return match extension(prop_schema, schemas, "x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
        {
            Some(key) if !key.is_empty() => ListStrategy::MergeByKeys(vec![key.to_owned()]),
            _ => ListStrategy::Set,
        };
    }
    if strategies.contains(&"replace") {
        return ListStrategy::Atomic;
    }
    match extension(prop_schema, schemas, "x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => {
            let keys: Vec<String> = extension(prop_schema, schemas, "x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                ListStrategy::Atomic
            } else {
                ListStrategy::MergeByKeys(keys)
            }
        }
        Some("set") => ListStrategy::Set,
        _ => ListStrategy::Atomic,
    }
}

// ---------------------------------------------------------------------------
// Kubernetes strategic merge patch
// ---------------------------------------------------------------------------

/// Kubernetes strategic merge patch, driven by the OpenAPI v3 schemas.
/// `schemas` is the `components.schemas` map of an OpenAPI v3 document; `root` is the
/// definition name of the object's type, e.g. "io.k8s.api.apps.v1.Deployment".
/// Unknown types/paths (or root not found) fall back to JSON-merge-patch semantics for that subtree.
///
/// Semantics follow the application half of Kubernetes' `strategicpatch` package:
///
/// * maps merge recursively and `null` deletes a key;
/// * lists whose schema says `merge` with a merge key merge element-wise by key; lists of
///   primitives with `merge` are merged as sets; every other list is replaced whole;
/// * the directives `$patch` (`replace`, `delete`, `merge`), `$retainKeys`,
///   `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` are honoured and
///   never appear in the result, nor do `null`s of the patch.
///
/// Order of a merged list, as in Kubernetes: elements named by the patch follow the
/// patch's order (or the `$setElementOrder` list when given); the other live elements
/// keep their relative order and are interleaved by their live positions. New elements
/// have no live position, so without `$setElementOrder` they come before the untouched
/// live elements (`kubectl patch` adding a container puts it first). A map with
/// `$patch: delete` becomes empty (`{}`) rather than disappearing, as in Kubernetes.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schemas: &Map<String, Value>,
    root: &str,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject { what: "patch" });
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::NotAnObject { what: "target" }),
    };
    let merger = Strategic { schemas };
    let merged = merger.merge_map(Some(original), patch.clone(), schemas.get(root), "")?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// A schema node for the value being merged; `None` when the type is unknown.
type Schema<'a> = Option<&'a Value>;

/// The identity of a list element: its merge key value(s), or the value itself for lists
/// of primitives. `None` when an object lacks every merge key.
type Id = Option<Value>;

/// The result of merging one list.
struct MergedList {
    /// The merged, ordered elements.
    items: Vec<Value>,
    /// The live order `$setElementOrder` interleaves untouched elements by: the ids of the
    /// live list after `$patch: delete` removals, followed by the first new elements, one
    /// for each removed element (new elements take over the freed places, as in Kubernetes).
    live: Vec<Id>,
}

struct Strategic<'a> {
    schemas: &'a Map<String, Value>,
}

impl<'a> Strategic<'a> {
    fn resolved(&self, schema: Schema<'a>) -> Schema<'a> {
        schema.map(|s| resolve(s, self.schemas))
    }

    /// The schema of `key` in an object (`properties`) or map (`additionalProperties`).
    fn child(&self, schema: Schema<'a>, key: &str) -> Schema<'a> {
        let schema = self.resolved(schema)?;
        if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
            return Some(prop);
        }
        schema
            .get("additionalProperties")
            .filter(|ap| ap.is_object())
    }

    /// The schema of a list's elements: `items`, or (as Kubernetes does for a field whose
    /// schema has no `items`) the field's own resolved schema.
    fn items(&self, schema: Schema<'a>) -> Schema<'a> {
        let resolved = self.resolved(schema)?;
        match resolved.get("items") {
            Some(items) if items.is_object() => Some(items),
            _ => Some(resolved),
        }
    }

    fn strategy(&self, schema: Schema<'a>) -> ListStrategy {
        schema.map_or(ListStrategy::Atomic, |s| list_strategy(s, self.schemas))
    }

    /// Whether a map-valued field declares `x-kubernetes-patch-strategy: replace`.
    fn replaces_map(&self, schema: Schema<'a>) -> bool {
        schema.is_some_and(|s| patch_strategies(s, self.schemas).contains(&"replace"))
    }

    /// Merges `patch` into `original`. `original == None` means the value is absent (or
    /// not an object): the patch is then cleaned of directives and nulls. Returns `None`
    /// when the map must not exist (`$patch: delete` for an absent map).
    fn merge_map(
        &self,
        original: Option<Map<String, Value>>,
        mut patch: Map<String, Value>,
        schema: Schema<'a>,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if let Some(directive) = patch.shift_remove(PATCH_DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => {
                    let replacement = self.merge_map(None, patch, schema, path)?;
                    return Ok(Some(replacement.unwrap_or_default()));
                }
                Some("delete") => return Ok(original.map(|_| Map::new())),
                Some("merge") => {}
                _ => {
                    return Err(PatchError::InvalidDirective {
                        path: display_path(path),
                        directive: PATCH_DIRECTIVE.to_owned(),
                        reason: format!(
                            "expected \"replace\", \"delete\" or \"merge\", got {directive}"
                        ),
                    });
                }
            }
        }
        let mut original = original.unwrap_or_default();

        if let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) {
            apply_retain_keys(&mut original, &patch, &retain, path)?;
        }

        let order_keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for key in order_keys {
            let order = patch.shift_remove(&key).unwrap_or_default();
            let field = directive_field(&key, SET_ELEMENT_ORDER_PREFIX, path)?;
            self.apply_element_order(&mut original, &mut patch, field, order, schema, path)?;
        }

        for (key, value) in patch {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let field = directive_field(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX, path)?;
                let Value::Array(remove) = value else {
                    return Err(PatchError::InvalidDirective {
                        path: display_path(path),
                        directive: key.clone(),
                        reason: "expected a list of values".to_owned(),
                    });
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    let remove: Vec<Value> = remove.iter().map(normalize).collect();
                    list.retain(|v| !remove.contains(&normalize(v)));
                }
                continue;
            }
            if value.is_null() {
                original.shift_remove(&key);
                continue;
            }
            let child_path = join(path, &key);
            let child = self.child(schema, &key);
            let old = original.get_mut(&key).map(std::mem::take);
            let existed = old.is_some();
            match self.merge_value(old, value, child, &child_path)? {
                Some(new) => {
                    original.insert(key, new);
                }
                None if existed => {
                    original.shift_remove(&key);
                }
                None => {}
            }
        }
        Ok(Some(original))
    }

    /// Merges one patch value into one (possibly absent) original value.
    fn merge_value(
        &self,
        original: Option<Value>,
        patch: Value,
        schema: Schema<'a>,
        path: &str,
    ) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Object(patch) => {
                let original = match original {
                    Some(Value::Object(map)) if !self.replaces_map(schema) => Some(map),
                    _ => None,
                };
                Ok(self
                    .merge_map(original, patch, schema, path)?
                    .map(Value::Object))
            }
            Value::Array(patch) => {
                let original = match original {
                    Some(Value::Array(list)) => Some(list),
                    _ => None,
                };
                let merged = self.merge_list(original, patch, schema, path)?;
                Ok(Some(Value::Array(merged.items)))
            }
            other => Ok(Some(other)),
        }
    }

    /// Merges a patch list into a (possibly absent) original list by the list's strategy.
    fn merge_list(
        &self,
        original: Option<Vec<Value>>,
        patch: Vec<Value>,
        schema: Schema<'a>,
        path: &str,
    ) -> Result<MergedList, PatchError> {
        let item_schema = self.items(schema);
        let element_path = format!("{path}[]");
        match self.strategy(schema) {
            ListStrategy::Atomic => {
                let mut items = Vec::with_capacity(patch.len());
                for value in patch {
                    // Directive elements mean nothing in a list that is replaced.
                    if value
                        .as_object()
                        .is_some_and(|m| m.contains_key(PATCH_DIRECTIVE))
                    {
                        continue;
                    }
                    if let Some(value) =
                        self.merge_value(None, value, item_schema, &element_path)?
                    {
                        items.push(value);
                    }
                }
                Ok(MergedList {
                    items,
                    live: Vec::new(),
                })
            }
            ListStrategy::Set => {
                let original = original.unwrap_or_default();
                check_set_elements(&original, &patch, path)?;
                Ok(merge_set(original, patch))
            }
            ListStrategy::MergeByKeys(keys) => {
                let original = original.unwrap_or_default();
                let total = original.len() + patch.len();
                let objects = original
                    .iter()
                    .chain(&patch)
                    .filter(|v| v.is_object())
                    .count();
                if objects == 0 {
                    Ok(merge_set(original, patch))
                } else if objects == total {
                    self.merge_keyed(original, patch, &keys, item_schema, path)
                } else {
                    Err(PatchError::UnmergeableList {
                        path: display_path(path),
                        reason: "the elements of a list merged by key must all be objects"
                            .to_owned(),
                    })
                }
            }
        }
    }

    /// Merges lists of objects identified by `keys`, honouring `$patch` elements.
    fn merge_keyed(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        keys: &[String],
        item_schema: Schema<'a>,
        path: &str,
    ) -> Result<MergedList, PatchError> {
        let missing_key = || PatchError::MissingMergeKey {
            path: display_path(path),
            keys: keys.join(","),
        };
        let element_path = format!("{path}[]");
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        let mut deleted = 0;
        for element in patch {
            let Value::Object(mut element) = element else {
                return Err(PatchError::UnmergeableList {
                    path: display_path(path),
                    reason: "the elements of a list merged by key must all be objects".to_owned(),
                });
            };
            let Some(directive) = element.get(PATCH_DIRECTIVE) else {
                plain.push(element);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let id = key_id(&element, keys).ok_or_else(missing_key)?;
                    let before = original.len();
                    original.retain(|v| element_id(v, Some(keys)).as_ref() != Some(&id));
                    deleted += before - original.len();
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    element.shift_remove(PATCH_DIRECTIVE);
                    // A bare `{"$patch": "merge"}` only restates the default.
                    if key_id(&element, keys).is_some() {
                        plain.push(element);
                    }
                }
                _ => {
                    return Err(PatchError::InvalidDirective {
                        path: display_path(path),
                        directive: PATCH_DIRECTIVE.to_owned(),
                        reason: format!(
                            "expected \"replace\", \"delete\" or \"merge\" in a list element, got {directive}"
                        ),
                    });
                }
            }
        }
        let live: Vec<Id> = original.iter().map(|v| element_id(v, Some(keys))).collect();

        if replace {
            let mut items = Vec::with_capacity(plain.len());
            for element in plain {
                if let Some(element) = self.merge_map(None, element, item_schema, &element_path)? {
                    items.push(Value::Object(element));
                }
            }
            return Ok(MergedList { items, live });
        }

        let mut ids = live.clone();
        let mut patch_order = Vec::with_capacity(plain.len());
        let mut added = Vec::new();
        for element in plain {
            let id = key_id(&element, keys).ok_or_else(missing_key)?;
            patch_order.push(Some(id.clone()));
            match ids.iter().position(|known| known.as_ref() == Some(&id)) {
                Some(pos) => {
                    let current = match std::mem::take(&mut original[pos]) {
                        Value::Object(map) => Some(map),
                        _ => None,
                    };
                    let merged = self.merge_map(current, element, item_schema, &element_path)?;
                    original[pos] = Value::Object(merged.unwrap_or_default());
                }
                None => {
                    let merged = self.merge_map(None, element, item_schema, &element_path)?;
                    original.push(Value::Object(merged.unwrap_or_default()));
                    ids.push(Some(id.clone()));
                    added.push(Some(id));
                }
            }
        }
        let items = order_list(original, ids, &patch_order, &live);
        let mut live = live;
        live.extend(added.into_iter().take(deleted));
        Ok(MergedList { items, live })
    }

    /// Handles `$setElementOrder/<field>`: merges the field's patch list (if any) and
    /// orders the result by the given order list.
    fn apply_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        field: &str,
        order: Value,
        schema: Schema<'a>,
        path: &str,
    ) -> Result<(), PatchError> {
        let field_path = join(path, field);
        let Value::Array(order) = order else {
            return Err(PatchError::InvalidDirective {
                path: display_path(path),
                directive: format!("{SET_ELEMENT_ORDER_PREFIX}/{field}"),
                reason: "expected a list".to_owned(),
            });
        };
        let patch_list = match patch.shift_remove(field) {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(Value::Null) => {
                original.shift_remove(field);
                return Ok(());
            }
            Some(_) => {
                return Err(PatchError::InvalidPatch {
                    reason: format!(
                        "{} has a {SET_ELEMENT_ORDER_PREFIX} directive but is not a list",
                        display_path(&field_path)
                    ),
                });
            }
        };
        let original_list = match original.get_mut(field) {
            Some(Value::Array(list)) => Some(std::mem::take(list)),
            _ => None,
        };
        let child = self.child(schema, field);
        let strategy = self.strategy(child);

        let keys: Option<&[String]> = match &strategy {
            ListStrategy::MergeByKeys(keys)
                if order
                    .iter()
                    .chain(original_list.iter().flatten())
                    .chain(patch_list.iter().flatten())
                    .all(Value::is_object) =>
            {
                Some(keys)
            }
            _ => None,
        };
        let mut order_ids = Vec::with_capacity(order.len());
        for entry in &order {
            let id = element_id(entry, keys);
            if id.is_none() {
                return Err(PatchError::MissingMergeKey {
                    path: format!("{SET_ELEMENT_ORDER_PREFIX}/{}", display_path(&field_path)),
                    keys: keys.unwrap_or_default().join(","),
                });
            }
            order_ids.push(id);
        }
        if strategy != ListStrategy::Atomic
            && let Some(list) = &patch_list
        {
            check_element_order(list, &order_ids, keys, &field_path)?;
        }

        let (merged, live) = match (original_list, patch_list) {
            (Some(list), None) => {
                let live = list.iter().map(|v| element_id(v, keys)).collect();
                (list, live)
            }
            (None, Some(list)) => (
                self.merge_list(None, list, child, &field_path)?.items,
                Vec::new(),
            ),
            (Some(current), Some(list)) => {
                let merged = self.merge_list(Some(current), list, child, &field_path)?;
                (merged.items, merged.live)
            }
            (None, None) => return Ok(()),
        };
        let result = if strategy == ListStrategy::Atomic {
            merged
        } else {
            let ids = merged.iter().map(|v| element_id(v, keys)).collect();
            order_list(merged, ids, &order_ids, &live)
        };
        original.insert(field.to_owned(), Value::Array(result));
        Ok(())
    }
}

/// Applies `$retainKeys`: checks that the patch only sets listed keys, then drops the
/// unlisted keys of the original map.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let Value::Array(retain) = retain else {
        return Err(PatchError::InvalidDirective {
            path: display_path(path),
            directive: RETAIN_KEYS_DIRECTIVE.to_owned(),
            reason: "expected a list of field names".to_owned(),
        });
    };
    let retained = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(key) {
            return Err(PatchError::RetainKeysMismatch {
                path: display_path(path),
                key: key.clone(),
            });
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Checks that the (non-directive) elements of a patch list appear in its
/// `$setElementOrder` list, in the same relative order.
fn check_element_order(
    patch_list: &[Value],
    order_ids: &[Id],
    keys: Option<&[String]>,
    path: &str,
) -> Result<(), PatchError> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let mut next = 0;
    for element in patch_list {
        if element
            .as_object()
            .is_some_and(|m| m.contains_key(PATCH_DIRECTIVE))
        {
            continue;
        }
        let Some(id) = element_id(element, keys) else {
            return Err(PatchError::MissingMergeKey {
                path: display_path(path),
                keys: keys.unwrap_or_default().join(","),
            });
        };
        match order_ids[next..]
            .iter()
            .position(|o| o.as_ref() == Some(&id))
        {
            Some(offset) => next += offset + 1,
            None => {
                return Err(PatchError::SetElementOrderMismatch {
                    path: display_path(path),
                });
            }
        }
    }
    Ok(())
}

/// Checks that a list merged as a set neither mixes objects with other values nor
/// carries `$patch` elements (which only lists merged by key understand).
fn check_set_elements(original: &[Value], patch: &[Value], path: &str) -> Result<(), PatchError> {
    if patch.iter().any(|v| {
        v.as_object()
            .is_some_and(|m| m.contains_key(PATCH_DIRECTIVE))
    }) {
        return Err(PatchError::InvalidDirective {
            path: display_path(path),
            directive: PATCH_DIRECTIVE.to_owned(),
            reason: "list elements with $patch are only valid in lists merged by key".to_owned(),
        });
    }
    let objects = original
        .iter()
        .chain(patch)
        .filter(|v| v.is_object())
        .count();
    if objects != 0 && objects != original.len() + patch.len() {
        return Err(PatchError::UnmergeableList {
            path: display_path(path),
            reason: "a list merged as a set cannot mix objects with other values".to_owned(),
        });
    }
    Ok(())
}

/// Merges two lists of primitives as a set: the union, without duplicates, ordered like
/// any merged list.
fn merge_set(original: Vec<Value>, patch: Vec<Value>) -> MergedList {
    let live: Vec<Id> = original.iter().map(|v| Some(normalize(v))).collect();
    let patch_order: Vec<Id> = patch.iter().map(|v| Some(normalize(v))).collect();
    let mut items = Vec::with_capacity(original.len() + patch.len());
    let mut ids: Vec<Id> = Vec::with_capacity(items.capacity());
    for value in original.into_iter().chain(patch) {
        let id = Some(normalize(&value));
        if !ids.contains(&id) {
            ids.push(id);
            items.push(value);
        }
    }
    let items = order_list(items, ids, &patch_order, &live);
    MergedList { items, live }
}

/// Orders merged list elements (`items`, with their `ids`):
///
/// * elements named in `patch_order` follow that order;
/// * the others keep the order of `live_order`;
/// * the two runs are interleaved: an untouched element goes before a patch element when
///   both have a live position and it is the earlier one; otherwise the patch element
///   goes first.
fn order_list(
    items: Vec<Value>,
    ids: Vec<Id>,
    patch_order: &[Id],
    live_order: &[Id],
) -> Vec<Value> {
    let position = |order: &[Id], id: &Id| {
        id.as_ref()
            .and_then(|id| order.iter().position(|o| o.as_ref() == Some(id)))
    };
    // (position in the patch order or in the live order, live position, element)
    let mut from_patch = Vec::new();
    let mut untouched = Vec::new();
    for (item, id) in items.into_iter().zip(ids) {
        let live = position(live_order, &id);
        match position(patch_order, &id) {
            Some(rank) => from_patch.push((rank, live, item)),
            None => untouched.push((live.unwrap_or(usize::MAX), live, item)),
        }
    }
    from_patch.sort_by_key(|(rank, _, _)| *rank);
    untouched.sort_by_key(|(rank, _, _)| *rank);

    let mut out = Vec::with_capacity(from_patch.len() + untouched.len());
    let mut left = untouched.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l, _)), Some((_, r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(_, _, item)| item));
    }
    out
}

/// The identity of a list element: by merge keys for keyed lists, else the value itself.
fn element_id(value: &Value, keys: Option<&[String]>) -> Id {
    match keys {
        Some(keys) => value.as_object().and_then(|m| key_id(m, keys)),
        None => Some(normalize(value)),
    }
}

/// The merge-key values of an object, or `None` when it has none of the keys.
fn key_id(map: &Map<String, Value>, keys: &[String]) -> Id {
    let mut found = false;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        match map.get(key) {
            Some(value) => {
                found = true;
                values.push(normalize(value));
            }
            None => values.push(Value::Null),
        }
    }
    found.then_some(Value::Array(values))
}

/// Normalizes numbers to floats so that `80` and `80.0` identify the same element,
/// as they do in Kubernetes (which decodes JSON numbers to float64).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        other => other.clone(),
    }
}

/// The field named by a `<prefix>/<field>` directive key.
fn directive_field<'k>(key: &'k str, prefix: &str, path: &str) -> Result<&'k str, PatchError> {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|field| !field.is_empty())
        .ok_or_else(|| PatchError::InvalidDirective {
            path: display_path(path),
            directive: key.to_owned(),
            reason: format!("expected {prefix}/<field>"),
        })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "<root>".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small hand-written `components.schemas` map: Deployment → PodSpec → Container.
    fn schemas() -> Map<String, Value> {
        let reference = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
        let wrapped = |name: &str| json!({ "allOf": [reference(name)], "default": {} });
        let doc = json!({
            "test.Deployment": {
                "type": "object",
                "properties": {
                    "apiVersion": { "type": "string" },
                    "kind": { "type": "string" },
                    "metadata": wrapped("test.ObjectMeta"),
                    "spec": wrapped("test.DeploymentSpec"),
                }
            },
            "test.ObjectMeta": {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                    "annotations": { "type": "object", "additionalProperties": { "type": "string" } },
                    "finalizers": {
                        "type": "array",
                        "items": { "type": "string", "default": "" },
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "ownerReferences": {
                        "type": "array",
                        "items": wrapped("test.OwnerReference"),
                        "x-kubernetes-list-map-keys": ["uid"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "uid",
                        "x-kubernetes-patch-strategy": "merge"
                    }
                }
            },
            "test.OwnerReference": {
                "type": "object",
                "properties": { "uid": { "type": "string" }, "name": { "type": "string" } }
            },
            "test.DeploymentSpec": {
                "type": "object",
                "properties": {
                    "replicas": { "type": "integer" },
                    "strategy": {
                        "allOf": [reference("test.DeploymentStrategy")],
                        "x-kubernetes-patch-strategy": "retainKeys"
                    },
                    "template": wrapped("test.PodTemplateSpec"),
                }
            },
            "test.DeploymentStrategy": {
                "type": "object",
                "properties": {
                    "type": { "type": "string" },
                    "rollingUpdate": { "type": "object", "properties": {
                        "maxSurge": { "type": "string" },
                        "maxUnavailable": { "type": "string" }
                    } }
                }
            },
            "test.PodTemplateSpec": {
                "type": "object",
                "properties": {
                    "metadata": wrapped("test.ObjectMeta"),
                    "spec": wrapped("test.PodSpec"),
                }
            },
            "test.PodSpec": {
                "type": "object",
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": wrapped("test.Container"),
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "volumes": {
                        "type": "array",
                        "items": wrapped("test.Volume"),
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge,retainKeys"
                    },
                    "tolerations": {
                        "type": "array",
                        "items": wrapped("test.Toleration"),
                        "x-kubernetes-list-type": "atomic"
                    },
                    // List-type map without patch metadata: strategic merge falls back to it.
                    "hostAliases": {
                        "type": "array",
                        "items": { "type": "object", "properties": {
                            "ip": { "type": "string" },
                            "hostnames": { "type": "array", "items": { "type": "string" } }
                        } },
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["ip"]
                    },
                    "nodeSelector": { "type": "object", "additionalProperties": { "type": "string" } },
                    "overhead": {
                        "type": "object",
                        "additionalProperties": { "type": "string" },
                        "x-kubernetes-patch-strategy": "replace"
                    }
                }
            },
            "test.Container": {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "image": { "type": "string" },
                    "args": { "type": "array", "items": { "type": "string" } },
                    "ports": {
                        "type": "array",
                        "items": wrapped("test.ContainerPort"),
                        "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "containerPort",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "env": {
                        "type": "array",
                        "items": wrapped("test.EnvVar"),
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "volumeMounts": {
                        "type": "array",
                        "items": wrapped("test.VolumeMount"),
                        "x-kubernetes-patch-merge-key": "mountPath",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "resources": wrapped("test.ResourceRequirements")
                }
            },
            "test.ContainerPort": {
                "type": "object",
                "properties": {
                    "containerPort": { "type": "integer" },
                    "protocol": { "type": "string" },
                    "name": { "type": "string" }
                }
            },
            "test.EnvVar": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "value": { "type": "string" } }
            },
            "test.VolumeMount": {
                "type": "object",
                "properties": {
                    "mountPath": { "type": "string" },
                    "name": { "type": "string" },
                    "readOnly": { "type": "boolean" }
                }
            },
            "test.Volume": {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "emptyDir": { "type": "object" },
                    "configMap": { "type": "object" }
                }
            },
            "test.Toleration": {
                "type": "object",
                "properties": { "key": { "type": "string" }, "effect": { "type": "string" } }
            },
            "test.ResourceRequirements": {
                "type": "object",
                "properties": {
                    "limits": { "type": "object", "additionalProperties": { "type": "string" } },
                    "requests": { "type": "object", "additionalProperties": { "type": "string" } }
                }
            }
        });
        match doc {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    const ROOT: &str = "test.Deployment";

    fn smp(target: Value, patch: Value) -> Value {
        strategic_merge_patch(&target, &patch, &schemas(), ROOT).expect("patch applies")
    }

    fn smp_err(target: Value, patch: Value) -> PatchError {
        strategic_merge_patch(&target, &patch, &schemas(), ROOT).expect_err("patch must fail")
    }

    /// Wraps a PodSpec into a Deployment.
    fn deploy(pod_spec: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web" },
            "spec": { "replicas": 1, "template": { "spec": pod_spec } }
        })
    }

    fn patch_pod(pod_spec: Value) -> Value {
        json!({ "spec": { "template": { "spec": pod_spec } } })
    }

    fn pod_spec(obj: &Value) -> &Value {
        &obj["spec"]["template"]["spec"]
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|c| c["name"].as_str().expect("a name"))
            .collect()
    }

    fn assert_no_directives(value: &Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    assert!(!k.starts_with('$'), "directive {k} leaked into {value}");
                    assert_no_directives(v);
                }
            }
            Value::Array(list) => list.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn two_containers() -> Value {
        deploy(json!({
            "containers": [
                { "name": "app", "image": "app:1", "args": ["--a"] },
                { "name": "sidecar", "image": "proxy:1" }
            ]
        }))
    }

    // ----- strategic merge: lists merged by key -----

    #[test]
    fn container_image_change_by_name_keeps_other_containers() {
        let out = smp(
            two_containers(),
            patch_pod(json!({ "containers": [{ "name": "sidecar", "image": "proxy:2" }] })),
        );
        let containers = &pod_spec(&out)["containers"];
        assert_eq!(names(containers), ["app", "sidecar"]);
        assert_eq!(
            containers[0],
            json!({ "name": "app", "image": "app:1", "args": ["--a"] })
        );
        assert_eq!(
            containers[1],
            json!({ "name": "sidecar", "image": "proxy:2" })
        );
        // Untouched fields survive.
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn new_container_goes_first_like_kubernetes() {
        // As the Kubernetes docs show for `kubectl patch`: the new container comes first.
        let out = smp(
            two_containers(),
            patch_pod(json!({ "containers": [{ "name": "redis", "image": "redis" }] })),
        );
        assert_eq!(
            names(&pod_spec(&out)["containers"]),
            ["redis", "app", "sidecar"]
        );
    }

    #[test]
    fn patch_order_wins_over_live_order() {
        let target = deploy(json!({ "containers": [
            { "name": "1" }, { "name": "2", "image": "b" }, { "name": "3" }
        ] }));
        let out = smp(
            target.clone(),
            patch_pod(json!({ "containers": [
                { "name": "3", "image": "c" }, { "name": "1", "image": "a" }
            ] })),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            json!([{ "name": "2", "image": "b" }, { "name": "3", "image": "c" }, { "name": "1", "image": "a" }])
        );
        let out = smp(
            target,
            patch_pod(json!({ "containers": [
                { "name": "3" }, { "name": "1" }, { "name": "2", "args": ["x"] }
            ] })),
        );
        assert_eq!(names(&pod_spec(&out)["containers"]), ["3", "1", "2"]);
        assert_eq!(
            pod_spec(&out)["containers"][2],
            json!({ "name": "2", "image": "b", "args": ["x"] })
        );
    }

    #[test]
    fn nested_lists_merge_by_their_own_keys() {
        let target = deploy(json!({ "containers": [{
            "name": "app",
            "env": [{ "name": "A", "value": "1" }, { "name": "B", "value": "2" }],
            "ports": [{ "containerPort": 80, "name": "http" }, { "containerPort": 443 }],
            "volumeMounts": [{ "mountPath": "/data", "name": "data" }]
        }] }));
        let out = smp(
            target,
            patch_pod(json!({ "containers": [{
                "name": "app",
                "env": [{ "name": "B", "value": "3" }],
                "ports": [{ "containerPort": 80.0, "protocol": "TCP" }],
                "volumeMounts": [{ "mountPath": "/data", "readOnly": true }]
            }] })),
        );
        let app = &pod_spec(&out)["containers"][0];
        assert_eq!(
            app["env"],
            json!([{ "name": "A", "value": "1" }, { "name": "B", "value": "3" }])
        );
        // 80.0 identifies the same port as 80, as it does in Kubernetes (the patch's value wins).
        assert_eq!(
            app["ports"],
            json!([{ "containerPort": 80.0, "name": "http", "protocol": "TCP" }, { "containerPort": 443 }])
        );
        assert_eq!(
            app["volumeMounts"],
            json!([{ "mountPath": "/data", "name": "data", "readOnly": true }])
        );
    }

    #[test]
    fn delete_directive_removes_element_by_key() {
        let out = smp(
            two_containers(),
            patch_pod(json!({ "containers": [{ "name": "app", "$patch": "delete" }] })),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            json!([{ "name": "sidecar", "image": "proxy:1" }])
        );
        assert_no_directives(&out);
    }

    #[test]
    fn delete_directive_removes_all_duplicates() {
        let target = deploy(json!({ "containers": [
            { "name": "1" }, { "name": "1" }, { "name": "2", "image": "a" }, { "name": "3" }, { "name": "3" }
        ] }));
        let out = smp(
            target,
            patch_pod(json!({ "containers": [
                { "name": "1", "$patch": "delete" }, { "name": "3", "$patch": "delete" }
            ] })),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            json!([{ "name": "2", "image": "a" }])
        );
    }

    #[test]
    fn delete_directive_without_merge_key_fails() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": [{ "$patch": "delete" }] })),
        );
        assert!(
            matches!(err, PatchError::MissingMergeKey { ref keys, .. } if keys == "name"),
            "{err}"
        );
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn replace_directive_in_list_replaces_the_list() {
        let out = smp(
            two_containers(),
            patch_pod(json!({ "containers": [
                { "name": "only", "image": "x", "env": [{ "name": "E", "value": null }] },
                { "$patch": "replace" }
            ] })),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            json!([{ "name": "only", "image": "x", "env": [{ "name": "E" }] }])
        );
        let out = smp(
            two_containers(),
            patch_pod(json!({ "containers": [{ "$patch": "replace" }] })),
        );
        assert_eq!(pod_spec(&out)["containers"], json!([]));
    }

    #[test]
    fn merge_key_missing_from_patch_element_is_an_error() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": [{ "image": "x" }] })),
        );
        match err {
            PatchError::MissingMergeKey { path, keys } => {
                assert_eq!(path, "spec.template.spec.containers");
                assert_eq!(keys, "name");
            }
            other => panic!("unexpected error {other}"),
        }
        // Also in a nested list.
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": [{ "name": "app", "ports": [{ "name": "http" }] }] })),
        );
        assert!(
            matches!(err, PatchError::MissingMergeKey { ref path, .. } if path == "spec.template.spec.containers[].ports"),
            "{err}"
        );
    }

    #[test]
    fn mixed_element_types_in_keyed_list_are_an_error() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": ["app"] })),
        );
        assert!(matches!(err, PatchError::UnmergeableList { .. }), "{err}");
    }

    #[test]
    fn unknown_list_directive_is_an_error() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": [{ "name": "app", "$patch": "frobnicate" }] })),
        );
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn list_type_map_is_the_fallback_without_patch_metadata() {
        let target = deploy(json!({ "hostAliases": [
            { "ip": "10.0.0.1", "hostnames": ["a"] }, { "ip": "10.0.0.2", "hostnames": ["b"] }
        ] }));
        let out = smp(
            target,
            patch_pod(json!({ "hostAliases": [{ "ip": "10.0.0.2", "hostnames": ["c"] }] })),
        );
        assert_eq!(
            pod_spec(&out)["hostAliases"],
            json!([{ "ip": "10.0.0.1", "hostnames": ["a"] }, { "ip": "10.0.0.2", "hostnames": ["c"] }])
        );
    }

    #[test]
    fn lists_without_merge_metadata_are_replaced() {
        let target = deploy(json!({
            "containers": [{ "name": "app", "args": ["--a", "--b"] }],
            "tolerations": [{ "key": "a" }, { "key": "b" }]
        }));
        let out = smp(
            target,
            patch_pod(json!({
                "containers": [{ "name": "app", "args": ["--c"] }],
                "tolerations": [{ "key": "c", "effect": null }, { "$patch": "delete" }]
            })),
        );
        assert_eq!(pod_spec(&out)["containers"][0]["args"], json!(["--c"]));
        assert_eq!(pod_spec(&out)["tolerations"], json!([{ "key": "c" }]));
    }

    // ----- strategic merge: directives -----

    #[test]
    fn set_element_order_reorders_containers() {
        let out = smp(
            two_containers(),
            patch_pod(json!({
                "$setElementOrder/containers": [{ "name": "sidecar" }, { "name": "app" }]
            })),
        );
        assert_eq!(names(&pod_spec(&out)["containers"]), ["sidecar", "app"]);
        assert_eq!(pod_spec(&out)["containers"][1]["image"], "app:1");
        assert_no_directives(&out);
    }

    #[test]
    fn set_element_order_places_new_elements_and_keeps_server_only_ones() {
        // Live list has a server-only element ("3") that the order list does not name.
        let target = deploy(json!({ "containers": [
            { "name": "1", "image": "a" }, { "name": "3", "image": "c" }, { "name": "2", "image": "b" }
        ] }));
        let out = smp(
            target,
            patch_pod(json!({
                "$setElementOrder/containers": [{ "name": "2" }, { "name": "new" }, { "name": "1" }],
                "containers": [{ "name": "new", "image": "n" }]
            })),
        );
        // "3" keeps its live place before "2"; the named elements follow the order list.
        assert_eq!(names(&pod_spec(&out)["containers"]), ["3", "2", "new", "1"]);
        assert_eq!(
            pod_spec(&out)["containers"][2],
            json!({ "name": "new", "image": "n" })
        );
    }

    #[test]
    fn set_element_order_with_add_and_delete() {
        // A case from Kubernetes' own test suite ("add map and delete map from merging list").
        let target = deploy(json!({ "containers": [
            { "name": "1" }, { "name": "2", "image": "b" }, { "name": "4", "image": "c" }
        ] }));
        let out = smp(
            target,
            patch_pod(json!({
                "$setElementOrder/containers": [{ "name": "2" }, { "name": "3" }],
                "containers": [{ "name": "3" }, { "name": "1", "$patch": "delete" }]
            })),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            json!([{ "name": "2", "image": "b" }, { "name": "4", "image": "c" }, { "name": "3" }])
        );
    }

    #[test]
    fn set_element_order_must_agree_with_patch_list() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({
                "$setElementOrder/containers": [{ "name": "app" }, { "name": "sidecar" }],
                "containers": [{ "name": "sidecar", "image": "x" }, { "name": "app", "image": "y" }]
            })),
        );
        assert!(
            matches!(err, PatchError::SetElementOrderMismatch { .. }),
            "{err}"
        );
        let err = smp_err(
            two_containers(),
            patch_pod(json!({
                "$setElementOrder/containers": [{ "name": "app" }],
                "containers": [{ "name": "other" }]
            })),
        );
        assert!(
            matches!(err, PatchError::SetElementOrderMismatch { .. }),
            "{err}"
        );
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "$setElementOrder/containers": [{ "image": "x" }] })),
        );
        assert!(matches!(err, PatchError::MissingMergeKey { .. }), "{err}");
    }

    #[test]
    fn set_element_order_on_primitive_list() {
        let target = json!({ "metadata": { "finalizers": ["a", "b", "c"] } });
        let out = smp(
            target,
            json!({ "metadata": {
                "$setElementOrder/finalizers": ["b", "a"],
                "$deleteFromPrimitiveList/finalizers": ["c"]
            } }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        let out = smp(
            json!({ "metadata": { "finalizers": ["a", "b"] } }),
            json!({ "metadata": { "$setElementOrder/finalizers": ["c", "a", "b"], "finalizers": ["c"] } }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn retain_keys_drops_unlisted_fields() {
        let target = json!({ "spec": { "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": { "maxSurge": "25%" }
        } } });
        let out = smp(
            target.clone(),
            json!({ "spec": { "strategy": { "$retainKeys": ["type"], "type": "Recreate" } } }),
        );
        assert_eq!(out["spec"]["strategy"], json!({ "type": "Recreate" }));
        assert_no_directives(&out);
        // Without the directive the map merges as usual.
        let out = smp(
            target,
            json!({ "spec": { "strategy": { "type": "Recreate" } } }),
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({ "type": "Recreate", "rollingUpdate": { "maxSurge": "25%" } })
        );
    }

    #[test]
    fn retain_keys_must_list_patched_fields() {
        let err = smp_err(
            json!({ "spec": { "strategy": { "type": "RollingUpdate" } } }),
            json!({ "spec": { "strategy": { "$retainKeys": ["type"], "rollingUpdate": {} } } }),
        );
        match err {
            PatchError::RetainKeysMismatch { path, key } => {
                assert_eq!(path, "spec.strategy");
                assert_eq!(key, "rollingUpdate");
            }
            other => panic!("unexpected error {other}"),
        }
        let err = smp_err(json!({}), json!({ "spec": { "$retainKeys": "type" } }));
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
    }

    #[test]
    fn retain_keys_in_keyed_list_element() {
        let target = deploy(json!({ "volumes": [
            { "name": "v", "emptyDir": {} }, { "name": "w", "emptyDir": {} }
        ] }));
        let out = smp(
            target,
            patch_pod(json!({ "volumes": [
                { "name": "v", "$retainKeys": ["name", "configMap"], "configMap": { "name": "cm" } }
            ] })),
        );
        assert_eq!(
            pod_spec(&out)["volumes"],
            json!([{ "name": "v", "configMap": { "name": "cm" } }, { "name": "w", "emptyDir": {} }])
        );
    }

    #[test]
    fn delete_from_primitive_list_removes_finalizers() {
        let out = smp(
            json!({ "metadata": { "name": "x", "finalizers": ["a", "b", "c", "b"] } }),
            json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": ["b", "zzz"] } }),
        );
        assert_eq!(
            out["metadata"],
            json!({ "name": "x", "finalizers": ["a", "c"] })
        );
        // An absent list stays absent.
        let out = smp(
            json!({ "metadata": { "name": "x" } }),
            json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": ["b"] } }),
        );
        assert_eq!(out["metadata"], json!({ "name": "x" }));
        let err = smp_err(
            json!({}),
            json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": "b" } }),
        );
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
        let err = smp_err(
            json!({}),
            json!({ "metadata": { "$deleteFromPrimitiveList": ["b"] } }),
        );
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
    }

    #[test]
    fn finalizers_merge_as_a_set() {
        let out = smp(
            json!({ "metadata": { "finalizers": ["a", "b"] } }),
            json!({ "metadata": { "finalizers": ["b", "c"] } }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            json!({ "metadata": { "finalizers": ["a", "b", "c"] } }),
            json!({ "metadata": { "finalizers": ["c", "a"] } }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a"]));
        let out = smp(
            json!({ "metadata": { "finalizers": ["a"] } }),
            json!({ "metadata": { "finalizers": ["z", "z"] } }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["z", "a"]));
    }

    #[test]
    fn directives_and_mixed_values_in_set_lists_are_errors() {
        let target = json!({ "metadata": { "finalizers": ["a"] } });
        let err = smp_err(
            target.clone(),
            json!({ "metadata": { "finalizers": [{ "$patch": "replace" }] } }),
        );
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
        let err = smp_err(
            target,
            json!({ "metadata": { "finalizers": ["b", { "x": 1 }] } }),
        );
        assert!(matches!(err, PatchError::UnmergeableList { .. }), "{err}");
    }

    #[test]
    fn null_deletes_keys() {
        let target = json!({
            "metadata": { "name": "x", "labels": { "a": "1", "b": "2" } },
            "spec": { "replicas": 3 }
        });
        let out = smp(
            target,
            json!({ "metadata": { "labels": { "a": null, "c": "3" } }, "spec": null, "status": null }),
        );
        assert_eq!(
            out,
            json!({ "metadata": { "name": "x", "labels": { "b": "2", "c": "3" } } })
        );
    }

    #[test]
    fn map_replace_directive() {
        let target = json!({ "metadata": { "labels": { "a": "1", "b": "2" }, "name": "x" } });
        let out = smp(
            target,
            json!({ "metadata": { "labels": { "$patch": "replace", "c": "3" } } }),
        );
        assert_eq!(
            out["metadata"],
            json!({ "labels": { "c": "3" }, "name": "x" })
        );
        // At the top level: the whole object.
        let out = smp(
            json!({ "a": 1, "b": 2 }),
            json!({ "$patch": "replace", "other": "a" }),
        );
        assert_eq!(out, json!({ "other": "a" }));
    }

    #[test]
    fn map_delete_directive_empties_the_map() {
        let target = json!({ "metadata": { "labels": { "a": "1" }, "name": "x" } });
        let out = smp(
            target,
            json!({ "metadata": { "labels": { "$patch": "delete" } } }),
        );
        assert_eq!(out["metadata"], json!({ "labels": {}, "name": "x" }));
        // An absent map is not created.
        let out = smp(
            json!({ "metadata": {} }),
            json!({ "metadata": { "labels": { "$patch": "delete" } } }),
        );
        assert_eq!(out["metadata"], json!({}));
        let out = smp(json!({ "a": 1 }), json!({ "$patch": "delete" }));
        assert_eq!(out, json!({}));
    }

    #[test]
    fn map_merge_directive_is_the_default_and_bad_values_fail() {
        let out = smp(
            json!({ "metadata": { "labels": { "a": "1" } } }),
            json!({ "metadata": { "labels": { "$patch": "merge", "b": "2" } } }),
        );
        assert_eq!(out["metadata"]["labels"], json!({ "a": "1", "b": "2" }));
        let err = smp_err(json!({}), json!({ "metadata": { "$patch": "remove" } }));
        assert!(
            matches!(err, PatchError::InvalidDirective { ref path, .. } if path == "metadata"),
            "{err}"
        );
        let err = smp_err(json!({}), json!({ "$patch": 1 }));
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
    }

    #[test]
    fn replace_patch_strategy_on_a_map_replaces_it() {
        let target = deploy(json!({ "overhead": { "cpu": "1", "memory": "1Gi" } }));
        let out = smp(target, patch_pod(json!({ "overhead": { "cpu": "2" } })));
        assert_eq!(pod_spec(&out)["overhead"], json!({ "cpu": "2" }));
    }

    #[test]
    fn missing_subtrees_are_created_without_directives() {
        let target = json!({ "metadata": { "name": "web" } });
        let patch = patch_pod(json!({
            "$setElementOrder/containers": [{ "name": "b" }, { "name": "a" }],
            "containers": [
                { "name": "b", "image": "b", "resources": { "limits": { "cpu": null, "memory": "1Gi" } } },
                { "name": "a", "image": "a", "env": [{ "name": "X", "value": null }, { "name": "Y", "$patch": "delete" }] }
            ],
            "nodeSelector": { "$patch": "replace", "disk": "ssd" },
            "volumes": [{ "name": "gone", "$patch": "delete" }]
        }));
        let out = smp(target, patch);
        assert_eq!(
            out,
            json!({
                "metadata": { "name": "web" },
                "spec": { "template": { "spec": {
                    "containers": [
                        { "name": "b", "image": "b", "resources": { "limits": { "memory": "1Gi" } } },
                        { "name": "a", "image": "a", "env": [{ "name": "X" }] }
                    ],
                    "nodeSelector": { "disk": "ssd" },
                    "volumes": []
                } } }
            })
        );
        assert_no_directives(&out);
    }

    #[test]
    fn type_mismatch_replaces_the_value() {
        let out = smp(
            json!({ "metadata": { "labels": "oops" }, "spec": { "template": ["x"] } }),
            json!({ "metadata": { "labels": { "a": "1", "b": null } }, "spec": { "template": { "spec": {} } } }),
        );
        assert_eq!(
            out,
            json!({ "metadata": { "labels": { "a": "1" } }, "spec": { "template": { "spec": {} } } })
        );
    }

    #[test]
    fn unknown_fields_and_types_use_merge_patch_semantics() {
        let target = json!({ "metadata": { "name": "x" }, "extra": { "list": [1, 2], "keep": true, "drop": 1 } });
        let patch = json!({ "extra": { "list": [3], "drop": null, "new": { "a": null, "b": 1 } } });
        let expected = json!({
            "metadata": { "name": "x" },
            "extra": { "list": [3], "keep": true, "new": { "b": 1 } }
        });
        assert_eq!(smp(target.clone(), patch.clone()), expected);
        // The same when the root type is unknown: everything falls back.
        let out = strategic_merge_patch(&target, &patch, &schemas(), "no.such.Type").unwrap();
        assert_eq!(out, expected);
        // Without a schema, keyed lists are replaced too.
        let out = strategic_merge_patch(
            &two_containers(),
            &patch_pod(json!({ "containers": [{ "name": "x" }] })),
            &Map::new(),
            ROOT,
        )
        .unwrap();
        assert_eq!(pod_spec(&out)["containers"], json!([{ "name": "x" }]));
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let out = smp(
            json!({ "metadata": { "ownerReferences": [{ "uid": "1", "name": "a" }] } }),
            json!({ "metadata": { "ownerReferences": [{ "uid": "1", "name": "b" }, { "uid": "2", "name": "c" }] } }),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{ "uid": "1", "name": "b" }, { "uid": "2", "name": "c" }])
        );
    }

    #[test]
    fn patch_and_target_must_be_objects() {
        let err = strategic_merge_patch(&json!({}), &json!([1]), &schemas(), ROOT).unwrap_err();
        assert!(
            matches!(err, PatchError::NotAnObject { what: "patch" }),
            "{err}"
        );
        assert_eq!(err.status_code(), 400);
        let err = strategic_merge_patch(&json!("x"), &json!({}), &schemas(), ROOT).unwrap_err();
        assert!(
            matches!(err, PatchError::NotAnObject { what: "target" }),
            "{err}"
        );
        // A null target is an empty object.
        let out =
            strategic_merge_patch(&Value::Null, &json!({ "a": 1 }), &schemas(), ROOT).unwrap();
        assert_eq!(out, json!({ "a": 1 }));
    }

    #[test]
    fn key_order_of_target_is_preserved() {
        let out = smp(
            json!({ "kind": "Deployment", "apiVersion": "apps/v1", "metadata": { "z": 1, "a": 2, "m": 3 } }),
            json!({ "metadata": { "a": null, "b": 4 }, "apiVersion": "apps/v2" }),
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata"]);
        let keys: Vec<&String> = out["metadata"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "m", "b"]);
    }

    // ----- schema helpers -----

    #[test]
    fn resolve_follows_refs_and_all_of() {
        let schemas = schemas();
        let meta = resolve(
            &schemas["test.Deployment"]["properties"]["metadata"],
            &schemas,
        );
        assert!(meta["properties"]["finalizers"].is_object());
        let direct = json!({ "$ref": "#/components/schemas/test.Container" });
        assert!(resolve(&direct, &schemas)["properties"]["ports"].is_object());
        let chained = json!({ "allOf": [{ "$ref": "#/components/schemas/test.Container" }] });
        assert!(resolve(&chained, &schemas)["properties"]["ports"].is_object());
        let missing = json!({ "$ref": "#/components/schemas/nope" });
        assert_eq!(resolve(&missing, &schemas), &missing);
        let plain = json!({ "type": "string" });
        assert_eq!(resolve(&plain, &schemas), &plain);
        // Cycles terminate.
        let mut cyclic = Map::new();
        cyclic.insert("a".into(), json!({ "$ref": "#/components/schemas/b" }));
        cyclic.insert("b".into(), json!({ "$ref": "#/components/schemas/a" }));
        let start = json!({ "$ref": "#/components/schemas/a" });
        let _ = resolve(&start, &cyclic);
    }

    #[test]
    fn list_strategy_reads_extensions() {
        let schemas = schemas();
        let pod = &schemas["test.PodSpec"]["properties"];
        let container = &schemas["test.Container"]["properties"];
        let meta = &schemas["test.ObjectMeta"]["properties"];
        assert_eq!(
            list_strategy(&pod["containers"], &schemas),
            ListStrategy::MergeByKeys(vec!["name".into()])
        );
        assert_eq!(
            list_strategy(&pod["volumes"], &schemas),
            ListStrategy::MergeByKeys(vec!["name".into()])
        );
        assert_eq!(
            list_strategy(&container["ports"], &schemas),
            ListStrategy::MergeByKeys(vec!["containerPort".into()])
        );
        assert_eq!(
            list_strategy(&meta["finalizers"], &schemas),
            ListStrategy::Set
        );
        assert_eq!(
            list_strategy(&pod["tolerations"], &schemas),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy(&container["args"], &schemas),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy(&pod["hostAliases"], &schemas),
            ListStrategy::MergeByKeys(vec!["ip".into()])
        );
        let cases = [
            (
                json!({ "x-kubernetes-list-type": "set" }),
                ListStrategy::Set,
            ),
            (
                json!({ "x-kubernetes-list-type": "map" }),
                ListStrategy::Atomic,
            ),
            (
                json!({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"] }),
                ListStrategy::MergeByKeys(vec!["a".into(), "b".into()]),
            ),
            (
                json!({ "x-kubernetes-patch-strategy": "replace", "x-kubernetes-list-type": "set" }),
                ListStrategy::Atomic,
            ),
            (
                json!({ "x-kubernetes-patch-strategy": "retainKeys", "x-kubernetes-list-type": "set" }),
                ListStrategy::Set,
            ),
            (
                json!({ "x-kubernetes-patch-merge-key": "name" }),
                ListStrategy::Atomic,
            ),
            (json!({ "type": "array" }), ListStrategy::Atomic),
        ];
        for (schema, expected) in cases {
            assert_eq!(list_strategy(&schema, &schemas), expected, "{schema}");
        }
        // Metadata on a referenced (named) array type is found through the reference.
        let mut named = Map::new();
        named.insert(
            "Names".into(),
            json!({ "type": "array", "x-kubernetes-patch-strategy": "merge" }),
        );
        let prop = json!({ "allOf": [{ "$ref": "#/components/schemas/Names" }] });
        assert_eq!(list_strategy(&prop, &named), ListStrategy::Set);
    }

    // ----- JSON patch -----

    fn jp(target: Value, patch: Value) -> Result<Value, PatchError> {
        json_patch(&target, patch.to_string().as_bytes())
    }

    #[test]
    fn json_patch_add_remove_replace() {
        let target = json!({ "metadata": { "labels": { "a": "1" } }, "list": [1, 2] });
        let out = jp(
            target,
            json!([
                { "op": "add", "path": "/metadata/labels/b", "value": "2" },
                { "op": "remove", "path": "/metadata/labels/a" },
                { "op": "replace", "path": "/list/0", "value": 10 },
                { "op": "add", "path": "/list/-", "value": 3 },
                { "op": "add", "path": "/list/1", "value": 5 },
                { "op": "copy", "from": "/metadata/labels", "path": "/copied" },
                { "op": "move", "from": "/copied/b", "path": "/moved" },
                { "op": "add", "path": "/metadata/labels/a~1b", "value": "slash" }
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "metadata": { "labels": { "b": "2", "a/b": "slash" } },
                "list": [10, 5, 2, 3],
                "copied": {},
                "moved": "2"
            })
        );
    }

    #[test]
    fn json_patch_test_operation() {
        let target = json!({ "spec": { "replicas": 1, "paused": false }, "items": ["a"] });
        let ok = jp(
            target.clone(),
            json!([
                { "op": "test", "path": "/spec/replicas", "value": 1.0 },
                { "op": "test", "path": "/spec", "value": { "paused": false, "replicas": 1 } },
                { "op": "test", "path": "/items/0", "value": "a" },
                { "op": "test", "path": "/spec/absent", "value": null },
                { "op": "test", "path": "", "value": target.clone() },
                { "op": "replace", "path": "/spec/replicas", "value": 2 }
            ]),
        )
        .unwrap();
        assert_eq!(ok["spec"]["replicas"], 2);

        let err = jp(
            target.clone(),
            json!([
                { "op": "replace", "path": "/spec/replicas", "value": 5 },
                { "op": "test", "path": "/spec/replicas", "value": 1 }
            ]),
        )
        .unwrap_err();
        match &err {
            PatchError::TestFailed { index, path } => {
                assert_eq!(*index, 1);
                assert_eq!(path, "/spec/replicas");
            }
            other => panic!("unexpected error {other}"),
        }
        assert_eq!(err.status_code(), 422);
        let err = jp(
            target.clone(),
            json!([{ "op": "test", "path": "/spec/absent", "value": 1 }]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::TestFailed { .. }), "{err}");
        let err = jp(
            target,
            json!([{ "op": "test", "path": "/nope/x", "value": 1 }]),
        )
        .unwrap_err();
        assert!(
            matches!(err, PatchError::PathNotFound { op: "test", .. }),
            "{err}"
        );
    }

    #[test]
    fn json_patch_missing_paths_fail() {
        let target = json!({ "a": { "b": 1 }, "list": [1] });
        let err = jp(
            target.clone(),
            json!([{ "op": "move", "from": "/missing", "path": "/x" }]),
        )
        .unwrap_err();
        match &err {
            PatchError::PathNotFound { index, op, path } => {
                assert_eq!((*index, *op, path.as_str()), (0, "move", "/missing"));
            }
            other => panic!("unexpected error {other}"),
        }
        let cases = [
            json!([{ "op": "remove", "path": "/a/zzz" }]),
            json!([{ "op": "replace", "path": "/zzz", "value": 1 }]),
            json!([{ "op": "add", "path": "/no/parent", "value": 1 }]),
            json!([{ "op": "add", "path": "/list/5", "value": 1 }]),
            json!([{ "op": "copy", "from": "/nope", "path": "/a/c" }]),
        ];
        for (i, patch) in cases.into_iter().enumerate() {
            let err = jp(target.clone(), patch).unwrap_err();
            assert!(
                matches!(err, PatchError::PathNotFound { .. }),
                "case {i}: {err}"
            );
        }
        let err = jp(
            target.clone(),
            json!([{ "op": "move", "from": "/a", "path": "/a/b/c" }]),
        )
        .unwrap_err();
        assert!(
            matches!(err, PatchError::OperationFailed { op: "move", .. }),
            "{err}"
        );
        // The target is never modified, even by the operations before the failure.
        let err = jp(
            target.clone(),
            json!([{ "op": "add", "path": "/x", "value": 1 }, { "op": "remove", "path": "/zzz" }]),
        )
        .unwrap_err();
        assert!(
            matches!(err, PatchError::PathNotFound { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn json_patch_rejects_malformed_bodies() {
        let target = json!({});
        for body in [
            &b"{\"op\":\"add\",\"path\":\"/a\",\"value\":1}"[..],
            b"not json",
            b"",
            b"[{\"op\":\"frob\",\"path\":\"/a\"}]",
            b"[{\"op\":\"add\",\"path\":\"/a\"}]",
            b"[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
        ] {
            let err = json_patch(&target, body).unwrap_err();
            assert!(
                matches!(err, PatchError::InvalidPatch { .. }),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.status_code(), 400);
        }
        assert_eq!(json_patch(&target, b"[]").unwrap(), target);
    }

    #[test]
    fn json_patch_limits_operation_count() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({ "op": "test", "path": "", "value": {} }))
            .collect();
        let err = jp(json!({}), Value::Array(ops)).unwrap_err();
        assert!(
            matches!(
                err,
                PatchError::TooManyOperations {
                    count: 10_001,
                    max: 10_000
                }
            ),
            "{err}"
        );
        assert_eq!(err.status_code(), 413);
    }

    // ----- JSON merge patch -----

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(merge_patch(&target, &patch), expected, "{target} + {patch}");
        }
    }

    #[test]
    fn merge_patch_replaces_lists_and_keeps_order() {
        let target = json!({ "z": 1, "a": { "x": 1, "y": [1, 2] }, "m": 2 });
        let out = merge_patch(
            &target,
            &json!({ "a": { "y": [3], "x": null }, "z": null, "n": 3 }),
        );
        assert_eq!(out, json!({ "a": { "y": [3] }, "m": 2, "n": 3 }));
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "m", "n"]);
    }

    #[test]
    fn errors_have_readable_messages() {
        let err = smp_err(
            two_containers(),
            patch_pod(json!({ "containers": [{ "image": "x" }] })),
        );
        assert_eq!(
            err.to_string(),
            "an element of the list spec.template.spec.containers does not contain the merge key name"
        );
        let err = jp(json!({}), json!([{ "op": "remove", "path": "/a" }])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JSON patch operation 0 (remove) failed: path \"/a\" does not exist"
        );
    }
}
