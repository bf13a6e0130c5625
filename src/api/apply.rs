//! Server-side apply (SSA) and `metadata.managedFields` tracking.
//!
//! Objects are plain `serde_json::Value`s; their structure (which maps are granular, which
//! lists are associative and by which keys) comes from the OpenAPI v3 `components.schemas`
//! map Kubernetes serves. The behaviour follows Kubernetes' field manager
//! (k8s.io/apimachinery `managedfields` on top of sigs.k8s.io/structured-merge-diff):
//!
//! * field sets are tries of path elements (`f:` field, `k:` associative-list key,
//!   `v:` set value, `i:` index) serialized as FieldsV1;
//! * an apply merges the configuration into the live object, prunes what the manager applied
//!   before but no longer applies (unless someone else owns it), and reports conflicts with
//!   fields other managers own and whose value the apply changes;
//! * an update (create/update/patch) gives the writer ownership of every field it changed and
//!   takes it away from the others.
//!
//! Known simplifications: no version conversion (every entry is treated as being at the
//! object's version), no unions, no schema-change reconciliation.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Number, Value};

use super::gojson;

/// The client-side apply annotation kept in sync by `kubectl` server-side applies.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Manager that takes the fields of an object that had no managedFields at its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// Bucket manager into which the oldest update entries are merged.
const ANCIENT_CHANGES: &str = "ancient-changes";
/// At most this many `Update` entries are kept.
const MAX_UPDATE_MANAGERS: usize = 10;
/// Kubernetes' limit on the total size of an object's annotations.
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;
const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

static NULL: Value = Value::Null;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Why a server-side apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Apply conflicts with fields owned by other managers (HTTP 409, reason Conflict).
    /// The message is Kubernetes' (see [`conflict_message`]).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration is malformed (e.g. list item missing its key, not an object,
    /// `metadata.managedFields` set) (HTTP 422/400).
    #[error("{0}")]
    Invalid(String),
}

/// One field an apply would change although another manager owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The owning manager's name, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    /// The field as Kubernetes prints it, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
    /// The owning entry's operation: `Apply` or `Update`.
    pub operation: String,
    /// The owning entry's apiVersion, e.g. `apps/v1`.
    pub api_version: String,
    /// The owning entry's subresource (empty for the main resource).
    pub subresource: String,
}

impl Conflict {
    /// The owner as Kubernetes describes it: `"kubectl"`, `"kubectl" using apps/v1` for update
    /// entries, with ` with subresource "status"` when the entry belongs to a subresource.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s.push_str(" with subresource ");
            s.push_str(&go_quote(&self.subresource));
        }
        if self.operation == UPDATE {
            s.push_str(" using ");
            s.push_str(&self.api_version);
        }
        s
    }

    /// The message of this conflict's `FieldManagerConflict` status cause:
    /// `conflict with "kubectl" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }

    fn identifier(&self) -> String {
        identifier(
            &self.manager,
            &self.operation,
            &self.api_version,
            &self.subresource,
        )
    }
}

/// Kubernetes' text for a set of apply conflicts, e.g.
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas`,
/// or for several: `Apply failed with 2 conflicts: conflicts with "mgr" using apps/v1:\n- .spec.replicas\n- ...`
/// (grouped by manager, managers sorted).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        groups
            .entry(c.identifier())
            .or_insert_with(|| (c.manager_description(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in groups.into_values() {
        lines.push(format!("conflicts with {description}:"));
        for field in fields {
            lines.push(format!("- {field}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The managers of an object's `metadata.managedFields` with the fields each owns, printed as
/// Kubernetes prints field paths: `(manager, operation, fields)`, in managedFields order.
/// Entries that cannot be parsed are skipped.
pub fn managed_field_paths(object: &Value) -> Vec<(String, String, Vec<String>)> {
    let Some(list) = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let set = FieldSet::from_json(entry.get("fieldsV1").unwrap_or(&NULL)).ok()?;
            let text = |k: &str| {
                entry
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let fields = set.paths().iter().map(|p| path_string(p)).collect();
            Some((text("manager"), text("operation"), fields))
        })
        .collect()
}

/// Server-side apply of `applied` (the user's partial config, already parsed from YAML/JSON) onto `live`
/// (None when the object does not exist yet). Returns the new object with `metadata.managedFields` updated:
/// - the manager's Apply entry (operation "Apply", apiVersion from applied, time = `now` when the
///   apply changed the object, fieldsType "FieldsV1", fieldsV1 = the set of fields in `applied`);
/// - conflicts: a field in `applied` whose value differs from live and is owned by another manager → Conflict, unless `force` (then ownership moves to this manager); equal values become shared ownership;
/// - fields this manager applied before (its previous Apply entry) but omits now are removed from the object if no other manager owns them;
/// - merge: applied values win; associative lists merge by their keys, atomic lists replace, sets union.
///
/// `metadata.resourceVersion`, `uid`, `creationTimestamp` and `generation` in `applied` are
/// ignored (the live values are kept), `apiVersion`, `kind`, `metadata.name`/`namespace` are
/// never tracked, and a non-null `metadata.managedFields` is refused as Kubernetes does.
/// Applying to the main resource ignores `status`; with `subresource` `"status"` only `status`
/// is considered. A live object without managedFields first has all its fields given to
/// `before-first-apply`; the manager `kubectl` may take over fields recorded in the
/// client-side `last-applied-configuration` annotation without conflicts and keeps that
/// annotation up to date, as Kubernetes does.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    schemas: &Map<String, Value>,
    root: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    let ctx = Ctx::new(schemas, root);
    let Some(applied_map) = applied.as_object() else {
        return Err(ApplyError::Invalid(
            "the applied configuration must be a JSON object".into(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let api_version = applied_map
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            live.and_then(|l| l.get("apiVersion"))
                .and_then(Value::as_str)
        })
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApplyError::Invalid("apiVersion must be set in the applied configuration".into())
        })?
        .to_string();
    let scope = Scope::of(subresource);
    let config = Value::Object(scope.restrict_config(applied_map));
    ctx.validate(&config, ctx.root, &mut Vec::new())
        .map_err(|e| ApplyError::Invalid(format!("failed to create typed patch object: {e}")))?;

    let mut live_obj = live
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(empty_object);
    remove_managed_fields(&mut live_obj);
    let mut managed = live
        .map(|l| decode_managed(l.pointer("/metadata/managedFields")).unwrap_or_default())
        .unwrap_or_default();
    let op = Op {
        manager: if manager.is_empty() {
            "unknown"
        } else {
            manager
        },
        api_version: &api_version,
        subresource: subresource.unwrap_or(""),
        now,
    };
    if managed.is_empty() && live.is_some() {
        let first = Op {
            manager: BEFORE_FIRST_APPLY,
            ..op
        };
        ctx.update_fields(scope, &ctx.zero_object(), &live_obj, &mut managed, &first);
    }

    let (mut object, managed) =
        match ctx.apply_fields(scope, &live_obj, &config, managed.clone(), &op, force) {
            Ok(done) => done,
            Err(conflicts) => {
                // kubectl may take over what it owned through client-side apply.
                let allowed = (manager == "kubectl")
                    .then(|| ctx.allowed_from_last_applied(&live_obj, &api_version))
                    .flatten();
                let Some(allowed) = allowed else {
                    return Err(ApplyError::Conflicts(
                        conflicts.into_iter().map(|c| c.conflict).collect(),
                    ));
                };
                let remaining: Vec<Conflict> = conflicts
                    .into_iter()
                    .filter(|c| !allowed.has(&c.path))
                    .map(|c| c.conflict)
                    .collect();
                if !remaining.is_empty() {
                    return Err(ApplyError::Conflicts(remaining));
                }
                ctx.apply_fields(scope, &live_obj, &config, managed, &op, true)
                    .map_err(|c| {
                        ApplyError::Conflicts(c.into_iter().map(|c| c.conflict).collect())
                    })?
            }
        };
    if manager == "kubectl" {
        sync_last_applied(&mut object, applied);
    }
    write_managed(&mut object, managed);
    Ok(object)
}

/// The object a create of `root` is compared against (see [`record_update`]); the same for
/// every create of a kind, so it can be worked out once.
pub fn zero_object(schemas: &Map<String, Value>, root: &str) -> Value {
    Ctx::new(schemas, root).zero_object()
}

/// Record a non-apply write (create/update/patch with operation "Update") by `manager` in `new.metadata.managedFields`:
/// fields changed or added relative to `old` (all fields for a create) become owned by `manager` (merged into its existing Update entry for the same apiVersion/subresource) and are removed from other managers' sets; fields removed are dropped from everyone's sets; entries with empty sets are removed.
///
/// `managedFields` sent by the client (on the main resource) are taken as given when they
/// parse and are non-empty (otherwise the old object's are kept); an explicitly empty list `[]`
/// (or `[{}]`) clears them, after which an update of an existing object records nothing, like
/// Kubernetes. Writes to the main resource ignore `status`; with `subresource` `"status"` only
/// `status` is tracked. At most ten Update entries are kept, the oldest being merged into
/// `ancient-changes`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    schemas: &Map<String, Value>,
    root: &str,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let ctx = Ctx::new(schemas, root);
    let scope = Scope::of(subresource);
    let old_fields = old.and_then(|o| o.pointer("/metadata/managedFields"));
    // Taken out: the object is compared without it, and it is written back at the end.
    let new_fields = new
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|meta| meta.remove("managedFields"));
    // The request carries the stored list back unchanged (as a controller's read-modify-write
    // does): it is taken over rather than the stored one copied.
    let sent_back = new_fields.is_some() && new_fields.as_ref() == old_fields;
    let stored = |sent: Option<Value>| {
        let list = if sent_back { sent } else { old_fields.cloned() };
        decode_stored_managed(list).unwrap_or_default()
    };
    let mut managed = if subresource.is_some() {
        stored(new_fields)
    } else if is_reset(new_fields.as_ref()) {
        Vec::new()
    } else if sent_back {
        stored(new_fields)
    } else {
        match decode_managed(new_fields.as_ref()) {
            Ok(m) if !m.is_empty() => m,
            _ => stored(None),
        }
    };
    if managed.is_empty() {
        let creating = old.is_none_or(|o| {
            o.pointer("/metadata/uid")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        });
        if !creating {
            return;
        }
    }
    let zero;
    let old_obj = match old.filter(|v| v.is_object()) {
        Some(o) => o,
        None => {
            zero = ctx.zero_object();
            &zero
        }
    };
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| old_obj.get("apiVersion").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let op = Op {
        manager: if manager.is_empty() {
            "unknown"
        } else {
            manager
        },
        api_version: &api_version,
        subresource: subresource.unwrap_or(""),
        now,
    };
    ctx.update_fields(scope, old_obj, new, &mut managed, &op);
    write_managed(new, managed);
}

// ---------------------------------------------------------------------------------------------
// Path elements and field sets
// ---------------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Clone, Debug)]
enum Pe {
    /// A struct field or map key.
    Field(String),
    /// An associative-list item, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// A set item, by its value.
    Value(Value),
    /// A list item by index (only read from FieldsV1, never produced).
    Index(i64),
}

impl Pe {
    fn rank(&self) -> u8 {
        match self {
            Pe::Field(_) => 0,
            Pe::Key(_) => 1,
            Pe::Value(_) => 2,
            Pe::Index(_) => 3,
        }
    }

    /// FieldsV1 key: `f:name`, `k:{"name":"x"}`, `v:"x"`, `i:0`.
    fn serialize(&self) -> String {
        match self {
            Pe::Field(name) => format!("f:{name}"),
            Pe::Key(fields) => {
                let mut s = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    gojson::write_str(name, &mut s);
                    s.push(':');
                    gojson::write_value(value, true, &mut s);
                }
                s.push('}');
                s
            }
            Pe::Value(v) => {
                let mut s = String::from("v:");
                gojson::write_value(v, true, &mut s);
                s
            }
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 key; `Ok(None)` for unknown element kinds (ignored, like Kubernetes).
    fn parse(s: &str) -> Result<Option<Pe>, String> {
        let b = s.as_bytes();
        if b.len() < 2 {
            return Err(format!("key must be 2 characters long: {s}"));
        }
        if b[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        let json = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| format!("parsing {s:?}: {e}"))
        };
        match b[0] {
            b'f' => Ok(Some(Pe::Field(rest.to_string()))),
            b'v' => Ok(Some(Pe::Value(json(rest)?))),
            b'k' => {
                let Value::Object(map) = json(rest)? else {
                    return Err(format!("parsing {s:?}: expected a JSON object"));
                };
                let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Some(Pe::Key(fields)))
            }
            b'i' => rest
                .parse::<i64>()
                .map(|i| Some(Pe::Index(i)))
                .map_err(|e| format!("parsing {s:?}: {e}")),
            _ => Ok(None),
        }
    }

    /// As Kubernetes prints it: `.name`, `[name="x"]`, `[="x"]`, `[0]`.
    fn to_path_string(&self) -> String {
        match self {
            Pe::Field(name) => format!(".{name}"),
            Pe::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            Pe::Value(v) => format!("[={}]", value_to_string(v)),
            Pe::Index(i) => format!("[{i}]"),
        }
    }
}

impl Ord for Pe {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Pe::Field(a), Pe::Field(b)) => a.cmp(b),
            (Pe::Key(a), Pe::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| cmp_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Pe::Value(a), Pe::Value(b)) => cmp_values(a, b),
            (Pe::Index(a), Pe::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Pe {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pe {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pe {}

fn path_string(path: &[Pe]) -> String {
    path.iter().map(Pe::to_path_string).collect()
}

/// A set of field paths, stored as a trie: `members` are paths ending here, `children` the
/// subsets below a path element. Children are never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FieldSet {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, FieldSet>,
}

impl FieldSet {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path (the empty path, the whole object, is never tracked).
    fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    fn has(&self, path: &[Pe]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Members of `self` not members of `other` (a parent minus a child stays).
    fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// Every member path, members before children at each level (Kubernetes' order).
    fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        for member in &self.members {
            let mut path = prefix.clone();
            path.push(member.clone());
            out.push(path);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// FieldsV1 encoding: leaves are `{}`, a path that is both a member and has children
    /// carries `".": {}`; keys in path-element order.
    fn to_json(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            out.insert(".".into(), empty_object());
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let member = members.peek().copied();
            let child = children.peek().copied();
            match (member, child) {
                (None, None) => break,
                (Some(m), Some((c, _))) if m < c => {
                    out.insert(m.serialize(), empty_object());
                    members.next();
                }
                (Some(m), Some((c, set))) if m == c => {
                    out.insert(c.serialize(), Value::Object(set.emit(true)));
                    members.next();
                    children.next();
                }
                (_, Some((c, set))) => {
                    out.insert(c.serialize(), Value::Object(set.emit(false)));
                    children.next();
                }
                (Some(m), None) => {
                    out.insert(m.serialize(), empty_object());
                    members.next();
                }
            }
        }
        out
    }

    fn from_json(v: &Value) -> Result<FieldSet, String> {
        match v {
            Value::Null => Ok(FieldSet::default()),
            Value::Object(map) => Ok(Self::read(map)?.0.unwrap_or_default()),
            _ => Err("fieldsV1 must be a JSON object".into()),
        }
    }

    /// Returns the subset below this node and whether the node itself is a member.
    fn read(map: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), String> {
        let mut children: Option<FieldSet> = None;
        let mut is_member = false;
        for (key, value) in map {
            if key == "." {
                is_member = true;
                continue;
            }
            let Some(pe) = Pe::parse(key)? else { continue };
            let (grand, child_is_member) = match value {
                Value::Object(inner) => Self::read(inner)?,
                Value::Null => (None, true),
                _ => return Err(format!("parsing {key:?}: expected a JSON object")),
            };
            let set = children.get_or_insert_with(FieldSet::default);
            if child_is_member {
                set.members.insert(pe.clone());
            }
            if let Some(grand) = grand {
                let slot = set.children.entry(pe).or_default();
                *slot = slot.union(&grand);
            }
        }
        if children.is_none() {
            is_member = true;
        }
        Ok((children, is_member))
    }
}

/// The fields an object's system metadata occupies, never tracked for anyone.
fn strip_set() -> FieldSet {
    let mut set = FieldSet::default();
    for name in ["apiVersion", "kind", "metadata"] {
        set.insert(&[Pe::Field(name.into())]);
    }
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[Pe::Field("metadata".into()), Pe::Field(name.into())]);
    }
    set
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// A schema node, or "deduced" (untyped: maps granular, lists atomic).
#[derive(Clone, Copy, Debug)]
enum Ty<'a> {
    Deduced,
    Schema(&'a Value),
}

/// A struct/map type: declared fields plus the type of any other key.
#[derive(Clone, Copy, Debug)]
struct MapTy<'a> {
    props: Option<&'a Map<String, Value>>,
    rest: Ty<'a>,
}

impl<'a> MapTy<'a> {
    /// The type of a key and whether it is a declared (struct) field.
    fn field(&self, key: &str) -> (Ty<'a>, bool) {
        match self.props.and_then(|p| p.get(key)) {
            Some(node) => (Ty::Schema(node), true),
            None => (self.rest, false),
        }
    }
}

#[derive(Clone, Debug)]
enum ListRel {
    Atomic,
    Set,
    Keys(Vec<String>),
}

#[derive(Clone)]
enum Shape<'a> {
    Scalar,
    Deduced,
    /// A map type, atomic or not.
    Map(MapTy<'a>, bool),
    List(Ty<'a>, ListRel),
}

/// How a value is walked.
enum Node<'a> {
    /// Compared and replaced as a whole: scalars, atomic maps and lists, mismatches.
    Leaf,
    /// A granular map.
    Map(MapTy<'a>),
    /// An associative list (keyed or set).
    List(Ty<'a>, ListRel),
}

struct Ctx<'a> {
    defs: &'a Map<String, Value>,
    root: Ty<'a>,
    /// Whether the root is a built-in Kubernetes type (`io.k8s.api.*`).
    builtin: bool,
    /// Shapes already worked out, by schema node (a walk meets the same types again and
    /// again: every container, every env var...).
    shapes: std::cell::RefCell<HashMap<*const Value, Shape<'a>>>,
}

/// Who writes, for entries.
#[derive(Clone, Copy)]
struct Op<'s> {
    manager: &'s str,
    api_version: &'s str,
    subresource: &'s str,
    now: &'s str,
}

/// Internal form of a conflict, keeping the path for the last-applied check.
struct RawConflict {
    ident: String,
    path: Vec<Pe>,
    conflict: Conflict,
}

#[derive(Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl<'a> Ctx<'a> {
    fn new(defs: &'a Map<String, Value>, root: &str) -> Self {
        let builtin = root.starts_with("io.k8s.api.");
        let root = defs.get(root).map(Ty::Schema).unwrap_or(Ty::Deduced);
        Ctx {
            defs,
            root,
            builtin,
            shapes: std::cell::RefCell::default(),
        }
    }

    fn resolve_ref(&self, reference: &str) -> Option<&'a Value> {
        let name = reference.rsplit('/').next()?;
        if name.contains('~') {
            self.defs.get(&name.replace("~1", "/").replace("~0", "~"))
        } else {
            self.defs.get(name)
        }
    }

    /// A schema keyword, looked up on the node first, then through `$ref` / `allOf`.
    fn lookup(&self, node: &'a Value, key: &str) -> Option<&'a Value> {
        self.lookup_depth(node, key, 0)
    }

    fn lookup_depth(&self, node: &'a Value, key: &str, depth: usize) -> Option<&'a Value> {
        if depth > 32 {
            return None;
        }
        let obj = node.as_object()?;
        if let Some(v) = obj.get(key) {
            return Some(v);
        }
        if let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve_ref(r))
            && let Some(v) = self.lookup_depth(target, key, depth + 1)
        {
            return Some(v);
        }
        for part in obj
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = self.lookup_depth(part, key, depth + 1) {
                return Some(v);
            }
        }
        None
    }

    fn shape(&self, ty: Ty<'a>) -> Shape<'a> {
        let node = match ty {
            Ty::Deduced => return Shape::Deduced,
            Ty::Schema(node) if node.is_object() => node,
            Ty::Schema(_) => return Shape::Deduced,
        };
        let key = node as *const Value;
        if let Some(shape) = self.shapes.borrow().get(&key) {
            return shape.clone();
        }
        let shape = self.work_out_shape(node);
        self.shapes.borrow_mut().insert(key, shape.clone());
        shape
    }

    fn work_out_shape(&self, node: &'a Value) -> Shape<'a> {
        let flag = |k: &str| self.lookup(node, k).and_then(Value::as_bool) == Some(true);
        if flag("x-kubernetes-int-or-string") {
            return Shape::Scalar;
        }
        let typ = self.lookup(node, "type").and_then(Value::as_str);
        let items = self.lookup(node, "items");
        if typ == Some("array") || items.is_some() {
            let item_ty = match items {
                Some(v) if v.is_object() => Ty::Schema(v),
                _ => Ty::Deduced,
            };
            return Shape::List(item_ty, self.list_rel(node));
        }
        let props = self.lookup(node, "properties").and_then(Value::as_object);
        let atomic = self
            .lookup(node, "x-kubernetes-map-type")
            .and_then(Value::as_str)
            == Some("atomic");
        let rest = match self.lookup(node, "additionalProperties") {
            Some(v @ Value::Object(_)) => Some(Ty::Schema(v)),
            Some(Value::Bool(true)) => Some(Ty::Deduced),
            _ => None,
        };
        if typ == Some("object") || props.is_some() || rest.is_some() {
            if props.is_none() && rest.is_none() && !atomic {
                return Shape::Deduced;
            }
            return Shape::Map(
                MapTy {
                    props,
                    rest: rest.unwrap_or(Ty::Deduced),
                },
                atomic,
            );
        }
        match typ {
            Some("string" | "integer" | "number" | "boolean") => Shape::Scalar,
            _ => Shape::Deduced,
        }
    }

    fn list_rel(&self, node: &'a Value) -> ListRel {
        let text = |k: &str| self.lookup(node, k).and_then(Value::as_str);
        let merge_key = text("x-kubernetes-patch-merge-key");
        match text("x-kubernetes-list-type") {
            Some("map") => {
                let keys: Vec<String> = self
                    .lookup(node, "x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                match (keys.is_empty(), merge_key) {
                    (false, _) => ListRel::Keys(keys),
                    (true, Some(k)) => ListRel::Keys(vec![k.to_string()]),
                    (true, None) => ListRel::Set,
                }
            }
            Some("set") => ListRel::Set,
            Some(_) => ListRel::Atomic,
            None => {
                let merge = text("x-kubernetes-patch-strategy")
                    .is_some_and(|s| s.split(',').any(|part| part.trim() == "merge"));
                match (merge, merge_key) {
                    (true, Some(k)) => ListRel::Keys(vec![k.to_string()]),
                    (true, None) => ListRel::Set,
                    (false, _) => ListRel::Atomic,
                }
            }
        }
    }

    fn classify(&self, ty: Ty<'a>, v: &Value) -> Node<'a> {
        match self.shape(ty) {
            Shape::Scalar => Node::Leaf,
            Shape::Deduced if v.is_object() => Node::Map(MapTy {
                props: None,
                rest: Ty::Deduced,
            }),
            Shape::Deduced => Node::Leaf,
            Shape::Map(_, true) => Node::Leaf,
            Shape::Map(m, false) if v.is_object() || v.is_null() => Node::Map(m),
            Shape::Map(..) => Node::Leaf,
            Shape::List(_, ListRel::Atomic) => Node::Leaf,
            Shape::List(items, rel) if v.is_array() || v.is_null() => Node::List(items, rel),
            Shape::List(..) => Node::Leaf,
        }
    }

    /// Classifies a pair of values (either may be absent); values of different kinds are leaves.
    fn classify2(&self, ty: Ty<'a>, l: Option<&Value>, r: Option<&Value>) -> Node<'a> {
        let primary = r
            .filter(|v| !v.is_null())
            .or(l.filter(|v| !v.is_null()))
            .unwrap_or(&NULL);
        let node = self.classify(ty, primary);
        let fits = |v: Option<&Value>| match (v, &node) {
            (Some(v), Node::Map(_)) => v.is_null() || v.is_object(),
            (Some(v), Node::List(..)) => v.is_null() || v.is_array(),
            _ => true,
        };
        if fits(l) && fits(r) { node } else { Node::Leaf }
    }

    /// The default of an associative list's key field. Built-in types fall back to
    /// Kubernetes' `protocol: TCP` (ports of containers and services), which schemas
    /// generated without defaults lack.
    fn key_default(&self, items: Ty<'a>, key: &str) -> Option<Value> {
        let declared = match self.shape(items) {
            Shape::Map(m, _) => m.props.and_then(|p| p.get(key)),
            _ => None,
        };
        let default = declared
            .and_then(|node| self.lookup(node, "default"))
            .filter(|d| !d.is_null());
        match default {
            Some(d) => Some(d.clone()),
            None if self.builtin && key == "protocol" => Some(Value::String("TCP".into())),
            None => None,
        }
    }

    /// The path element of a list item.
    fn item_pe(&self, items: Ty<'a>, rel: &ListRel, item: &Value) -> Result<Pe, String> {
        match rel {
            ListRel::Keys(keys) => {
                let obj = match item {
                    Value::Null => {
                        return Err("associative list with keys may not have a null element".into());
                    }
                    Value::Object(o) => o,
                    _ => {
                        return Err(
                            "associative list with keys may not have non-map elements".into()
                        );
                    }
                };
                let mut fields = Vec::new();
                for key in keys {
                    if let Some(v) = obj.get(key) {
                        fields.push((key.clone(), v.clone()));
                    } else if let Some(d) = self.key_default(items, key) {
                        fields.push((key.clone(), d));
                    }
                }
                if fields.is_empty() {
                    let quoted: Vec<String> = keys.iter().map(|k| go_quote(k)).collect();
                    return Err(format!(
                        "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                        quoted.join(" ")
                    ));
                }
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Pe::Key(fields))
            }
            ListRel::Set => match item {
                Value::Object(_) => {
                    Err("associative list without keys has an element that's a map type".into())
                }
                Value::Array(_) => {
                    Err("not supported: associative list with lists as elements".into())
                }
                Value::Null => Err(
                    "associative list without keys has an element that's an explicit null".into(),
                ),
                v => Ok(Pe::Value(v.clone())),
            },
            ListRel::Atomic => Err("invalid indexing of non-associative list".into()),
        }
    }

    /// Checks what Kubernetes checks when typing an applied configuration: associative list
    /// items must have their keys and be unique.
    fn validate(&self, v: &Value, ty: Ty<'a>, path: &mut Vec<Pe>) -> Result<(), String> {
        match self.classify(ty, v) {
            Node::Leaf => Ok(()),
            Node::Map(m) => {
                for (k, child) in v.as_object().into_iter().flatten() {
                    path.push(Pe::Field(k.clone()));
                    self.validate(child, m.field(k).0, path)?;
                    path.pop();
                }
                Ok(())
            }
            Node::List(items, rel) => {
                let mut seen = BTreeSet::new();
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    let pe = self
                        .item_pe(items, &rel, item)
                        .map_err(|e| format!("{}: element {i}: {e}", path_string(path)))?;
                    if !seen.insert(pe.clone()) {
                        return Err(format!(
                            "{}: duplicate entries for key {}",
                            path_string(path),
                            pe.to_path_string()
                        ));
                    }
                    path.push(pe);
                    self.validate(item, items, path)?;
                    path.pop();
                }
                Ok(())
            }
        }
    }

    // ----- field sets of values -----

    fn to_field_set(&self, v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        self.collect_fields(v, self.root, &mut Vec::new(), &mut set);
        set
    }

    fn collect_fields(&self, v: &Value, ty: Ty<'a>, path: &mut Vec<Pe>, set: &mut FieldSet) {
        match self.classify(ty, v) {
            Node::Leaf => set.insert(path),
            Node::Map(m) => {
                for (k, child) in v.as_object().into_iter().flatten() {
                    let (child_ty, declared) = m.field(k);
                    path.push(Pe::Field(k.clone()));
                    self.collect_fields(child, child_ty, path, set);
                    if child.is_null() || child.as_object().is_some_and(Map::is_empty) || !declared
                    {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
            Node::List(items, rel) => {
                let Some(list) = v.as_array() else { return };
                let pes: Vec<Option<Pe>> = list
                    .iter()
                    .map(|item| self.item_pe(items, &rel, item).ok())
                    .collect();
                let mut counts: BTreeMap<&Pe, usize> = BTreeMap::new();
                for pe in pes.iter().flatten() {
                    *counts.entry(pe).or_default() += 1;
                }
                for (pe, n) in &counts {
                    if *n > 1 {
                        path.push((*pe).clone());
                        set.insert(path);
                        path.pop();
                    }
                }
                for (item, pe) in list.iter().zip(&pes) {
                    let Some(pe) = pe else { continue };
                    if counts[pe] > 1 {
                        continue;
                    }
                    path.push(pe.clone());
                    self.collect_fields(item, items, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
        }
    }

    /// Fields added, modified and removed going from `l` to `r`.
    fn compare(&self, l: &Value, r: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare_at(Some(l), Some(r), self.root, &mut Vec::new(), &mut out);
        out
    }

    /// [`Ctx::compare`] of what a write in `scope` may change, without copying either object:
    /// for the status subresource only `status`; for the main resource everything but
    /// `status` and `metadata.managedFields` (which the caller rewrites, and which `new` no
    /// longer holds).
    fn compare_scoped(&self, scope: Scope, old: &Value, new: &Value) -> Comparison {
        let (Some(lm), Some(rm), Node::Map(root)) = (
            old.as_object(),
            new.as_object(),
            self.classify2(self.root, Some(old), Some(new)),
        ) else {
            return scope.filter_comparison(self.compare(old, new));
        };
        let mut out = Comparison::default();
        let mut path = Vec::new();
        let in_scope = |k: &str| match scope {
            Scope::Status => k == "status",
            Scope::Main => k != "status" && k != "metadata",
        };
        self.compare_fields(Some(lm), Some(rm), &root, in_scope, &mut path, &mut out);
        let (lv, rv) = (lm.get("metadata"), rm.get("metadata"));
        if scope == Scope::Main && (lv.is_some() || rv.is_some()) {
            let ty = root.field("metadata").0;
            path.push(Pe::Field("metadata".into()));
            match (self.classify2(ty, lv, rv), lv.and_then(Value::as_object)) {
                (Node::Map(meta), Some(lmeta)) if rv.is_some_and(Value::is_object) => {
                    let rmeta = rv.and_then(Value::as_object);
                    let not_managed = |f: &str| f != "managedFields";
                    self.compare_fields(
                        Some(lmeta),
                        rmeta,
                        &meta,
                        not_managed,
                        &mut path,
                        &mut out,
                    );
                }
                _ => self.compare_at(lv, rv, ty, &mut path, &mut out),
            }
            path.pop();
        }
        out
    }

    /// Compares the fields of two maps of type `m` that `keep` admits: those of `lm` in order,
    /// then those only `rm` has.
    fn compare_fields(
        &self,
        lm: Option<&Map<String, Value>>,
        rm: Option<&Map<String, Value>>,
        m: &MapTy<'a>,
        keep: impl Fn(&str) -> bool,
        path: &mut Vec<Pe>,
        out: &mut Comparison,
    ) {
        let only_right = rm
            .into_iter()
            .flatten()
            .filter(|(k, _)| !lm.is_some_and(|o| o.contains_key(*k)))
            .map(|(k, _)| k);
        for k in lm.into_iter().flat_map(Map::keys).chain(only_right) {
            if !keep(k) {
                continue;
            }
            path.push(Pe::Field(k.clone()));
            self.compare_at(
                lm.and_then(|o| o.get(k)),
                rm.and_then(|o| o.get(k)),
                m.field(k).0,
                path,
                out,
            );
            path.pop();
        }
    }

    fn compare_at(
        &self,
        l: Option<&Value>,
        r: Option<&Value>,
        ty: Ty<'a>,
        path: &mut Vec<Pe>,
        out: &mut Comparison,
    ) {
        // Identical subtrees hold no change: most of an object is untouched by an update.
        if let (Some(a), Some(b)) = (l, r)
            && a == b
        {
            return;
        }
        let leaf = match self.classify2(ty, l, r) {
            Node::Leaf => true,
            Node::Map(m) => {
                let lm = l.and_then(Value::as_object);
                let rm = r.and_then(Value::as_object);
                if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                    true
                } else {
                    self.compare_fields(lm, rm, &m, |_| true, path, out);
                    false
                }
            }
            Node::List(items, rel) => {
                let la = l.and_then(Value::as_array);
                let ra = r.and_then(Value::as_array);
                if la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty) {
                    true
                } else {
                    self.compare_items(la, ra, items, &rel, path, out);
                    false
                }
            }
        };
        match (l, r) {
            (None, _) => out.added.insert(path),
            (_, None) => out.removed.insert(path),
            (Some(a), Some(b)) if leaf && !values_equal(a, b) => out.modified.insert(path),
            _ => {}
        }
    }

    fn compare_items(
        &self,
        la: Option<&Vec<Value>>,
        ra: Option<&Vec<Value>>,
        items: Ty<'a>,
        rel: &ListRel,
        path: &mut Vec<Pe>,
        out: &mut Comparison,
    ) {
        let mut order: Vec<Pe> = Vec::new();
        let mut lhs: BTreeMap<Pe, Vec<&Value>> = BTreeMap::new();
        let mut rhs: BTreeMap<Pe, Vec<&Value>> = BTreeMap::new();
        for item in la.into_iter().flatten() {
            let Ok(pe) = self.item_pe(items, rel, item) else {
                continue;
            };
            let slot = lhs.entry(pe.clone()).or_default();
            if slot.is_empty() {
                order.push(pe);
            }
            slot.push(item);
        }
        for item in ra.into_iter().flatten() {
            let Ok(pe) = self.item_pe(items, rel, item) else {
                continue;
            };
            let slot = rhs.entry(pe.clone()).or_default();
            if slot.is_empty() && !lhs.contains_key(&pe) {
                order.push(pe);
            }
            slot.push(item);
        }
        for pe in order {
            let l: &[&Value] = lhs.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
            let r: &[&Value] = rhs.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
            path.push(pe);
            if l.len() <= 1 && r.len() <= 1 {
                self.compare_at(l.first().copied(), r.first().copied(), items, path, out);
            } else if l.len() >= 2 && r.len() >= 2 {
                if l.len() != r.len() || l.iter().zip(r).any(|(a, b)| !values_equal(a, b)) {
                    out.modified.insert(path);
                }
            } else if l.len() >= 2 {
                if let Some(item) = r.first() {
                    self.compare_at(None, Some(item), items, path, out);
                }
                out.removed.insert(path);
            } else {
                if let Some(item) = l.first() {
                    self.compare_at(Some(item), None, items, path, out);
                }
                out.added.insert(path);
            }
            path.pop();
        }
    }

    // ----- merge -----

    /// Merges `r` (the configuration) into `l` (the live value).
    fn merge(&self, l: Option<&Value>, r: Option<&Value>, ty: Ty<'a>) -> Option<Value> {
        let keep_rhs = || r.or(l).cloned();
        match self.classify2(ty, l, r) {
            Node::Leaf => keep_rhs(),
            Node::Map(m) => {
                let lm = l.and_then(Value::as_object);
                let rm = r.and_then(Value::as_object);
                if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                    return keep_rhs();
                }
                let mut out = Map::new();
                let mut put = |k: &String, lv: Option<&Value>, rv: Option<&Value>| {
                    if let Some(v) = self.merge(lv, rv, m.field(k).0) {
                        // An explicit null in the configuration clears the field.
                        if !(v.is_null() && rv.is_some_and(Value::is_null)) {
                            out.insert(k.clone(), v);
                        }
                    }
                };
                for (k, lv) in lm.into_iter().flatten() {
                    put(k, Some(lv), rm.and_then(|o| o.get(k)));
                }
                for (k, rv) in rm.into_iter().flatten() {
                    if !lm.is_some_and(|o| o.contains_key(k)) {
                        put(k, None, Some(rv));
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Node::List(items, rel) => {
                let la = l.and_then(Value::as_array);
                let ra = r.and_then(Value::as_array);
                if la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty) {
                    return keep_rhs();
                }
                let out = self.merge_items(
                    la.map(Vec::as_slice).unwrap_or(&[]),
                    ra.map(Vec::as_slice).unwrap_or(&[]),
                    items,
                    &rel,
                );
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    /// Merges associative list items: live items keep their place, configured items are merged
    /// into their live counterpart, new items follow the configuration's order.
    fn merge_items(&self, la: &[Value], ra: &[Value], items: Ty<'a>, rel: &ListRel) -> Vec<Value> {
        let mut r_index: BTreeMap<Pe, &Value> = BTreeMap::new();
        let mut rhs: Vec<Pe> = Vec::new();
        for item in ra {
            if let Ok(pe) = self.item_pe(items, rel, item)
                && !r_index.contains_key(&pe)
            {
                r_index.insert(pe.clone(), item);
                rhs.push(pe);
            }
        }
        let lhs: Vec<(Option<Pe>, &Value)> = la
            .iter()
            .map(|item| (self.item_pe(items, rel, item).ok(), item))
            .collect();
        // Duplicated live items merge as null.
        let mut l_index: BTreeMap<Pe, &Value> = BTreeMap::new();
        for (pe, item) in &lhs {
            if let Some(pe) = pe {
                l_index
                    .entry(pe.clone())
                    .and_modify(|v| *v = &NULL)
                    .or_insert(*item);
            }
        }
        let mut shared = rhs.iter().filter(|pe| l_index.contains_key(*pe));
        let mut next_shared = shared.next();
        let mut merged: BTreeSet<&Pe> = BTreeSet::new();
        let mut out = Vec::new();
        let (mut li, mut ri) = (0, 0);
        while li < lhs.len() || ri < rhs.len() {
            if li < lhs.len()
                && ri < rhs.len()
                && let Some(lpe) = &lhs[li].0
            {
                if *lpe == rhs[ri] {
                    merged.insert(&rhs[ri]);
                    out.extend(self.merge(
                        l_index.get(lpe).copied(),
                        r_index.get(lpe).copied(),
                        items,
                    ));
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if r_index.contains_key(lpe) && next_shared.is_some_and(|n| n != lpe) {
                    // Shared with the configuration, but not its turn yet.
                    li += 1;
                    continue;
                }
            }
            if li < lhs.len() {
                match &lhs[li].0 {
                    None => {
                        out.push(lhs[li].1.clone());
                        li += 1;
                        continue;
                    }
                    Some(lpe) if !r_index.contains_key(lpe) => {
                        out.extend(self.merge(Some(lhs[li].1), None, items));
                        li += 1;
                        continue;
                    }
                    Some(lpe) if merged.contains(lpe) => li += 1,
                    Some(_) => {}
                }
            }
            if ri < rhs.len() {
                let pe = &rhs[ri];
                merged.insert(pe);
                out.extend(self.merge(l_index.get(pe).copied(), r_index.get(pe).copied(), items));
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }

    // ----- removal and pruning -----

    /// `v` without the paths in `set`; `None` when nothing is left.
    fn remove(&self, v: &Value, set: &FieldSet, ty: Ty<'a>) -> Option<Value> {
        match self.classify(ty, v) {
            Node::Leaf => Some(v.clone()),
            Node::Map(m) => {
                let obj = v.as_object().filter(|o| !o.is_empty())?;
                let mut out = Map::new();
                for (k, child) in obj {
                    let pe = Pe::Field(k.clone());
                    if set.members.contains(&pe) {
                        continue;
                    }
                    match set.children.get(&pe) {
                        Some(sub) => {
                            if let Some(kept) = self.remove(child, sub, m.field(k).0) {
                                out.insert(k.clone(), kept);
                            }
                        }
                        None => {
                            out.insert(k.clone(), child.clone());
                        }
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Node::List(items, rel) => {
                let list = v.as_array().filter(|a| !a.is_empty())?;
                let mut out = Vec::new();
                for item in list {
                    match self.item_pe(items, &rel, item) {
                        Ok(pe) if set.members.contains(&pe) => {}
                        Ok(pe) => match set.children.get(&pe) {
                            Some(sub) => out.extend(self.remove(item, sub, items)),
                            None => out.push(item.clone()),
                        },
                        Err(_) => out.push(item.clone()),
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    fn remove_root(&self, v: &Value, set: &FieldSet) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        self.remove(v, set, self.root).unwrap_or_else(empty_object)
    }

    /// `set` plus every declared struct field that has members below it.
    fn ensure_named(&self, set: &FieldSet, ty: Ty<'a>) -> FieldSet {
        let shape = self.shape(ty);
        let mut out = FieldSet {
            members: set.members.clone(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &set.children {
            let child_ty = match (pe, &shape) {
                (Pe::Field(name), Shape::Map(m, _)) => {
                    let (t, declared) = m.field(name);
                    if declared {
                        out.members.insert(pe.clone());
                    }
                    t
                }
                (Pe::Key(_), Shape::List(items, _)) => *items,
                _ => Ty::Deduced,
            };
            out.children
                .insert(pe.clone(), self.ensure_named(child, child_ty));
        }
        out
    }

    /// The object a create is compared against. Kubernetes compares against the Go zero
    /// value of the type, in which non-pointer structs (`spec`, `template`, ...) and fields
    /// without `omitempty` (the schema's `required`) are present, so these do not become
    /// owned themselves (no `"."`). For built-in types this is approximated from the schema;
    /// other types start from `{}`, like custom resources in Kubernetes.
    fn zero_object(&self) -> Value {
        if !self.builtin {
            return empty_object();
        }
        self.zero_struct(self.root, 0)
    }

    fn zero_struct(&self, ty: Ty<'a>, depth: usize) -> Value {
        let mut out = Map::new();
        let (
            Ty::Schema(node),
            Shape::Map(
                MapTy {
                    props: Some(props), ..
                },
                _,
            ),
        ) = (ty, self.shape(ty))
        else {
            return Value::Object(out);
        };
        let required: Vec<&str> = self
            .lookup(node, "required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, prop) in props {
            let is_struct = matches!(
                self.shape(Ty::Schema(prop)),
                Shape::Map(MapTy { props: Some(_), .. }, false)
            );
            let non_pointer = matches!(
                name.as_str(),
                "metadata"
                    | "spec"
                    | "status"
                    | "template"
                    | "jobTemplate"
                    | "strategy"
                    | "updateStrategy"
            );
            if is_struct && non_pointer && depth < 8 {
                out.insert(name.clone(), self.zero_struct(Ty::Schema(prop), depth + 1));
            } else if required.contains(&name.as_str()) {
                out.insert(name.clone(), Value::Null);
            }
        }
        Value::Object(out)
    }

    fn named_fields_of(&self, v: &Value) -> FieldSet {
        self.ensure_named(&self.to_field_set(v), self.root)
    }

    /// Removes what the applier applied last time (`last`) but no longer applies, unless some
    /// manager (the applier's new configuration included) still owns it.
    fn prune(&self, merged: Value, managed: &[Entry], last: &FieldSet) -> Value {
        if last.is_empty() {
            return merged;
        }
        let last = self.ensure_named(last, self.root);
        let pruned = self.remove_root(&merged, &last);
        let mut owned = FieldSet::default();
        for entry in managed {
            owned = owned.union(&entry.set);
        }
        let merged_set = self.named_fields_of(&merged);
        let keep = self
            .named_fields_of(&pruned)
            .union(&self.ensure_named(&owned, self.root));
        // Add back what someone owns...
        let pruned = self.remove_root(&merged, &merged_set.difference(&keep));
        // ...and anything that was not the applier's to begin with.
        let gone = merged_set
            .difference(&self.named_fields_of(&pruned))
            .intersection(&last);
        self.remove_root(&merged, &gone)
    }

    // ----- the field manager -----

    /// An apply by `op` of `config` onto `live` (both without managedFields).
    fn apply_fields(
        &self,
        scope: Scope,
        live: &Value,
        config: &Value,
        mut managed: Vec<Entry>,
        op: &Op<'_>,
        force: bool,
    ) -> Result<(Value, Vec<Entry>), Vec<RawConflict>> {
        let merged = self
            .merge(Some(live), Some(config), self.root)
            .unwrap_or_else(empty_object);
        let ident = identifier(op.manager, APPLY, op.api_version, op.subresource);
        let pos = managed.iter().position(|e| e.ident() == ident);
        let last = pos.map(|i| managed[i].set.clone());
        let entry = Entry {
            manager: op.manager.to_string(),
            operation: APPLY.to_string(),
            api_version: op.api_version.to_string(),
            subresource: op.subresource.to_string(),
            time: pos.and_then(|i| managed[i].time.clone()),
            set: scope.filter(&self.to_field_set(config)),
            raw: None,
        };
        match pos {
            Some(i) => managed[i] = entry,
            None => managed.push(entry),
        }
        let object = match &last {
            Some(last) => self.prune(merged, &managed, last),
            None => merged,
        };

        let cmp = scope.filter_comparison(self.compare(live, &object));
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Vec::new();
        for entry in managed.iter().filter(|e| e.ident() != ident) {
            for path in entry.set.intersection(&changed).paths() {
                conflicts.push(RawConflict {
                    ident: entry.ident(),
                    conflict: Conflict {
                        manager: entry.manager.clone(),
                        field: path_string(&path),
                        operation: entry.operation.clone(),
                        api_version: entry.api_version.clone(),
                        subresource: entry.subresource.clone(),
                    },
                    path,
                });
            }
        }
        if !force && !conflicts.is_empty() {
            conflicts.sort_by(|a, b| a.ident.cmp(&b.ident));
            return Err(conflicts);
        }
        for entry in managed.iter_mut().filter(|e| e.ident() != ident) {
            entry.set = entry.set.difference(&changed).difference(&cmp.removed);
        }
        let strip = strip_set();
        let unchanged = values_equal(live, &object);
        for entry in managed.iter_mut().filter(|e| e.ident() == ident) {
            entry.set = entry.set.difference(&strip);
            if !unchanged {
                entry.time = Some(op.now.to_string());
            }
        }
        managed.retain(|e| !e.set.is_empty());
        Ok((object, managed))
    }

    /// A non-apply write by `op` from `old` to `new` (both without managedFields).
    fn update_fields(
        &self,
        scope: Scope,
        old: &Value,
        new: &Value,
        managed: &mut Vec<Entry>,
        op: &Op<'_>,
    ) {
        let cmp = self.compare_scoped(scope, old, new);
        let changed = cmp.modified.union(&cmp.added);
        for entry in managed.iter_mut() {
            entry.disown(&changed, &cmp.removed);
        }
        managed.retain(|e| !e.is_empty());
        let set = changed.difference(&strip_set());
        if !set.is_empty() {
            let ident = identifier(op.manager, UPDATE, op.api_version, op.subresource);
            match managed.iter_mut().find(|e| e.ident() == ident) {
                Some(entry) => {
                    let mine = entry.parse();
                    *mine = set.union(mine);
                    entry.time = Some(op.now.to_string());
                }
                None => managed.push(Entry {
                    manager: op.manager.to_string(),
                    operation: UPDATE.to_string(),
                    api_version: op.api_version.to_string(),
                    subresource: op.subresource.to_string(),
                    time: Some(op.now.to_string()),
                    set,
                    raw: None,
                }),
            }
        }
        cap_update_managers(managed);
    }

    /// Fields recorded in the client-side apply annotation whose values still match the live
    /// object: `kubectl` may take these over from other managers without conflict.
    fn allowed_from_last_applied(&self, live: &Value, api_version: &str) -> Option<FieldSet> {
        let text = live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())?;
        let last: Value = serde_json::from_str(text).ok()?;
        if !last.is_object() || last.get("apiVersion").and_then(Value::as_str) != Some(api_version)
        {
            return None;
        }
        self.validate(&last, self.root, &mut Vec::new()).ok()?;
        let cmp = self.compare(&last, live);
        Some(
            self.to_field_set(&last)
                .difference(&cmp.modified)
                .difference(&cmp.added)
                .difference(&cmp.removed),
        )
    }
}

/// Which part of the object a request writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// The main resource: `status` is ignored.
    Main,
    /// The status subresource: only `status` counts.
    Status,
}

impl Scope {
    fn of(subresource: Option<&str>) -> Scope {
        if subresource == Some("status") {
            Scope::Status
        } else {
            Scope::Main
        }
    }

    fn filter(self, set: &FieldSet) -> FieldSet {
        let status = Pe::Field("status".into());
        match self {
            Scope::Main => {
                let mut out = set.clone();
                out.members.remove(&status);
                out.children.remove(&status);
                out
            }
            Scope::Status => {
                let mut out = FieldSet::default();
                if set.members.contains(&status) {
                    out.members.insert(status.clone());
                }
                if let Some(child) = set.children.get(&status) {
                    out.children.insert(status, child.clone());
                }
                out
            }
        }
    }

    fn filter_comparison(self, c: Comparison) -> Comparison {
        Comparison {
            added: self.filter(&c.added),
            modified: self.filter(&c.modified),
            removed: self.filter(&c.removed),
        }
    }

    /// The part of an applied configuration that is merged.
    fn restrict_config(self, applied: &Map<String, Value>) -> Map<String, Value> {
        let mut config = match self {
            Scope::Main => {
                let mut c = applied.clone();
                c.remove("status");
                c
            }
            Scope::Status => {
                let mut c: Map<String, Value> = applied
                    .iter()
                    .filter(|(k, _)| matches!(k.as_str(), "apiVersion" | "kind" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(meta) = applied.get("metadata").and_then(Value::as_object) {
                    let kept: Map<String, Value> = meta
                        .iter()
                        .filter(|(k, _)| matches!(k.as_str(), "name" | "namespace"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    c.insert("metadata".into(), Value::Object(kept));
                }
                c
            }
        };
        if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
            ] {
                meta.remove(key);
            }
        }
        config
    }
}

// ---------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    time: Option<String>,
    /// The owned fields; empty while `raw` holds them unparsed.
    set: FieldSet,
    /// The `fieldsV1` of a stored entry, not parsed yet: a write that does not touch what
    /// the entry owns keeps it as it is, without parsing or printing it.
    raw: Option<Value>,
}

impl Entry {
    /// Parses the raw fields, if any, into `set`. Stored entries always parse (the server
    /// wrote them); one that does not owns nothing.
    fn parse(&mut self) -> &mut FieldSet {
        if let Some(raw) = self.raw.take() {
            self.set = FieldSet::from_json(&raw).unwrap_or_default();
        }
        &mut self.set
    }

    /// Whether the entry owns nothing.
    fn is_empty(&self) -> bool {
        match &self.raw {
            Some(Value::Object(map)) => map.is_empty(),
            Some(_) => true,
            None => self.set.is_empty(),
        }
    }

    /// Takes away what `changed` and `removed` hold (fields another manager now owns, or
    /// that are gone), parsing the raw fields only if they hold some of it.
    fn disown(&mut self, changed: &FieldSet, removed: &FieldSet) {
        if let Some(raw) = &self.raw {
            let untouched = match raw {
                Value::Object(map) => !raw_touches(map, changed) && !raw_touches(map, removed),
                _ => true,
            };
            if untouched {
                return;
            }
        }
        let set = self.parse();
        *set = set.difference(changed).difference(removed);
    }

    fn ident(&self) -> String {
        identifier(
            &self.manager,
            &self.operation,
            &self.api_version,
            &self.subresource,
        )
    }

    fn into_json(mut self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), Value::String(self.manager));
        }
        m.insert("operation".into(), Value::String(self.operation));
        m.insert("apiVersion".into(), Value::String(self.api_version));
        if let Some(time) = self.time {
            m.insert("time".into(), Value::String(time));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        let fields = match self.raw.take() {
            Some(raw) => raw,
            None => self.set.to_json(),
        };
        m.insert("fieldsV1".into(), fields);
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), Value::String(self.subresource));
        }
        Value::Object(m)
    }
}

/// Kubernetes' manager identity (the JSON of the entry's identifying fields): Apply entries
/// are per manager and subresource, Update entries also per apiVersion.
fn identifier(manager: &str, operation: &str, api_version: &str, subresource: &str) -> String {
    let mut s = String::from("{");
    let mut fields = vec![("manager", manager), ("operation", operation)];
    if operation != APPLY {
        fields.push(("apiVersion", api_version));
    }
    fields.push(("subresource", subresource));
    for (name, value) in fields.into_iter().filter(|(_, v)| !v.is_empty()) {
        if s.len() > 1 {
            s.push(',');
        }
        s.push('"');
        s.push_str(name);
        s.push_str("\":");
        gojson::write_str(value, &mut s);
    }
    s.push('}');
    s
}

fn decode_managed(list: Option<&Value>) -> Result<Vec<Entry>, String> {
    let Some(list) = list.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or("managedFields must be a list")?;
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let mut entry = entry_header(i, raw)?;
        entry.set = FieldSet::from_json(raw.get("fieldsV1").unwrap_or(&NULL))?;
        keep_last(&mut out, entry);
    }
    Ok(out)
}

/// [`decode_managed`] of a list the server stored (so every entry parses), taking it over:
/// each entry's `fieldsV1` stays raw until a write touches what it owns.
fn decode_stored_managed(list: Option<Value>) -> Result<Vec<Entry>, String> {
    let list = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    let mut out: Vec<Entry> = Vec::new();
    for (i, mut raw) in list.into_iter().enumerate() {
        let mut entry = entry_header(i, &raw)?;
        let fields = raw
            .as_object_mut()
            .and_then(|o| o.remove("fieldsV1"))
            .unwrap_or(Value::Null);
        if !matches!(fields, Value::Object(_) | Value::Null) {
            return Err("fieldsV1 must be a JSON object".into());
        }
        entry.raw = Some(fields);
        keep_last(&mut out, entry);
    }
    Ok(out)
}

/// An entry's identity and time, checked; its set is left empty.
fn entry_header(i: usize, raw: &Value) -> Result<Entry, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("managed fields entry {i} must be an object"))?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let operation = text("operation");
    if operation != APPLY && operation != UPDATE {
        return Err("operation must be `Apply` or `Update`".into());
    }
    let api_version = text("apiVersion");
    if api_version.is_empty() {
        return Err("apiVersion must not be empty".into());
    }
    match text("fieldsType").as_str() {
        "FieldsV1" => {}
        "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
        other => {
            return Err(format!(
                "invalid fieldsType {other:?} in managed fields entry {i}"
            ));
        }
    }
    Ok(Entry {
        manager: text("manager"),
        operation,
        api_version,
        subresource: text("subresource"),
        time: obj.get("time").and_then(Value::as_str).map(String::from),
        set: FieldSet::default(),
        raw: None,
    })
}

/// Adds `entry`, replacing an earlier one of the same identity.
fn keep_last(out: &mut Vec<Entry>, entry: Entry) {
    let ident = entry.ident();
    match out.iter().position(|e| e.ident() == ident) {
        Some(pos) => out[pos] = entry,
        None => out.push(entry),
    }
}

/// Whether the FieldsV1 tree `raw` has a member that is also a member of `s`, i.e. whether
/// taking `s` away from it changes it (see [`FieldSet::difference`]). Read like
/// [`FieldSet::read`]; anything unexpected answers yes, so the caller parses and decides.
fn raw_touches(raw: &Map<String, Value>, s: &FieldSet) -> bool {
    if s.members.is_empty() && s.children.is_empty() {
        return false;
    }
    for (key, value) in raw {
        if key == "." {
            continue;
        }
        let pe = match Pe::parse(key) {
            Ok(Some(pe)) => pe,
            Ok(None) => continue,
            Err(_) => return true,
        };
        let inner = match value {
            Value::Object(inner) => Some(inner),
            Value::Null => None,
            _ => return true,
        };
        let below = s.children.get(&pe);
        if !s.members.contains(&pe) && below.is_none() {
            continue;
        }
        let Some(inner) = inner.filter(|m| !m.is_empty()) else {
            // A leaf: a member with nothing below.
            if s.members.contains(&pe) {
                return true;
            }
            continue;
        };
        let known_below = inner.keys().any(|k| {
            let b = k.as_bytes();
            b.len() >= 2 && b[1] == b':' && matches!(b[0], b'f' | b'k' | b'v' | b'i')
        });
        if !known_below || inner.contains_key(".") {
            // A member (and maybe more below).
            if s.members.contains(&pe) {
                return true;
            }
        }
        if let Some(below) = below
            && raw_touches(inner, below)
        {
            return true;
        }
    }
    false
}

/// `[]` or `[{}]`: the client asks to clear managedFields.
fn is_reset(list: Option<&Value>) -> bool {
    match list.and_then(Value::as_array).map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only
            .as_object()
            .is_some_and(|o| o.values().all(|v| v.is_null() || v.as_str() == Some(""))),
        _ => false,
    }
}

/// Stores `managed` in the object, sorted like Kubernetes (operation, time, manager,
/// apiVersion, subresource); removes the field when there is nothing to store.
fn write_managed(object: &mut Value, mut managed: Vec<Entry>) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    if managed.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        return;
    }
    managed.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| time_seconds(a.time.as_deref()).cmp(&time_seconds(b.time.as_deref())))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let list = Value::Array(managed.into_iter().map(Entry::into_json).collect());
    let meta = obj.entry("metadata").or_insert_with(empty_object);
    if !meta.is_object() {
        *meta = empty_object();
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.remove("managedFields");
        meta.insert("managedFields".into(), list);
    }
}

fn remove_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// Keeps at most [`MAX_UPDATE_MANAGERS`] Update entries by merging the oldest into one
/// `ancient-changes` entry per apiVersion.
fn cap_update_managers(managed: &mut Vec<Entry>) {
    let mut updaters: Vec<(i64, String)> = managed
        .iter()
        .filter(|e| e.operation != APPLY)
        .map(|e| (time_seconds(e.time.as_deref()), e.ident()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort();
    let mut remaining = updaters.len();
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    for (_, ident) in updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(pos) = managed.iter().position(|e| e.ident() == ident) else {
            continue;
        };
        let version = managed[pos].api_version.clone();
        let bucket = identifier(ANCIENT_CHANGES, UPDATE, &version, "");
        if ident == bucket {
            first_of_version.entry(version).or_insert(ident);
            continue;
        }
        let Some(first) = first_of_version.get(&version) else {
            first_of_version.insert(version, ident);
            continue;
        };
        if !managed.iter().any(|e| e.ident() == bucket)
            && let Some(f) = managed.iter_mut().find(|e| e.ident() == *first)
        {
            f.manager = ANCIENT_CHANGES.to_string();
            f.subresource = String::new();
        }
        let mut merged = managed.remove(pos);
        if let Some(b) = managed.iter_mut().find(|e| e.ident() == bucket) {
            let into = b.parse();
            *into = merged.parse().union(into);
            b.time = merged.time;
        }
        remaining -= 1;
    }
}

/// Keeps `kubectl.kubernetes.io/last-applied-configuration` (when present) equal to what
/// `kubectl` server-side applied, so that client-side apply keeps working.
fn sync_last_applied(object: &mut Value, applied: &Value) {
    let has = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut last = applied.clone();
    if let Some(annotations) = last
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
    let mut text = String::new();
    gojson::write_value(&last, true, &mut text);
    text.push('\n');
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED.into(), Value::String(text));
        let size: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > MAX_ANNOTATIONS_SIZE {
            annotations.remove(LAST_APPLIED);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn value_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// A total order on values: numbers (compared numerically) < strings < bools < lists < maps < null.
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = cmp_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for (i, key) in keys.into_iter().enumerate() {
                let c = if i == x.len() {
                    Ordering::Less
                } else if i == y.len() {
                    Ordering::Greater
                } else {
                    match (x.get(key), y.get(key)) {
                        (None, _) => Ordering::Greater,
                        (_, None) => Ordering::Less,
                        (Some(p), Some(q)) => cmp_values(p, q),
                    }
                };
                if c != Ordering::Equal {
                    return c;
                }
            }
            Ordering::Equal
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => value_rank(a).cmp(&value_rank(b)),
    }
}

/// Deep equality with numbers compared by value (`1` equals `1.0`).
fn values_equal(a: &Value, b: &Value) -> bool {
    cmp_values(a, b) == Ordering::Equal
}

/// A string quoted like Go's `%q`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as structured-merge-diff prints it inside field paths.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => gojson::number(n),
        Value::String(s) => go_quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(value_to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| format!("{k}={}", value_to_string(&map[k])))
                .collect()
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time (0 when absent or unparsable).
fn time_seconds(time: Option<&str>) -> i64 {
    time.and_then(parse_rfc3339).unwrap_or(0)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let offset = match *b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let o = num(i + 1, i + 3)? * 3600 + num(i + 4, i + 6)? * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "io.k8s.api.apps.v1.Deployment";
    const T0: &str = "2024-01-01T00:00:00Z";
    const T1: &str = "2024-01-01T00:01:00Z";
    const T2: &str = "2024-01-01T00:02:00Z";

    fn r(name: &str) -> Value {
        json!({ "allOf": [{ "$ref": format!("#/components/schemas/{name}") }], "default": {} })
    }

    fn schemas() -> Map<String, Value> {
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        let schemas = json!({
            "io.k8s.api.apps.v1.Deployment": {
                "type": "object",
                "properties": {
                    "apiVersion": { "type": "string" },
                    "kind": { "type": "string" },
                    "metadata": r(meta),
                    "spec": r("io.k8s.api.apps.v1.DeploymentSpec"),
                    "status": r("io.k8s.api.apps.v1.DeploymentStatus")
                }
            },
            meta: {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "namespace": { "type": "string" },
                    "uid": { "type": "string" },
                    "resourceVersion": { "type": "string" },
                    "generation": { "type": "integer", "format": "int64" },
                    "creationTimestamp": { "type": "string", "format": "date-time" },
                    "labels": { "type": "object", "additionalProperties": { "type": "string", "default": "" } },
                    "annotations": { "type": "object", "additionalProperties": { "type": "string", "default": "" } },
                    "finalizers": {
                        "type": "array",
                        "items": { "type": "string", "default": "" },
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "managedFields": {
                        "type": "array",
                        "items": r("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry")
                    }
                }
            },
            "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry": {
                "type": "object",
                "properties": { "manager": { "type": "string" }, "fieldsV1": { "type": "object" } }
            },
            "io.k8s.api.apps.v1.DeploymentSpec": {
                "type": "object",
                "required": ["selector", "template"],
                "properties": {
                    "replicas": { "type": "integer", "format": "int32" },
                    "paused": { "type": "boolean" },
                    "selector": r("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
                    "template": r("io.k8s.api.core.v1.PodTemplateSpec")
                }
            },
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
                "type": "object",
                "properties": {
                    "matchLabels": { "type": "object", "additionalProperties": { "type": "string", "default": "" } }
                },
                "x-kubernetes-map-type": "atomic"
            },
            "io.k8s.api.core.v1.PodTemplateSpec": {
                "type": "object",
                "properties": { "metadata": r(meta), "spec": r("io.k8s.api.core.v1.PodSpec") }
            },
            "io.k8s.api.core.v1.PodSpec": {
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": r("io.k8s.api.core.v1.Container"),
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    }
                }
            },
            "io.k8s.api.core.v1.Container": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": { "type": "string" },
                    "image": { "type": "string" },
                    "args": { "type": "array", "items": { "type": "string", "default": "" }, "x-kubernetes-list-type": "atomic" },
                    "env": {
                        "type": "array",
                        "items": r("io.k8s.api.core.v1.EnvVar"),
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "ports": {
                        "type": "array",
                        "items": r("io.k8s.api.core.v1.ContainerPort"),
                        "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "containerPort",
                        "x-kubernetes-patch-strategy": "merge"
                    }
                }
            },
            "io.k8s.api.core.v1.EnvVar": {
                "type": "object",
                "properties": { "name": { "type": "string", "default": "" }, "value": { "type": "string" } }
            },
            "io.k8s.api.core.v1.ContainerPort": {
                "type": "object",
                "properties": {
                    "containerPort": { "type": "integer", "format": "int32", "default": 0 },
                    "name": { "type": "string" },
                    "protocol": { "type": "string" }
                }
            },
            "io.k8s.api.apps.v1.DeploymentStatus": {
                "type": "object",
                "properties": { "replicas": { "type": "integer" }, "readyReplicas": { "type": "integer" } }
            }
        });
        schemas.as_object().unwrap().clone()
    }

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "nginx", "labels": { "app": "nginx" } },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "app": "nginx" } },
                "template": {
                    "metadata": { "labels": { "app": "nginx" } },
                    "spec": {
                        "containers": [{ "name": "nginx", "image": image, "ports": [{ "containerPort": 80 }] }]
                    }
                }
            }
        })
    }

    fn do_apply(
        live: Option<&Value>,
        applied: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, ApplyError> {
        apply(live, applied, manager, force, None, &schemas(), ROOT, now)
    }

    /// Makes an applied object look stored (uid etc.), as the API layer would.
    fn stored(mut object: Value) -> Value {
        let meta = object["metadata"].as_object_mut().unwrap();
        meta.insert("uid".into(), json!("u-1"));
        meta.insert("resourceVersion".into(), json!("1"));
        meta.insert("creationTimestamp".into(), json!(T0));
        object
    }

    fn entry<'v>(object: &'v Value, manager: &str, operation: &str) -> Option<&'v Value> {
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    fn fields(object: &Value, manager: &str, operation: &str) -> Vec<String> {
        managed_field_paths(object)
            .into_iter()
            .find(|(m, o, _)| m == manager && o == operation)
            .map(|(_, _, f)| f)
            .unwrap_or_default()
    }

    fn conflicts(result: Result<Value, ApplyError>) -> Vec<Conflict> {
        match result {
            Err(ApplyError::Conflicts(c)) => c,
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    #[test]
    fn create_via_apply_records_exact_fields_v1() {
        let out = do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap();
        let entries = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        let expected = r#"{"manager":"mgr1","operation":"Apply","apiVersion":"apps/v1","time":"2024-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}}"#;
        assert_eq!(serde_json::to_string(e).unwrap(), expected);
        // The object is the configuration (the port's protocol is only defaulted later).
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{ "containerPort": 80 }])
        );
        assert_eq!(out["metadata"]["name"], "nginx");
    }

    #[test]
    fn reapply_by_same_manager_changes_field() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let out = do_apply(Some(&live), &config(5, "nginx:1.15"), "mgr1", false, T1).unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.15"
        );
        let e = entry(&out, "mgr1", "Apply").unwrap();
        assert_eq!(e["time"], T1);
        assert_eq!(
            out["metadata"]["managedFields"].as_array().unwrap().len(),
            1
        );
        // System metadata of the live object survives.
        assert_eq!(out["metadata"]["uid"], "u-1");
    }

    #[test]
    fn noop_apply_keeps_time() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let out = do_apply(Some(&live), &config(3, "nginx:1.14"), "mgr1", false, T1).unwrap();
        assert_eq!(entry(&out, "mgr1", "Apply").unwrap()["time"], T0);
    }

    #[test]
    fn second_manager_conflicts_then_force_takes_ownership() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "replicas": 7 }
        });
        let c = conflicts(do_apply(Some(&live), &other, "other", false, T1));
        assert_eq!(
            c,
            vec![Conflict {
                manager: "mgr1".into(),
                field: ".spec.replicas".into(),
                operation: "Apply".into(),
                api_version: "apps/v1".into(),
                subresource: String::new(),
            }]
        );
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"mgr1\": .spec.replicas"
        );
        assert_eq!(c[0].cause_message(), "conflict with \"mgr1\"");

        let forced = stored(do_apply(Some(&live), &other, "other", true, T1).unwrap());
        assert_eq!(forced["spec"]["replicas"], 7);
        assert_eq!(fields(&forced, "other", "Apply"), vec![".spec.replicas"]);
        assert!(!fields(&forced, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
        assert!(fields(&forced, "mgr1", "Apply").contains(&".metadata.labels.app".to_string()));

        // mgr1 re-applying its replicas now conflicts with "other".
        let c = conflicts(do_apply(
            Some(&forced),
            &config(3, "nginx:1.14"),
            "mgr1",
            false,
            T2,
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].manager.as_str(), c[0].field.as_str()),
            ("other", ".spec.replicas")
        );
    }

    #[test]
    fn container_field_conflict_path() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "template": { "spec": { "containers": [{ "name": "nginx", "image": "nginx:2" }] } } }
        });
        let c = conflicts(do_apply(Some(&live), &other, "other", false, T1));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].field,
            ".spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn multiple_conflicts_message() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "nginx", "labels": { "app": "web" } },
            "spec": { "replicas": 9 }
        });
        let c = conflicts(do_apply(Some(&live), &other, "other", false, T1));
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec![".metadata.labels.app", ".spec.replicas"]);
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 2 conflicts: conflicts with \"mgr1\":\n- .metadata.labels.app\n- .spec.replicas"
        );
        assert_eq!(ApplyError::Conflicts(c).to_string().lines().count(), 3);
    }

    #[test]
    fn equal_values_are_shared() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "replicas": 3 }
        });
        let out = do_apply(Some(&live), &other, "other", false, T1).unwrap();
        assert_eq!(fields(&out, "other", "Apply"), vec![".spec.replicas"]);
        assert!(fields(&out, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
        // Nothing changed, so the new entry has no time (as in Kubernetes).
        assert!(entry(&out, "other", "Apply").unwrap().get("time").is_none());

        // mgr1 drops replicas: "other" still owns it, so it stays.
        let live = stored(out);
        let mut cfg = config(3, "nginx:1.14");
        cfg["spec"].as_object_mut().unwrap().remove("replicas");
        let out = do_apply(Some(&live), &cfg, "mgr1", false, T2).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert!(!fields(&out, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
    }

    #[test]
    fn dropped_fields_are_pruned() {
        let mut cfg = config(3, "nginx:1.14");
        cfg["metadata"]["labels"]["tier"] = json!("web");
        cfg["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "sidecar", "image": "busybox", "args": ["sleep", "1d"] }));
        let mut live = stored(do_apply(None, &cfg, "mgr1", false, T0).unwrap());
        // A field nobody applied (set by defaulting, say) is kept.
        live["spec"]["paused"] = json!(false);
        let out = do_apply(Some(&live), &config(3, "nginx:1.14"), "mgr1", false, T1).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({ "app": "nginx" }));
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "nginx");
        assert_eq!(out["spec"]["paused"], false);
        assert_eq!(out["metadata"]["uid"], "u-1");
        let f = fields(&out, "mgr1", "Apply");
        assert!(
            !f.iter()
                .any(|p| p.contains("tier") || p.contains("sidecar")),
            "{f:?}"
        );
    }

    #[test]
    fn update_takes_ownership_and_later_apply_conflicts() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(10);
        record_update(
            Some(&live),
            &mut scaled,
            "kubectl",
            None,
            &schemas(),
            ROOT,
            T1,
        );
        let e = entry(&scaled, "kubectl", "Update").unwrap();
        assert_eq!(
            serde_json::to_string(e).unwrap(),
            r#"{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1","time":"2024-01-01T00:01:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}"#
        );
        assert!(!fields(&scaled, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
        // Apply entries sort before Update entries.
        assert_eq!(scaled["metadata"]["managedFields"][0]["operation"], "Apply");

        let c = conflicts(do_apply(
            Some(&scaled),
            &config(3, "nginx:1.14"),
            "mgr1",
            false,
            T2,
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].manager, "kubectl");
        assert_eq!(c[0].field, ".spec.replicas");
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            c[0].cause_message(),
            "conflict with \"kubectl\" using apps/v1"
        );

        // Applying the scaled value is fine and shares ownership.
        let out = do_apply(Some(&scaled), &config(10, "nginx:1.14"), "mgr1", false, T2).unwrap();
        assert!(fields(&out, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
        assert_eq!(fields(&out, "kubectl", "Update"), vec![".spec.replicas"]);
    }

    #[test]
    fn record_update_on_create_tracks_everything() {
        let mut obj = stored(config(3, "nginx:1.14"));
        obj["status"] = json!({ "replicas": 0 });
        record_update(None, &mut obj, "kubectl-create", None, &schemas(), ROOT, T0);
        let e = entry(&obj, "kubectl-create", "Update").unwrap();
        assert_eq!(e["time"], T0);
        let f = &e["fieldsV1"];
        // Maps and lists added by an update are owned themselves ("."), list items too,
        // but not the structs present in the zero object (spec, template, ...) nor required
        // fields; system metadata and status are not tracked.
        let expected = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;
        assert_eq!(serde_json::to_string(f).unwrap(), expected);
    }

    #[test]
    fn record_update_merges_into_existing_entry_and_drops_removed_fields() {
        let mut obj = stored(config(3, "nginx:1.14"));
        record_update(None, &mut obj, "editor", None, &schemas(), ROOT, T0);
        let old = obj.clone();
        obj["metadata"]["labels"]["tier"] = json!("web");
        obj["spec"].as_object_mut().unwrap().remove("replicas");
        record_update(Some(&old), &mut obj, "editor", None, &schemas(), ROOT, T1);
        let entries = obj["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["time"], T1);
        let f = fields(&obj, "editor", "Update");
        assert!(f.contains(&".metadata.labels.tier".to_string()));
        assert!(f.contains(&".metadata.labels.app".to_string()));
        assert!(!f.contains(&".spec.replicas".to_string()));
    }

    /// [`record_update`] as it was before stored entries were kept raw: every entry parsed,
    /// changed and printed again.
    fn record_update_parsing_all(old: &Value, new: &mut Value, manager: &str, sub: Option<&str>) {
        let schemas = schemas();
        let ctx = Ctx::new(&schemas, ROOT);
        let mut managed = decode_managed(old.pointer("/metadata/managedFields")).unwrap();
        remove_managed_fields(new);
        let op = Op {
            manager,
            api_version: "apps/v1",
            subresource: sub.unwrap_or(""),
            now: T2,
        };
        ctx.update_fields(Scope::of(sub), old, new, &mut managed, &op);
        write_managed(new, managed);
    }

    /// Writes by several managers to both scopes, each checked against parsing every entry:
    /// the entries a write leaves raw come out exactly as parsing and printing them would.
    #[test]
    fn raw_entries_come_out_as_parsed_ones_would() {
        let mut live = stored(config(3, "nginx:1.14"));
        live["metadata"]["finalizers"] = json!(["a/keep", "b/drop"]);
        record_update(None, &mut live, "creator", None, &schemas(), ROOT, T0);
        type Change = fn(&mut Value);
        let steps: [(&str, Option<&str>, Change); 8] = [
            ("ctrl", Some("status"), |o| {
                o["status"] = json!({"replicas": 3})
            }),
            ("scaler", None, |o| o["spec"]["replicas"] = json!(5)),
            ("labeler", None, |o| {
                o["metadata"]["labels"]["tier"] = json!("web")
            }),
            ("ctrl", Some("status"), |o| {
                o["status"] = json!({"replicas": 5, "readyReplicas": 5})
            }),
            ("releaser", None, |o| {
                o["metadata"]["finalizers"] = json!(["a/keep"])
            }),
            ("editor", None, |o| {
                o["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("app");
            }),
            ("creator", None, |o| {
                o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2")
            }),
            // A client that leaves managedFields out keeps the stored ones.
            ("scaler", None, |o| {
                o["spec"]["replicas"] = json!(6);
                o["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("managedFields");
            }),
        ];
        for (manager, sub, change) in steps {
            let mut lazy = live.clone();
            change(&mut lazy);
            let mut parsed = lazy.clone();
            record_update(Some(&live), &mut lazy, manager, sub, &schemas(), ROOT, T2);
            record_update_parsing_all(&live, &mut parsed, manager, sub);
            assert_eq!(
                serde_json::to_string(&lazy).unwrap(),
                serde_json::to_string(&parsed).unwrap(),
                "{manager} {sub:?}"
            );
            live = lazy;
        }
        let managers: Vec<_> = managed_field_paths(&live)
            .into_iter()
            .map(|(m, _, _)| m)
            .collect();
        assert!(managers.contains(&"ctrl".to_string()), "{managers:?}");
        // The released finalizer left its owner; the kept one did not.
        let creator = fields(&live, "creator", "Update");
        assert!(creator.iter().any(|f| f.contains("a/keep")), "{creator:?}");
        assert!(!creator.iter().any(|f| f.contains("b/drop")), "{creator:?}");
    }

    /// [`raw_touches`] answers exactly whether [`FieldSet::difference`] would change a set.
    #[test]
    fn raw_touches_agrees_with_difference() {
        let mut live = stored(config(3, "nginx:1.14"));
        live["metadata"]["finalizers"] = json!(["a/keep"]);
        live["metadata"]["annotations"] = json!({"x": "1"});
        record_update(None, &mut live, "creator", None, &schemas(), ROOT, T0);
        let raw = live.pointer("/metadata/managedFields/0/fieldsV1").unwrap();
        let set = FieldSet::from_json(raw).unwrap();
        let raw = raw.as_object().unwrap();
        let mut probes: Vec<FieldSet> = Vec::new();
        for path in set.paths() {
            // Each owned path, each of its parents, and a sibling nobody owns.
            for end in 1..=path.len() {
                let mut probe = FieldSet::default();
                probe.insert(&path[..end]);
                probes.push(probe);
            }
            let mut sibling = path.clone();
            *sibling.last_mut().unwrap() = Pe::Field("unowned".into());
            let mut probe = FieldSet::default();
            probe.insert(&sibling);
            probes.push(probe);
        }
        probes.push(FieldSet::default());
        probes.push(set.clone());
        for probe in &probes {
            assert_eq!(
                raw_touches(raw, probe),
                set.difference(probe) != set,
                "{:?}",
                probe
                    .paths()
                    .iter()
                    .map(|p| path_string(p))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn record_update_client_managed_fields() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        // An explicit empty list clears them, and an update of an existing object then tracks nothing.
        let mut cleared = live.clone();
        cleared["metadata"]["managedFields"] = json!([]);
        cleared["spec"]["replicas"] = json!(4);
        record_update(
            Some(&live),
            &mut cleared,
            "editor",
            None,
            &schemas(),
            ROOT,
            T1,
        );
        assert!(cleared["metadata"].get("managedFields").is_none());

        // Managed fields sent by the client are taken as given.
        let mut given = live.clone();
        given["metadata"]["managedFields"] = json!([{
            "manager": "someone", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": { "f:metadata": { "f:labels": { "f:app": {} } } }
        }]);
        record_update(
            Some(&live),
            &mut given,
            "editor",
            None,
            &schemas(),
            ROOT,
            T1,
        );
        let m = managed_field_paths(&given);
        assert_eq!(
            m,
            vec![(
                "someone".to_string(),
                "Update".to_string(),
                vec![".metadata.labels.app".to_string()]
            )]
        );

        // Absent managedFields in the request keep the live ones.
        let mut kept = live.clone();
        kept["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        kept["metadata"]["labels"]["x"] = json!("y");
        record_update(Some(&live), &mut kept, "editor", None, &schemas(), ROOT, T1);
        assert!(entry(&kept, "mgr1", "Apply").is_some());
        assert_eq!(
            fields(&kept, "editor", "Update"),
            vec![".metadata.labels.x"]
        );
    }

    #[test]
    fn first_apply_on_untracked_object_creates_before_first_apply() {
        let mut live = stored(config(3, "nginx:1.14"));
        live["spec"]["paused"] = json!(true);
        let cfg = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "replicas": 4 }
        });
        let c = conflicts(do_apply(Some(&live), &cfg, "mgr1", false, T1));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].manager, "before-first-apply");
        assert_eq!(c[0].operation, "Update");
        let out = do_apply(Some(&live), &cfg, "mgr1", true, T1).unwrap();
        assert!(fields(&out, "before-first-apply", "Update").contains(&".spec.paused".to_string()));
        assert_eq!(fields(&out, "mgr1", "Apply"), vec![".spec.replicas"]);
    }

    #[test]
    fn status_handling() {
        let mut cfg = config(3, "nginx:1.14");
        cfg["status"] = json!({ "replicas": 99 });
        let live = stored(do_apply(None, &cfg, "mgr1", false, T0).unwrap());
        assert!(live.get("status").is_none());
        assert!(
            !fields(&live, "mgr1", "Apply")
                .iter()
                .any(|p| p.starts_with(".status"))
        );

        let status = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "replicas": 100 },
            "status": { "replicas": 3, "readyReplicas": 2 }
        });
        let out = apply(
            Some(&live),
            &status,
            "controller",
            false,
            Some("status"),
            &schemas(),
            ROOT,
            T1,
        )
        .unwrap();
        assert_eq!(out["status"]["readyReplicas"], 2);
        assert_eq!(out["spec"]["replicas"], 3);
        let e = entry(&out, "controller", "Apply").unwrap();
        assert_eq!(e["subresource"], "status");
        assert_eq!(
            e["fieldsV1"],
            json!({ "f:status": { "f:readyReplicas": {}, "f:replicas": {} } })
        );

        // Status updates only track status.
        let old = stored(out);
        let mut new = old.clone();
        new["status"]["readyReplicas"] = json!(3);
        new["metadata"]["labels"]["ignored"] = json!("x");
        record_update(
            Some(&old),
            &mut new,
            "kubelet",
            Some("status"),
            &schemas(),
            ROOT,
            T2,
        );
        assert_eq!(
            fields(&new, "kubelet", "Update"),
            vec![".status.readyReplicas"]
        );
        let c = conflicts(apply(
            Some(&new),
            &status,
            "controller",
            false,
            Some("status"),
            &schemas(),
            ROOT,
            T2,
        ));
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"kubelet\" with subresource \"status\" using apps/v1: .status.readyReplicas"
        );
    }

    #[test]
    fn sets_union_and_associative_lists_merge_by_key() {
        let a = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "nginx", "finalizers": ["a.io/x"] },
            "spec": { "template": { "spec": { "containers": [
                { "name": "one", "image": "i1", "args": ["x"], "env": [{ "name": "A", "value": "1" }] }
            ] } } }
        });
        let live = stored(do_apply(None, &a, "a", false, T0).unwrap());
        let b = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "nginx", "finalizers": ["b.io/y"] },
            "spec": { "template": { "spec": { "containers": [
                { "name": "zero", "image": "i0" },
                { "name": "one", "env": [{ "name": "B", "value": "2" }] }
            ] } } }
        });
        let out = do_apply(Some(&live), &b, "b", false, T1).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "zero");
        assert_eq!(containers[1]["name"], "one");
        assert_eq!(containers[1]["image"], "i1");
        assert_eq!(containers[1]["args"], json!(["x"]));
        assert_eq!(
            containers[1]["env"],
            json!([{ "name": "A", "value": "1" }, { "name": "B", "value": "2" }])
        );
        let e = entry(&out, "b", "Apply").unwrap();
        assert_eq!(
            e["fieldsV1"]["f:metadata"],
            json!({ "f:finalizers": { "v:\"b.io/y\"": {} } })
        );

        // Atomic lists are replaced, and owned as a whole.
        let c = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "nginx" },
            "spec": { "template": { "spec": { "containers": [{ "name": "one", "args": ["y", "z"] }] } } }
        });
        let err = conflicts(do_apply(Some(&stored(out.clone())), &c, "c", false, T2));
        assert_eq!(
            err[0].field,
            ".spec.template.spec.containers[name=\"one\"].args"
        );
        let out = do_apply(Some(&stored(out)), &c, "c", true, T2).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["args"],
            json!(["y", "z"])
        );
    }

    #[test]
    fn invalid_configurations() {
        let invalid = |v: Value| {
            matches!(
                do_apply(None, &v, "m", false, T0),
                Err(ApplyError::Invalid(_))
            )
        };
        assert!(invalid(json!("not an object")));
        let mut missing_key = config(1, "x");
        missing_key["spec"]["template"]["spec"]["containers"] = json!([{ "image": "x" }]);
        let err = do_apply(None, &missing_key, "m", false, T0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(".spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"]"), "{err}");
        let mut dup = config(1, "x");
        dup["spec"]["template"]["spec"]["containers"] = json!([{ "name": "a" }, { "name": "a" }]);
        let err = do_apply(None, &dup, "m", false, T0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("duplicate entries for key [name=\"a\"]"),
            "{err}"
        );
        let mut with_mf = config(1, "x");
        with_mf["metadata"]["managedFields"] = json!([]);
        assert!(invalid(with_mf));
        let mut not_map = config(1, "x");
        not_map["spec"]["template"]["spec"]["containers"] = json!(["x"]);
        assert!(invalid(not_map));
    }

    #[test]
    fn null_in_config_clears_field() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let mut cfg = config(3, "nginx:1.14");
        cfg["spec"]["replicas"] = Value::Null;
        let out = do_apply(Some(&live), &cfg, "mgr1", false, T1).unwrap();
        assert!(out["spec"].get("replicas").is_none());
        assert!(fields(&out, "mgr1", "Apply").contains(&".spec.replicas".to_string()));
    }

    #[test]
    fn kubectl_takes_over_client_side_applied_fields() {
        let mut live = stored(config(3, "nginx:1.14"));
        let last = serde_json::to_string(&config(3, "nginx:1.14")).unwrap();
        live["metadata"]["annotations"] = json!({ LAST_APPLIED: last });
        let mut created = live.clone();
        record_update(
            None,
            &mut created,
            "kubectl-client-side-apply",
            None,
            &schemas(),
            ROOT,
            T0,
        );
        let created = stored(created);
        let out = do_apply(
            Some(&created),
            &config(4, "nginx:1.14"),
            "kubectl",
            false,
            T1,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 4);
        let annotation = out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        assert!(annotation.starts_with("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\""));
        assert!(annotation.contains("\"replicas\":4") && annotation.ends_with("}\n"));
        // Another manager does not get this treatment.
        assert!(matches!(
            do_apply(Some(&created), &config(4, "nginx:1.14"), "other", false, T1),
            Err(ApplyError::Conflicts(_))
        ));
    }

    #[test]
    fn update_managers_are_capped() {
        let mut obj = stored(config(1, "x"));
        record_update(
            None,
            &mut obj,
            "creator",
            None,
            &schemas(),
            ROOT,
            "2024-01-01T00:00:00Z",
        );
        for i in 0..12 {
            let old = obj.clone();
            obj["metadata"]["labels"][format!("l{i}")] = json!("v");
            record_update(
                Some(&old),
                &mut obj,
                &format!("m{i}"),
                None,
                &schemas(),
                ROOT,
                &format!("2024-01-01T00:{:02}:00Z", i + 1),
            );
        }
        let entries = obj["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 10);
        let ancient = entries
            .iter()
            .find(|e| e["manager"] == "ancient-changes")
            .unwrap();
        let f = FieldSet::from_json(&ancient["fieldsV1"]).unwrap();
        assert!(f.has(&[Pe::Field("spec".into()), Pe::Field("replicas".into())]));
        assert!(f.has(&[
            Pe::Field("metadata".into()),
            Pe::Field("labels".into()),
            Pe::Field("l1".into())
        ]));
    }

    #[test]
    fn fields_v1_round_trip_and_encoding() {
        let text = r#"{"f:metadata":{"f:labels":{".":{},"f:a<b":{}}},"f:spec":{"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{}},"f:set":{"v:1":{},"v:\"x\"":{},"v:true":{}}},"i:0":{}}"#;
        let parsed: Value = serde_json::from_str(text).unwrap();
        let set = FieldSet::from_json(&parsed).unwrap();
        assert_eq!(serde_json::to_string(&set.to_json()).unwrap(), text);
        let key = Pe::Key(vec![("name".into(), json!("a<b&c"))]);
        assert_eq!(key.serialize(), r#"k:{"name":"a\u003cb\u0026c"}"#);
        assert_eq!(Pe::parse(&key.serialize()).unwrap(), Some(key));
        assert_eq!(Pe::Value(json!(1.0)).serialize(), "v:1");
        assert!(Pe::parse("x").is_err());
        assert_eq!(Pe::parse("z:whatever").unwrap(), None);
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86_401));
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00+01:00"),
            parse_rfc3339("2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn key_defaults_come_from_the_schema() {
        let defs = json!({
            "com.example.v1.Thing": { "type": "object", "properties": {
                "items": { "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "protocol", "zone"],
                    "items": { "type": "object", "properties": {
                        "name": { "type": "string" }, "protocol": { "type": "string" }, "zone": { "type": "string", "default": "a" }
                    } } }
            } }
        });
        let cfg =
            json!({ "apiVersion": "example.com/v1", "kind": "Thing", "items": [{ "name": "x" }] });
        let out = apply(
            None,
            &cfg,
            "m",
            false,
            None,
            defs.as_object().unwrap(),
            "com.example.v1.Thing",
            T0,
        )
        .unwrap();
        let e = entry(&out, "m", "Apply").unwrap();
        // No built-in protocol default for custom types; the schema's default is used.
        assert_eq!(
            e["fieldsV1"],
            json!({ "f:items": { "k:{\"name\":\"x\",\"zone\":\"a\"}": { ".": {}, "f:name": {} } } })
        );
    }

    #[test]
    fn defaulted_port_protocol_matches_config_without_it() {
        let mut live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        let out = do_apply(Some(&live), &config(3, "nginx:1.15"), "mgr1", false, T1).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{ "containerPort": 80, "protocol": "TCP" }])
        );
    }

    #[test]
    fn dropped_set_item_is_pruned_and_lists_follow_config_order() {
        let base = |finalizers: Value, names: &[&str]| {
            let containers: Vec<Value> = names
                .iter()
                .map(|n| json!({ "name": n, "image": "i" }))
                .collect();
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "nginx", "finalizers": finalizers },
                "spec": { "template": { "spec": { "containers": containers } } }
            })
        };
        let live = stored(
            do_apply(
                None,
                &base(json!(["a", "b"]), &["x", "y", "z"]),
                "m",
                false,
                T0,
            )
            .unwrap(),
        );
        let out = do_apply(
            Some(&live),
            &base(json!(["b"]), &["x", "z", "y"]),
            "m",
            false,
            T1,
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["x", "z", "y"]);
    }

    #[test]
    fn update_removing_a_field_drops_it_from_appliers() {
        let live = stored(do_apply(None, &config(3, "nginx:1.14"), "mgr1", false, T0).unwrap());
        let mut new = live.clone();
        new["metadata"].as_object_mut().unwrap().remove("labels");
        record_update(Some(&live), &mut new, "editor", None, &schemas(), ROOT, T1);
        assert!(
            !fields(&new, "mgr1", "Apply")
                .iter()
                .any(|f| f.starts_with(".metadata"))
        );
        // Nothing was added or changed, so the editor gets no entry.
        assert!(entry(&new, "editor", "Update").is_none());
        // Unparsable managedFields on the live object: the first apply starts over.
        let mut broken = live.clone();
        broken["metadata"]["managedFields"] = json!([{ "manager": "x", "operation": "Bogus" }]);
        let c = conflicts(do_apply(
            Some(&broken),
            &config(4, "nginx:1.14"),
            "other",
            false,
            T1,
        ));
        assert!(c.iter().all(|c| c.manager == "before-first-apply"));
    }

    #[test]
    fn unknown_schema_is_deduced() {
        let cfg = json!({
            "apiVersion": "example.com/v1", "kind": "Thing", "metadata": { "name": "t" },
            "spec": { "a": { "b": 1 }, "list": [1, 2] }
        });
        let out = apply(
            None,
            &cfg,
            "m",
            false,
            None,
            &Map::new(),
            "com.example.v1.Thing",
            T0,
        )
        .unwrap();
        let e = entry(&out, "m", "Apply").unwrap();
        assert_eq!(
            e["fieldsV1"],
            json!({ "f:spec": { ".": {}, "f:a": { ".": {}, "f:b": {} }, "f:list": {} } })
        );
    }
}
