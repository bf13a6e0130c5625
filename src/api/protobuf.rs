//! Kubernetes protobuf request bodies, decoded into the equivalent JSON object.
//!
//! Typed Kubernetes clients (kubectl's `create` subcommands among them) send
//! `application/vnd.kubernetes.protobuf` bodies: the magic bytes `k8s\0`, then a
//! `runtime.Unknown` envelope whose `typeMeta` names the kind and whose `raw` holds the
//! object's own encoding. Objects are proto2 messages as gogo-protobuf marshals Go structs:
//! non-pointer fields are always written, even when empty, while the JSON form omits them.
//!
//! The wire layout of each message comes from the generated table in
//! [`super::protobuf_schema`]; the JSON name of each field from the OpenAPI schemas (prost's
//! snake_case names lose the case of initialisms: `host_ip` is `hostIP`, `pod_i_ps` is
//! `podIPs`). A message field with no property of its own in a schema that has properties
//! is an embedded Go struct inlined in JSON (`Probe.handler`, `Volume.volumeSource`): its
//! fields join the parent's.
//!
//! What is dropped: singular strings that are empty and zero times, which gogo writes for
//! non-pointer fields and JSON omits, and the zero of the few number fields in [`DROP_ZERO`].
//! Everything else is kept, zero numbers and `false` included: the wire does not tell a
//! non-pointer `int32` from a pointer one, and a pointer field such as `replicas: 0` is only
//! written when it was set, so its zero must stay. Unknown field numbers are skipped, as
//! protobuf readers do.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::protobuf_schema::{self as schema, Field, Kind, Message};

/// The 4 bytes that open every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// How deep messages may nest (Kubernetes objects stay well below this).
const MAX_DEPTH: usize = 64;

/// `time.Time{}` (0001-01-01T00:00:00Z) in Unix seconds.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

/// Pointer string fields for which an empty string is a value of its own, kept as `""`
/// (`storageClassName: ""` turns dynamic provisioning off).
const KEEP_EMPTY: &[(&str, &str)] = &[(
    "k8s.io.api.core.v1.PersistentVolumeClaimSpec",
    "storage_class_name",
)];

/// Non-pointer number fields whose zero means "not set" to the rest of the server (which
/// allocates a port when the field is absent), so a zero is dropped like JSON's omitempty.
const DROP_ZERO: &[(&str, &str)] = &[
    ("k8s.io.api.core.v1.ServicePort", "node_port"),
    ("k8s.io.api.core.v1.ServiceSpec", "health_check_node_port"),
];

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("the body does not start with the Kubernetes protobuf magic bytes \"k8s\\0\"")]
    BadMagic,
    /// The body ends inside a value.
    #[error("the body ends in the middle of {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset in the body.
        offset: usize,
    },
    /// A varint longer than 10 bytes.
    #[error("malformed varint at byte {offset}")]
    BadVarint {
        /// Byte offset in the body.
        offset: usize,
    },
    /// A field key with number 0 or past the largest field number.
    #[error("invalid field number {tag} at byte {offset}")]
    BadTag {
        /// The field number read.
        tag: u64,
        /// Byte offset in the body.
        offset: usize,
    },
    /// A wire type protobuf does not define, or a (deprecated) group.
    #[error("unsupported wire type {wire_type} at byte {offset}")]
    UnsupportedWireType {
        /// The wire type read.
        wire_type: u8,
        /// Byte offset in the body.
        offset: usize,
    },
    /// A known field with the wrong wire type for its kind.
    #[error("field {field} (number {tag}) of {message} has wire type {found}, expected {expected}")]
    WireType {
        /// Full proto name of the message.
        message: String,
        /// Field name.
        field: String,
        /// Field number.
        tag: u32,
        /// The wire type read.
        found: u8,
        /// The wire type the field's kind takes.
        expected: u8,
    },
    /// The envelope's `typeMeta` lacks apiVersion or kind.
    #[error("the protobuf envelope names no kind (apiVersion {api_version:?}, kind {kind:?})")]
    MissingTypeMeta {
        /// The apiVersion read.
        api_version: String,
        /// The kind read.
        kind: String,
    },
    /// No message in the schema table for the envelope's kind.
    #[error("no protobuf schema for kind {kind} in {api_version}")]
    UnknownKind {
        /// The apiVersion read.
        api_version: String,
        /// The kind read.
        kind: String,
    },
    /// A field names a message missing from the schema table.
    #[error("message {name} is not in the protobuf schema table")]
    UnknownMessage {
        /// Full proto name.
        name: String,
    },
    /// The envelope's contentEncoding is set (Kubernetes never sets it).
    #[error("protobuf content encoding {0:?} is not supported")]
    ContentEncoding(String),
    /// A string field that is not UTF-8.
    #[error("field {field} of {message} is not valid UTF-8")]
    InvalidUtf8 {
        /// Full proto name of the message.
        message: String,
        /// Field name.
        field: String,
    },
    /// Embedded raw JSON (`RawExtension`, `FieldsV1`) that does not parse.
    #[error("field {field} of {message} holds invalid JSON: {source}")]
    InvalidJson {
        /// Full proto name of the message.
        message: String,
        /// Field name.
        field: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A timestamp out of the range JSON times can express.
    #[error("field {field} of {message} holds an invalid time ({seconds}s, {nanos}ns)")]
    InvalidTime {
        /// Full proto name of the message.
        message: String,
        /// Field name.
        field: String,
        /// Seconds since the Unix epoch.
        seconds: i64,
        /// Nanoseconds.
        nanos: i32,
    },
    /// Messages nested past [`MAX_DEPTH`].
    #[error("messages nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes a Kubernetes protobuf request body into the object's JSON (apiVersion and kind set
/// from typeMeta).
///
/// `schemas` is the OpenAPI v3 `components.schemas` map (definition names like
/// `io.k8s.api.apps.v1.Deployment` for proto `k8s.io.api.apps.v1.Deployment`), which gives
/// each field its exact JSON name: a snake_case field matches the property whose name,
/// lower-cased, equals the snake name without underscores. Fields of messages without a
/// schema fall back to lowerCamelCase.
pub fn decode(body: &[u8], schemas: &Map<String, Value>) -> Result<Value> {
    Decoder { schemas }.envelope(body, 0, 0)
}

/// Whether a body starts with the Kubernetes protobuf magic bytes.
fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// A cursor over one message's bytes; `base` is their offset in the whole body.
#[derive(Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

/// One field value as it appears on the wire.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(Reader<'a>),
    Fixed32([u8; 4]),
}

impl Wire<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::Fixed64(_) => 1,
            Wire::Len(_) => 2,
            Wire::Fixed32(_) => 5,
        }
    }
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let start = self.offset();
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::Truncated {
                    what: "a varint",
                    offset: start,
                });
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::BadVarint { offset: start })
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>> {
        let start = self.offset();
        if self.buf.len() - self.pos < len {
            return Err(ProtobufError::Truncated {
                what,
                offset: start,
            });
        }
        let sub = Reader::new(&self.buf[self.pos..self.pos + len], start);
        self.pos += len;
        Ok(sub)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let sub = self.take(N, "a fixed-width value")?;
        Ok(sub.buf.try_into().expect("took N bytes"))
    }

    /// The next field's number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>> {
        if self.is_empty() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint()?;
        let tag = key >> 3;
        let tag = match u32::try_from(tag) {
            Ok(t) if (1..=0x1fff_ffff).contains(&t) => t,
            _ => return Err(ProtobufError::BadTag { tag, offset: at }),
        };
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.fixed()?),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                Wire::Len(self.take(len, "a length-delimited value")?)
            }
            5 => Wire::Fixed32(self.fixed()?),
            wire_type => {
                return Err(ProtobufError::UnsupportedWireType {
                    wire_type: wire_type as u8,
                    offset: at,
                });
            }
        };
        Ok(Some((tag, wire)))
    }
}

/// The wire type a single value of `kind` is written with.
fn wire_type_of(kind: Kind) -> u8 {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool => 0,
        Kind::Double => 1,
        Kind::Float => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) | Kind::Map(..) => 2,
    }
}

fn is_packable(kind: Kind) -> bool {
    wire_type_of(kind) != 2
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

struct Decoder<'s> {
    schemas: &'s Map<String, Value>,
}

/// Where a value sits, for error messages.
#[derive(Clone, Copy)]
struct Site<'f> {
    message: &'f str,
    field: &'f str,
}

impl<'f> Site<'f> {
    fn new(message: &'f str, field: &'f str) -> Self {
        Site { message, field }
    }

    fn wire_type(&self, tag: u32, found: u8, expected: u8) -> ProtobufError {
        ProtobufError::WireType {
            message: self.message.to_string(),
            field: self.field.to_string(),
            tag,
            found,
            expected,
        }
    }

    fn utf8(&self) -> ProtobufError {
        ProtobufError::InvalidUtf8 {
            message: self.message.to_string(),
            field: self.field.to_string(),
        }
    }
}

impl<'s> Decoder<'s> {
    /// `k8s\0` + runtime.Unknown{typeMeta, raw, contentEncoding, contentType}.
    fn envelope(&self, body: &[u8], base: usize, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        let rest = body
            .strip_prefix(MAGIC.as_slice())
            .ok_or(ProtobufError::BadMagic)?;
        let mut r = Reader::new(rest, base + MAGIC.len());
        let (mut api_version, mut kind) = (String::new(), String::new());
        let mut raw = Reader::new(&[], base + body.len());
        let mut encoding = String::new();
        while let Some((tag, wire)) = r.field()? {
            match (tag, wire) {
                (1, Wire::Len(meta)) => for_fields(meta, |tag, wire| match (tag, wire) {
                    (1, Wire::Len(s)) => {
                        api_version = utf8(s, Site::new(TYPE_META, "api_version"))?;
                        Ok(())
                    }
                    (2, Wire::Len(s)) => {
                        kind = utf8(s, Site::new(TYPE_META, "kind"))?;
                        Ok(())
                    }
                    (1 | 2, w) => {
                        let field = if tag == 1 { "api_version" } else { "kind" };
                        Err(Site::new(TYPE_META, field).wire_type(tag, w.wire_type(), 2))
                    }
                    _ => Ok(()),
                })?,
                (2, Wire::Len(bytes)) => raw = bytes,
                (3, Wire::Len(s)) => encoding = utf8(s, Site::new(UNKNOWN, "content_encoding"))?,
                (4, Wire::Len(_)) => {} // contentType: the media type of raw, protobuf here
                (1..=4, w) => {
                    let fields = ["type_meta", "raw", "content_encoding", "content_type"];
                    let site = Site::new(UNKNOWN, fields[tag as usize - 1]);
                    return Err(site.wire_type(tag, w.wire_type(), 2));
                }
                _ => {}
            }
        }
        if !encoding.is_empty() {
            return Err(ProtobufError::ContentEncoding(encoding));
        }
        if api_version.is_empty() || kind.is_empty() {
            return Err(ProtobufError::MissingTypeMeta { api_version, kind });
        }
        let message =
            message_for_kind(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
                api_version: api_version.clone(),
                kind: kind.clone(),
            })?;
        let mut out = Map::new();
        out.insert("apiVersion".to_string(), Value::String(api_version));
        out.insert("kind".to_string(), Value::String(kind));
        self.message_into(
            message,
            raw,
            self.properties(message.name),
            &mut out,
            depth + 1,
        )?;
        Ok(Value::Object(out))
    }

    /// The OpenAPI properties of a message (`k8s.io.X` is defined as `io.k8s.X`).
    fn properties(&self, message: &str) -> Option<&'s Map<String, Value>> {
        let definition = format!("io.k8s.{}", message.strip_prefix("k8s.io.")?);
        self.schemas
            .get(&definition)?
            .get("properties")?
            .as_object()
    }

    /// The message of a field that has no property in `props` but is a Go struct inlined in
    /// JSON (`Probe.handler`, `Volume.volumeSource`, `ConfigMapKeySelector`'s
    /// `LocalObjectReference`): a singular plain message some of whose fields are properties of
    /// `props`. Anything else (a field the schema does not know) keeps a name of its own.
    fn inlined(&self, field: &Field, props: &Map<String, Value>) -> Option<&'static Message> {
        let Kind::Message(name) = field.kind else {
            return None;
        };
        if field.repeated || is_well_known(name) {
            return None;
        }
        let message = schema::message(name)?;
        message
            .fields
            .iter()
            .any(|f| property(f.name, props).is_some())
            .then_some(message)
    }

    /// Decodes the fields of `message` from `r` into `out`, naming them from `props`.
    fn message_into(
        &self,
        message: &'static Message,
        mut r: Reader<'_>,
        props: Option<&'s Map<String, Value>>,
        out: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        while let Some((tag, wire)) = r.field()? {
            let Some(field) = message.field(tag) else {
                continue; // unknown field: skipped
            };
            let site = Site {
                message: message.name,
                field: field.name,
            };
            let name = match props {
                Some(props) => match property(field.name, props) {
                    Some(name) => name.to_string(),
                    None => match self.inlined(field, props) {
                        Some(inner) => {
                            let Wire::Len(sub) = wire else {
                                return Err(site.wire_type(tag, wire.wire_type(), 2));
                            };
                            self.message_into(inner, sub, Some(props), out, depth + 1)?;
                            continue;
                        }
                        None => lower_camel(field.name),
                    },
                },
                None => lower_camel(field.name),
            };
            if let Kind::Map(key_kind, value_kind) = field.kind {
                let Wire::Len(entry) = wire else {
                    return Err(site.wire_type(tag, wire.wire_type(), 2));
                };
                let (key, value) = self.map_entry(*key_kind, *value_kind, entry, site, depth)?;
                let slot = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(map) = slot {
                    map.insert(key, value);
                }
                continue;
            }
            if field.repeated {
                let mut values = Vec::new();
                match wire {
                    Wire::Len(mut packed) if is_packable(field.kind) => {
                        while !packed.is_empty() {
                            let element = match field.kind {
                                Kind::Double => Wire::Fixed64(packed.fixed()?),
                                Kind::Float => Wire::Fixed32(packed.fixed()?),
                                _ => Wire::Varint(packed.varint()?),
                            };
                            values.extend(self.value(field.kind, element, tag, site, depth)?);
                        }
                    }
                    wire => values.extend(self.value(field.kind, wire, tag, site, depth)?),
                }
                let slot = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(array) = slot {
                    array.extend(values);
                }
                continue;
            }
            match self.value(field.kind, wire, tag, site, depth)? {
                Some(Value::String(s))
                    if s.is_empty() && !KEEP_EMPTY.contains(&(message.name, field.name)) =>
                {
                    out.remove(&name);
                }
                Some(Value::Number(n))
                    if n.as_i64() == Some(0) && DROP_ZERO.contains(&(message.name, field.name)) =>
                {
                    out.remove(&name);
                }
                Some(value) => {
                    out.insert(name, value);
                }
                None => {
                    out.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// One value of `kind`; `None` for values JSON leaves out (zero times, empty raw JSON).
    fn value(
        &self,
        kind: Kind,
        wire: Wire<'_>,
        tag: u32,
        site: Site<'_>,
        depth: usize,
    ) -> Result<Option<Value>> {
        let expected = wire_type_of(kind);
        let value = match (kind, wire) {
            (Kind::String, Wire::Len(s)) => Value::String(utf8(s, site)?),
            (Kind::Bytes, Wire::Len(b)) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b.buf))
            }
            (Kind::Int32, Wire::Varint(v)) => Value::from(v as i32),
            (Kind::Int64, Wire::Varint(v)) => Value::from(v as i64),
            (Kind::Uint32, Wire::Varint(v)) => Value::from(v as u32),
            (Kind::Uint64, Wire::Varint(v)) => Value::from(v),
            (Kind::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
            (Kind::Double, Wire::Fixed64(b)) => float(f64::from_le_bytes(b)),
            (Kind::Float, Wire::Fixed32(b)) => float(f64::from(f32::from_le_bytes(b))),
            (Kind::Message(name), Wire::Len(sub)) => {
                return self.embedded(name, sub, site, depth + 1);
            }
            (_, wire) => return Err(site.wire_type(tag, wire.wire_type(), expected)),
        };
        Ok(Some(value))
    }

    /// One `{1: key, 2: value}` entry of a map field.
    fn map_entry(
        &self,
        key_kind: Kind,
        value_kind: Kind,
        mut entry: Reader<'_>,
        site: Site<'_>,
        depth: usize,
    ) -> Result<(String, Value)> {
        let (mut key, mut value) = (None, None);
        let end = entry.offset() + entry.buf.len();
        while let Some((tag, wire)) = entry.field()? {
            match tag {
                1 => key = self.value(key_kind, wire, tag, site, depth)?,
                2 => {
                    value = Some(
                        self.value(value_kind, wire, tag, site, depth)?
                            .unwrap_or(Value::Null),
                    )
                }
                _ => {}
            }
        }
        let key = match key {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let value = match value {
            Some(value) => value,
            None => self.default_value(value_kind, end, site, depth)?,
        };
        Ok((key, value))
    }

    /// The value of an absent map-entry value: its kind's zero.
    fn default_value(
        &self,
        kind: Kind,
        offset: usize,
        site: Site<'_>,
        depth: usize,
    ) -> Result<Value> {
        Ok(match kind {
            Kind::String | Kind::Bytes => Value::String(String::new()),
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 => Value::from(0),
            Kind::Double | Kind::Float => Value::from(0.0),
            Kind::Bool => Value::Bool(false),
            Kind::Message(name) => self
                .embedded(name, Reader::new(&[], offset), site, depth + 1)?
                .unwrap_or(Value::Null),
            Kind::Map(..) => Value::Object(Map::new()),
        })
    }

    /// An embedded message: the well-known apimachinery types become their JSON forms,
    /// everything else an object.
    fn embedded(
        &self,
        name: &str,
        sub: Reader<'_>,
        site: Site<'_>,
        depth: usize,
    ) -> Result<Option<Value>> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        match name {
            TIME | MICRO_TIME => {
                // Go marshals the zero time as an empty message; Time{seconds: -62135596800}
                // (0001-01-01T00:00:00Z) is the zero time too. JSON leaves it out.
                if sub.is_empty() {
                    return Ok(None);
                }
                let (mut seconds, mut nanos) = (0i64, 0i32);
                for_fields(sub, |tag, wire| match (tag, wire) {
                    (1, Wire::Varint(v)) => {
                        seconds = v as i64;
                        Ok(())
                    }
                    (2, Wire::Varint(v)) => {
                        nanos = v as i32;
                        Ok(())
                    }
                    (1 | 2, w) => Err(site.wire_type(tag, w.wire_type(), 0)),
                    _ => Ok(()),
                })?;
                if seconds == ZERO_TIME_SECONDS && nanos == 0 {
                    return Ok(None);
                }
                let invalid = || ProtobufError::InvalidTime {
                    message: site.message.to_string(),
                    field: site.field.to_string(),
                    seconds,
                    nanos,
                };
                let nanos_u32 = u32::try_from(nanos).map_err(|_| invalid())?;
                let time =
                    chrono::DateTime::from_timestamp(seconds, nanos_u32).ok_or_else(invalid)?;
                let format = if name == TIME {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%dT%H:%M:%S%.6fZ"
                };
                Ok(Some(Value::String(time.format(format).to_string())))
            }
            DURATION => {
                let mut nanos = 0i64;
                for_fields(sub, |tag, wire| match (tag, wire) {
                    (1, Wire::Varint(v)) => {
                        nanos = v as i64;
                        Ok(())
                    }
                    (1, w) => Err(site.wire_type(tag, w.wire_type(), 0)),
                    _ => Ok(()),
                })?;
                Ok(Some(Value::String(go_duration(nanos))))
            }
            INT_OR_STRING => {
                let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
                for_fields(sub, |tag, wire| match (tag, wire) {
                    (1, Wire::Varint(v)) => {
                        is_string = v == 1;
                        Ok(())
                    }
                    (2, Wire::Varint(v)) => {
                        int = v as i32;
                        Ok(())
                    }
                    (3, Wire::Len(s)) => {
                        string = utf8(s, site)?;
                        Ok(())
                    }
                    (1 | 2, w) => Err(site.wire_type(tag, w.wire_type(), 0)),
                    (3, w) => Err(site.wire_type(tag, w.wire_type(), 2)),
                    _ => Ok(()),
                })?;
                Ok(Some(if is_string {
                    Value::String(string)
                } else {
                    Value::from(int)
                }))
            }
            QUANTITY => {
                let mut quantity = String::new();
                for_fields(sub, |tag, wire| match (tag, wire) {
                    (1, Wire::Len(s)) => {
                        quantity = utf8(s, site)?;
                        Ok(())
                    }
                    (1, w) => Err(site.wire_type(tag, w.wire_type(), 2)),
                    _ => Ok(()),
                })?;
                if quantity.is_empty() {
                    quantity.push('0'); // the zero Quantity's JSON form
                }
                Ok(Some(Value::String(quantity)))
            }
            RAW_EXTENSION | FIELDS_V1 => {
                let mut raw = Reader::new(&[], sub.offset());
                for_fields(sub, |tag, wire| match (tag, wire) {
                    (1, Wire::Len(bytes)) => {
                        raw = bytes;
                        Ok(())
                    }
                    (1, w) => Err(site.wire_type(tag, w.wire_type(), 2)),
                    _ => Ok(()),
                })?;
                if raw.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                if is_protobuf(raw.buf) {
                    return self.envelope(raw.buf, raw.base, depth + 1).map(Some);
                }
                serde_json::from_slice(raw.buf).map(Some).map_err(|source| {
                    ProtobufError::InvalidJson {
                        message: site.message.to_string(),
                        field: site.field.to_string(),
                        source,
                    }
                })
            }
            _ => {
                let message = lookup(name)?;
                let mut out = Map::new();
                self.message_into(message, sub, self.properties(name), &mut out, depth)?;
                Ok(Some(Value::Object(out)))
            }
        }
    }
}

/// Runs `f` on every field of a small message.
fn for_fields<'a>(mut r: Reader<'a>, mut f: impl FnMut(u32, Wire<'a>) -> Result<()>) -> Result<()> {
    while let Some((tag, wire)) = r.field()? {
        f(tag, wire)?;
    }
    Ok(())
}

fn utf8(r: Reader<'_>, site: Site<'_>) -> Result<String> {
    std::str::from_utf8(r.buf)
        .map(str::to_string)
        .map_err(|_| site.utf8())
}

fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// The apimachinery messages with a JSON form of their own (strings, numbers, raw JSON).
fn is_well_known(name: &str) -> bool {
    matches!(
        name,
        TIME | MICRO_TIME | DURATION | FIELDS_V1 | INT_OR_STRING | QUANTITY | RAW_EXTENSION
    )
}

fn lookup(name: &str) -> Result<&'static Message> {
    schema::message(name).ok_or_else(|| ProtobufError::UnknownMessage {
        name: name.to_string(),
    })
}

/// The message a kind is encoded as: `k8s.io.api.<first label of the group>.<version>.<kind>`
/// (`core` for the core group), else the meta/v1 kinds every group version carries
/// (`DeleteOptions`, `Status`).
fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    schema::message(&format!("k8s.io.api.{package}.{version}.{kind}"))
        .or_else(|| schema::message(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))
}

/// The schema property a snake_case field is: its name lower-cased equals the snake name
/// without underscores.
fn property<'p>(snake: &str, props: &'p Map<String, Value>) -> Option<&'p str> {
    let wanted: String = snake.chars().filter(|c| *c != '_').collect();
    props
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&wanted))
        .map(String::as_str)
}

/// `pod_i_ps` -> `podIPs`: the best guess without a schema.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let text = if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (whole, frac) = fraction(u, prec);
        format!("{whole}{frac}{unit}")
    } else {
        let (secs, frac) = fraction(u, 9);
        let mut text = format!("{}{frac}s", secs % 60);
        let mins = secs / 60;
        if mins > 0 {
            text = format!("{}m{text}", mins % 60);
            let hours = mins / 60;
            if hours > 0 {
                text = format!("{hours}h{text}");
            }
        }
        text
    };
    format!("{sign}{text}")
}

/// Splits `v` into `v / 10^prec` and the fraction `.ddd` without trailing zeros (empty when 0).
fn fraction(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return (whole, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (whole, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;

    use super::*;
    use crate::api::openapi::OpenApi;

    fn schemas() -> &'static Map<String, Value> {
        static OPENAPI: OnceLock<OpenApi> = OnceLock::new();
        OPENAPI
            .get_or_init(|| OpenApi::build(&crate::server::served_resources()))
            .schemas()
    }

    /// A tiny protobuf encoder: a message under construction.
    #[derive(Default)]
    struct Enc(Vec<u8>);

    impl Enc {
        fn new() -> Self {
            Enc::default()
        }

        fn varint(mut self, mut v: u64) -> Self {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
            self
        }

        fn key(self, tag: u32, wire_type: u8) -> Self {
            self.varint(u64::from(tag) << 3 | u64::from(wire_type))
        }

        /// A varint field (negative numbers as 10-byte two's complement, like Go).
        fn int(self, tag: u32, v: i64) -> Self {
            self.key(tag, 0).varint(v as u64)
        }

        fn bytes(self, tag: u32, b: &[u8]) -> Self {
            let mut e = self.key(tag, 2).varint(b.len() as u64);
            e.0.extend_from_slice(b);
            e
        }

        fn str(self, tag: u32, s: &str) -> Self {
            self.bytes(tag, s.as_bytes())
        }

        fn msg(self, tag: u32, m: Enc) -> Self {
            self.bytes(tag, &m.0)
        }

        /// A map<string, string> entry.
        fn entry(self, tag: u32, k: &str, v: &str) -> Self {
            self.msg(tag, Enc::new().str(1, k).str(2, v))
        }

        /// A map<string, message> entry.
        fn entry_msg(self, tag: u32, k: &str, v: Enc) -> Self {
            self.msg(tag, Enc::new().str(1, k).msg(2, v))
        }
    }

    /// `k8s\0` + runtime.Unknown, with the empty strings gogo writes for encoding and type.
    fn envelope(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
        let unknown = Enc::new()
            .msg(1, Enc::new().str(1, api_version).str(2, kind))
            .msg(2, raw)
            .str(3, "")
            .str(4, "");
        [MAGIC.as_slice(), &unknown.0].concat()
    }

    /// Time{seconds: -62135596800, nanos: 0}: the zero time as older encoders wrote it.
    fn zero_time() -> Enc {
        Enc::new().int(1, ZERO_TIME_SECONDS).int(2, 0)
    }

    /// ObjectMeta as gogo writes it: every non-pointer field, empty or not.
    fn meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Enc {
        let mut m = Enc::new()
            .str(1, name)
            .str(2, "")
            .str(3, namespace)
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, zero_time());
        for (k, v) in labels {
            m = m.entry(11, k, v);
        }
        m
    }

    fn quantity(q: &str) -> Enc {
        Enc::new().str(1, q)
    }

    fn int_or_string_int(i: i64) -> Enc {
        Enc::new().int(1, 0).int(2, i).str(3, "")
    }

    fn int_or_string_str(s: &str) -> Enc {
        Enc::new().int(1, 1).int(2, 0).str(3, s)
    }

    #[test]
    fn namespace_drops_empty_strings_and_the_zero_time() {
        let ns = Enc::new()
            .msg(
                1,
                meta("team-a", "", &[("kubernetes.io/metadata.name", "team-a")]),
            )
            .msg(2, Enc::new().str(1, "kubernetes"))
            .msg(3, Enc::new().str(1, ""));
        let got = decode(&envelope("v1", "Namespace", ns), schemas()).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "team-a",
                    "generation": 0,
                    "labels": {"kubernetes.io/metadata.name": "team-a"},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {},
            })
        );
    }

    #[test]
    fn deployment_decodes_with_json_names() {
        let port = Enc::new()
            .str(1, "")
            .int(2, 0)
            .int(3, 80)
            .str(4, "TCP")
            .str(5, "127.0.0.1");
        let resources = Enc::new().entry_msg(1, "cpu", quantity("500m")).entry_msg(
            2,
            "memory",
            quantity("64Mi"),
        );
        let probe = Enc::new()
            .msg(
                1,
                Enc::new().msg(
                    2,
                    Enc::new()
                        .str(1, "/healthz")
                        .msg(2, int_or_string_int(8080))
                        .str(3, ""),
                ),
            )
            .int(4, 10);
        let container = Enc::new()
            .str(1, "nginx")
            .str(2, "nginx:1.27")
            .msg(6, port)
            .msg(8, resources)
            .msg(11, probe)
            .str(14, "")
            .int(16, 0)
            .int(999, 7); // an unknown field: skipped
        let template = Enc::new()
            .msg(1, Enc::new().msg(8, Enc::new()).entry(11, "app", "web")) // zero time: empty message
            .msg(
                2,
                Enc::new().msg(2, container).str(3, "").msg(14, Enc::new()),
            );
        let strategy = Enc::new().str(1, "RollingUpdate").msg(
            2,
            Enc::new()
                .msg(1, int_or_string_int(1))
                .msg(2, int_or_string_str("25%")),
        );
        let spec = Enc::new()
            .int(1, 2)
            .msg(2, Enc::new().entry(1, "app", "web"))
            .msg(3, template)
            .msg(4, strategy)
            .int(5, 0)
            .int(7, 0);
        let deployment = Enc::new()
            .msg(1, meta("web", "default", &[("app", "web")]))
            .msg(2, spec)
            .msg(3, Enc::new());
        let got = decode(&envelope("apps/v1", "Deployment", deployment), schemas()).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "generation": 0, "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "nginx",
                                "image": "nginx:1.27",
                                "ports": [{"hostPort": 0, "containerPort": 80, "protocol": "TCP", "hostIP": "127.0.0.1"}],
                                "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz", "port": 8080},
                                    "periodSeconds": 10,
                                },
                                "stdin": false,
                            }],
                            "securityContext": {},
                        },
                    },
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
                    "minReadySeconds": 0,
                    "paused": false,
                },
                "status": {},
            })
        );
    }

    #[test]
    fn inlined_structs_join_their_parent() {
        let volume = Enc::new().str(1, "data").msg(
            2,
            Enc::new().msg(2, Enc::new().str(1, "").msg(2, quantity("1Gi"))),
        );
        let selector = Enc::new().msg(1, Enc::new().str(1, "cm")).str(2, "k");
        let env = Enc::new()
            .str(1, "A")
            .str(2, "")
            .msg(3, Enc::new().msg(3, selector));
        let container = Enc::new().str(1, "c").msg(7, env);
        let pod = Enc::new()
            .msg(1, meta("p", "default", &[]))
            .msg(2, Enc::new().msg(1, volume).msg(2, container));
        let got = decode(&envelope("v1", "Pod", pod), schemas()).unwrap();
        assert_eq!(
            got["spec"],
            json!({
                "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
                "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}],
            })
        );
    }

    #[test]
    fn secret_bytes_become_base64() {
        let secret = Enc::new()
            .msg(1, meta("s", "default", &[]))
            .msg(2, Enc::new().str(1, "p").bytes(2, b"q\0\xff"))
            .entry(2, "empty", "")
            .str(3, "Opaque");
        let got = decode(&envelope("v1", "Secret", secret), schemas()).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "default", "generation": 0},
                "data": {"p": "cQD/", "empty": ""},
                "type": "Opaque",
            })
        );
    }

    #[test]
    fn initialisms_micro_times_and_raw_json() {
        let status = Enc::new()
            .str(5, "10.0.0.1")
            .msg(7, Enc::new().int(1, 1_700_000_000).int(2, 999_000_000))
            .msg(12, Enc::new().str(1, "10.1.0.5"))
            .msg(12, Enc::new().str(1, "fd00::5"));
        let pod = Enc::new().msg(1, meta("p", "default", &[])).msg(3, status);
        let got = decode(&envelope("v1", "Pod", pod), schemas()).unwrap();
        assert_eq!(
            got["status"],
            json!({"hostIP": "10.0.0.1", "startTime": "2023-11-14T22:13:20Z", "podIPs": [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}]})
        );

        let spec = Enc::new()
            .str(1, "holder")
            .int(2, 15)
            .msg(3, Enc::new().int(1, 1_700_000_000).int(2, 123_456_789))
            .msg(4, zero_time());
        let lease = Enc::new()
            .msg(1, meta("l", "kube-system", &[]))
            .msg(2, spec);
        let got = decode(
            &envelope("coordination.k8s.io/v1", "Lease", lease),
            schemas(),
        )
        .unwrap();
        assert_eq!(
            got["spec"],
            json!({"holderIdentity": "holder", "leaseDurationSeconds": 15, "acquireTime": "2023-11-14T22:13:20.123456Z"})
        );

        let revision = Enc::new()
            .msg(1, meta("r", "default", &[]))
            .msg(2, Enc::new().bytes(1, br#"{"spec":{"x":[1,2]}}"#))
            .int(3, 3);
        let got = decode(
            &envelope("apps/v1", "ControllerRevision", revision),
            schemas(),
        )
        .unwrap();
        assert_eq!(got["data"], json!({"spec": {"x": [1, 2]}}));
        assert_eq!(got["revision"], 3);
    }

    #[test]
    fn repeated_numbers_decode_packed_or_not() {
        let packed = Enc::new().varint(1).varint(2).varint(300);
        let requirement = Enc::new()
            .str(1, "")
            .str(2, "In")
            .msg(3, packed)
            .int(3, 4)
            .int(3, -1);
        let policy = Enc::new().msg(1, Enc::new().str(1, "FailJob").msg(2, requirement));
        let job = Enc::new()
            .msg(1, meta("j", "default", &[]))
            .msg(2, Enc::new().msg(11, policy));
        let got = decode(&envelope("batch/v1", "Job", job), schemas()).unwrap();
        assert_eq!(
            got["spec"]["podFailurePolicy"],
            json!({"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 2, 300, 4, -1]}}]})
        );
    }

    #[test]
    fn service_ports_drop_a_zero_node_port_and_keep_empty_storage_class() {
        let port = Enc::new()
            .str(1, "")
            .str(2, "TCP")
            .int(3, 80)
            .msg(4, int_or_string_int(8080))
            .int(5, 0);
        let svc = Enc::new()
            .msg(1, meta("s", "default", &[]))
            .msg(2, Enc::new().msg(1, port).int(12, 0));
        let got = decode(&envelope("v1", "Service", svc), schemas()).unwrap();
        assert_eq!(
            got["spec"],
            json!({"ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}]})
        );

        let pvc = Enc::new()
            .msg(1, meta("c", "default", &[]))
            .msg(2, Enc::new().str(5, ""));
        let got = decode(&envelope("v1", "PersistentVolumeClaim", pvc), schemas()).unwrap();
        assert_eq!(got["spec"], json!({"storageClassName": ""}));
    }

    #[test]
    fn delete_options_decode_in_any_group_version() {
        let options = Enc::new().int(1, 0).str(4, "Foreground").str(5, "All");
        let got = decode(&envelope("apps/v1", "DeleteOptions", options), schemas()).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let s = schemas();
        assert!(matches!(decode(b"{}", s), Err(ProtobufError::BadMagic)));
        let mut body = envelope(
            "v1",
            "ConfigMap",
            Enc::new().msg(1, meta("c", "default", &[])),
        );
        body.truncate(body.len() - 3);
        assert!(matches!(
            decode(&body, s),
            Err(ProtobufError::Truncated { .. })
        ));
        let wrong = Enc::new().int(1, 5); // metadata as a varint
        assert!(matches!(
            decode(&envelope("v1", "ConfigMap", wrong), s),
            Err(ProtobufError::WireType {
                tag: 1,
                found: 0,
                expected: 2,
                ..
            })
        ));
        assert!(matches!(
            decode(&envelope("v1", "Frobnicator", Enc::new()), s),
            Err(ProtobufError::UnknownKind { .. })
        ));
        assert!(matches!(
            decode(&envelope("", "", Enc::new()), s),
            Err(ProtobufError::MissingTypeMeta { .. })
        ));
        let bad_utf8 = Enc::new().msg(1, Enc::new().bytes(1, b"\xff"));
        assert!(matches!(
            decode(&envelope("v1", "ConfigMap", bad_utf8), s),
            Err(ProtobufError::InvalidUtf8 { .. })
        ));
        let mut encoded = [MAGIC.as_slice(), &Enc::new().str(3, "gzip").0].concat();
        assert!(matches!(
            decode(&encoded, s),
            Err(ProtobufError::ContentEncoding(_))
        ));
        encoded.truncate(4);
        encoded.extend_from_slice(&[0x0b]); // field 1, wire type 3 (group start)
        assert!(matches!(
            decode(&encoded, s),
            Err(ProtobufError::UnsupportedWireType { wire_type: 3, .. })
        ));
        encoded.truncate(4);
        encoded.extend_from_slice(&[0x80; 11]);
        assert!(matches!(
            decode(&encoded, s),
            Err(ProtobufError::BadVarint { .. })
        ));
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (1_500_000_000, "1.5s"),
            (3_723_000_000_000, "1h2m3s"),
            (3_600_000_000_000, "1h0m0s"),
            (-90_000_000_000, "-1m30s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(go_duration(nanos), text);
        }
    }

    /// Every served kind has a message, and every field of a message with an OpenAPI schema
    /// finds its JSON property (or is an inlined struct): rerun scripts/gen-proto-schema.py
    /// when this fails after adding a kind.
    #[test]
    fn the_table_covers_the_served_kinds_and_their_json_names() {
        for r in crate::api::resources::RESOURCES {
            assert!(
                message_for_kind(&r.api_version(), r.kind).is_some(),
                "{} {} has no protobuf message: rerun scripts/gen-proto-schema.py",
                r.api_version(),
                r.kind
            );
        }
        let decoder = Decoder { schemas: schemas() };
        let mut unmatched = Vec::new();
        let mut inlined = Vec::new();
        for message in schema::MESSAGES {
            let Some(props) = decoder.properties(message.name) else {
                continue;
            };
            for field in message.fields {
                if property(field.name, props).is_some() {
                    continue;
                }
                match decoder.inlined(field, props) {
                    Some(inner) => inlined.push(inner.name),
                    None => unmatched.push(format!("{}.{}", message.name, field.name)),
                }
            }
        }
        inlined.sort_unstable();
        inlined.dedup();
        let core = |short: &str| format!("k8s.io.api.core.v1.{short}");
        let mut expected_inlined = [
            "EphemeralContainerCommon",
            "LocalObjectReference",
            "PersistentVolumeSource",
            "ProbeHandler",
            "VolumeSource",
        ]
        .map(core)
        .to_vec();
        expected_inlined.push("k8s.io.api.networking.v1.IngressRuleValue".to_string());
        assert_eq!(inlined, expected_inlined);
        // k8s-pb's alpha fields that the OpenAPI schemas (a newer Kubernetes) no longer carry.
        let drift = ["PodSpec.workload_ref"].map(core);
        assert_eq!(unmatched, drift, "fields without a JSON property");
    }
}
