#!/usr/bin/env python3
"""Generates src/api/protobuf_schema.rs: the wire layout of the Kubernetes protobuf messages
skiff decodes (see src/api/protobuf.rs).

The layout (field tags, names and types) is read from the prost-generated sources of the
`k8s-pb` crate (Apache-2.0), which skiff does not depend on at run time. Only messages
reachable from ROOTS below and from the kinds registered in src/api/resources.rs are
emitted.

prost renames messages to UpperCamelCase (`HTTPGetAction` becomes `HttpGetAction`); the Go
spelling, which is the proto name and the OpenAPI definition name, is restored from the type
names of `k8s-openapi` (skiff's own dependency), else from the message's doc comment when
its first word is the name in another case.

Rerun (from the repository root) after adding a kind to src/api/resources.rs, adding a root
or moving to a newer k8s-pb:

    cargo fetch   # skiff's own k8s-openapi lands in ~/.cargo/registry
    # k8s-pb is no dependency of skiff: fetch its source once through a scratch crate
    cargo new -q /tmp/k8s-pb-src && (cd /tmp/k8s-pb-src && cargo add -q k8s-pb@0.9.0 && cargo fetch)
    python3 scripts/gen-proto-schema.py [PATH/TO/k8s-pb-X.Y.Z [PATH/TO/k8s-openapi-X.Y.Z]]

Without arguments the newest k8s-pb-* and k8s-openapi-* under ~/.cargo/registry/src/*/ are
used. The output is formatted with rustfmt when it is on PATH (CI checks formatting).
"""

import glob
import os
import re
import subprocess
import sys

# Messages whose closure is emitted, as proto package + name.
ROOTS = [
    "k8s.io.api.core.v1." + kind
    for kind in [
        "Namespace",
        "Pod",
        "Service",
        "Endpoints",
        "ConfigMap",
        "Secret",
        "Event",
        "Node",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Binding",
    ]
] + [
    "k8s.io.api.apps.v1.Deployment",
    "k8s.io.api.apps.v1.ReplicaSet",
    "k8s.io.api.apps.v1.StatefulSet",
    "k8s.io.api.apps.v1.DaemonSet",
    "k8s.io.api.apps.v1.ControllerRevision",
    "k8s.io.api.batch.v1.Job",
    "k8s.io.api.batch.v1.CronJob",
    "k8s.io.api.coordination.v1.Lease",
    "k8s.io.api.networking.v1.Ingress",
    "k8s.io.api.discovery.v1.EndpointSlice",
    "k8s.io.api.autoscaling.v1.Scale",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
]

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUTPUT = os.path.join(REPO, "src", "api", "protobuf_schema.rs")
RESOURCES = os.path.join(REPO, "src", "api", "resources.rs")

# prost scalar names -> the Kind variants of the generated table.
SCALARS = {
    "string": "String",
    "bytes": "Bytes",
    "int32": "Int32",
    "int64": "Int64",
    "uint32": "Uint32",
    "uint64": "Uint64",
    "bool": "Bool",
    "double": "Double",
    "float": "Float",
}

STRUCT_RE = re.compile(r"^pub struct (\w+) \{$")
ATTR_RE = re.compile(r"^\s*#\[prost\((.*)\)\]\s*$")
FIELD_RE = re.compile(r"^\s*pub (?:r#)?(\w+):\s*(.*)$")


def find_crate(name, arg):
    if len(sys.argv) > arg:
        return sys.argv[arg]
    candidates = glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{name}-[0-9]*"))
    if not candidates:
        sys.exit(f"{name} not found under ~/.cargo/registry/src; pass its path")

    def version(path):
        return tuple(int(p) for p in re.findall(r"\d+", os.path.basename(path)))

    return max(candidates, key=version)


def package_of(module):
    """Rust module path (['api', 'apps', 'v1']) -> proto package ('k8s.io.api.apps.v1')."""
    if not module:
        return "k8s.io"
    return ".".join(["k8s.io", module[0].replace("_", "-")] + module[1:])


def resolve(module, rust_type):
    """A prost message type as written in a field of `module` -> full proto message name."""
    rust_type = rust_type.strip()
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while rust_type.startswith(wrapper):
            # rustfmt leaves a trailing comma when it wraps the argument: `Vec<\n    T,\n>`.
            rust_type = rust_type[len(wrapper) : -1].strip().rstrip(",").strip()
    parts = rust_type.split("::")
    path = list(module)
    while parts and parts[0] == "super":
        parts.pop(0)
        path.pop()
    if len(parts) > 1:
        path = path + parts[:-1]
    return package_of(path) + "." + parts[-1]


def split_generic_args(text):
    """'A, B<C, D>' -> ['A', 'B<C, D>']."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def parse_attr(attr):
    """The prost attribute body -> (kind spec, repeated, tag)."""
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    m = re.match(r'(?:btree_map|hash_map) = "(\w+), (\w+)"', attr)
    if m:
        return ("map", m.group(1), m.group(2)), False, tag
    first = attr.split(",")[0].split("=")[0].strip()
    repeated = re.search(r"\brepeated\b", attr) is not None
    if first == "message":
        return ("message",), repeated, tag
    if first in SCALARS:
        return ("scalar", first), repeated, tag
    raise ValueError(f"unsupported prost attribute: {attr}")


def parse_file(path, module, messages):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i, current = 0, None
    while i < len(lines):
        line = lines[i]
        m = STRUCT_RE.match(line)
        if m:
            current = package_of(module) + "." + m.group(1)
            messages[current] = []
        elif line == "}":
            current = None
        elif current is not None:
            a = ATTR_RE.match(line)
            if a:
                spec, repeated, tag = parse_attr(a.group(1))
                # The field declaration follows (rustfmt may wrap its type over several lines).
                i += 1
                decl = lines[i]
                while decl.count("<") != decl.count(">") or not decl.rstrip().endswith(","):
                    i += 1
                    decl = decl.rstrip() + " " + lines[i].strip()
                fm = FIELD_RE.match(decl)
                if not fm:
                    raise ValueError(f"{path}:{i + 1}: no field after prost attribute")
                name, rust_type = fm.group(1), fm.group(2).rstrip().rstrip(",")
                if spec[0] == "message":
                    kind = ("message", resolve(module, rust_type))
                elif spec[0] == "map":
                    key, value = spec[1], spec[2]
                    if key not in SCALARS:
                        raise ValueError(f"{path}: unsupported map key {key}")
                    if value == "message":
                        inner = rust_type[rust_type.index("<") + 1 : rust_type.rindex(">")]
                        value_kind = ("message", resolve(module, split_generic_args(inner)[1]))
                    else:
                        value_kind = ("scalar", value)
                    kind = ("map", ("scalar", key), value_kind)
                else:
                    kind = spec
                messages[current].append((tag, name, kind, repeated))
        i += 1


def go_names(openapi_crate):
    """(package, lower-cased name) -> the Go spelling, from k8s-openapi's newest API version
    module (src/v1_NN/api/core/v1/*.rs holds `pub struct HTTPGetAction`)."""
    src = os.path.join(openapi_crate, "src")
    versions = [d for d in os.listdir(src) if re.fullmatch(r"v\d+_\d+", d)]
    if not versions:
        sys.exit(f"no v1_NN module in {src}")
    root = os.path.join(src, max(versions, key=lambda d: tuple(int(p) for p in d[1:].split("_"))))
    names = {}
    for path in glob.glob(os.path.join(root, "**", "*.rs"), recursive=True):
        if os.path.basename(path) == "mod.rs":
            continue
        module = os.path.relpath(os.path.dirname(path), root).split(os.sep)
        with open(path, encoding="utf-8") as f:
            for struct in re.findall(r"^pub struct (\w+)", f.read(), re.M):
                names[(package_of(module), struct.lower())] = struct
    return names


def doc_names(crate):
    """(package, lower-cased name) -> the first word of a message's doc comment, when that word
    is the message's name in another case."""
    names = {}
    src = os.path.join(crate, "src")
    for path in glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True):
        rel = os.path.relpath(os.path.dirname(path), src)
        module = [] if rel == "." else rel.split(os.sep)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for doc, struct in re.findall(r"((?:^///[^\n]*\n)+)(?:^#\[[^\n]*\n)*^pub struct (\w+) \{", text, re.M):
            words = doc.split("\n")[0][3:].split()
            if words and words[0].lower() == struct.lower():
                names[(package_of(module), struct.lower())] = words[0]
    return names


def restore_case(messages, openapi_crate, crate):
    """Renames prost's UpperCamelCase message names (and references) to the Go spelling."""
    known = doc_names(crate)
    known.update(go_names(openapi_crate))
    renames = {}
    for name in messages:
        package, _, short = name.rpartition(".")
        go = known.get((package, short.lower()))
        if go and go != short:
            renames[name] = f"{package}.{go}"

    def fix(kind):
        if kind[0] == "message":
            return ("message", renames.get(kind[1], kind[1]))
        if kind[0] == "map":
            return ("map", fix(kind[1]), fix(kind[2]))
        return kind

    return {
        renames.get(name, name): [(tag, field, fix(kind), repeated) for tag, field, kind, repeated in fields]
        for name, fields in messages.items()
    }


def load(crate):
    messages = {}
    src = os.path.join(crate, "src")
    for path in sorted(glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), src)
        module = [] if rel == "." else rel.split(os.sep)
        parse_file(path, module, messages)
    return messages


def served_kinds():
    """Proto names of the kinds src/api/resources.rs registers: `resource!("apps", "v1",
    "Deployment", ...)` is k8s.io.api.apps.v1.Deployment (the group's first label; `core` for
    the core group)."""
    with open(RESOURCES, encoding="utf-8") as f:
        text = f.read()
    out = []
    for group, version, kind in re.findall(r'resource!\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"', text):
        package = group.split(".")[0] if group else "core"
        out.append(f"k8s.io.api.{package}.{version}.{kind}")
    return out


def closure(messages):
    roots = list(ROOTS)
    for name in served_kinds():
        if name not in messages:
            print(f"warning: served kind {name} has no protobuf message in k8s-pb", file=sys.stderr)
        elif name not in roots:
            roots.append(name)
    seen, stack = set(), roots
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in messages:
            sys.exit(f"message {name} not found in k8s-pb")
        seen.add(name)
        for _tag, _name, kind, _repeated in messages[name]:
            for part in (kind, kind[2] if kind[0] == "map" else None):
                if part and part[0] == "message":
                    stack.append(part[1])
    return sorted(seen)


def kind_expr(kind):
    if kind[0] == "scalar":
        return SCALARS[kind[1]]
    if kind[0] == "message":
        return f'Message("{kind[1]}")'
    return f"Map(&{kind_expr(kind[1])}, &{kind_expr(kind[2])})"


def render(crate, openapi_crate, names, messages):
    out = [
        "// @generated by scripts/gen-proto-schema.py from "
        + os.path.basename(os.path.normpath(crate))
        + " (Apache-2.0; message names spelled as in "
        + os.path.basename(os.path.normpath(openapi_crate))
        + ").",
        "// Do not edit by hand: rerun `python3 scripts/gen-proto-schema.py` instead.",
        "",
        "//! The wire layout of the Kubernetes protobuf messages skiff decodes: for every message",
        "//! reachable from the served kinds, its fields' tags, snake_case names and value kinds.",
        "",
        "/// The value kind of a field (of one element, for repeated fields).",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub enum Kind {",
        "    /// `string`.",
        "    String,",
        "    /// `bytes`.",
        "    Bytes,",
        "    /// `int32`.",
        "    Int32,",
        "    /// `int64`.",
        "    Int64,",
        "    /// `uint32`.",
        "    Uint32,",
        "    /// `uint64`.",
        "    Uint64,",
        "    /// `bool`.",
        "    Bool,",
        "    /// `double`.",
        "    Double,",
        "    /// `float`.",
        "    Float,",
        "    /// An embedded message, by full proto name.",
        "    Message(&'static str),",
        "    /// A map: repeated entries {1: key, 2: value}.",
        "    Map(&'static Kind, &'static Kind),",
        "}",
        "",
        "/// One field of a message.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub struct Field {",
        "    /// The field number.",
        "    pub tag: u32,",
        "    /// The field's name in snake_case, as prost wrote it.",
        "    pub name: &'static str,",
        "    /// The value kind.",
        "    pub kind: Kind,",
        "    /// Whether the field is repeated (maps are not).",
        "    pub repeated: bool,",
        "}",
        "",
        "/// One message: its full proto name and fields, by tag.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub struct Message {",
        "    /// Full proto name, e.g. `k8s.io.api.apps.v1.Deployment`.",
        "    pub name: &'static str,",
        "    /// The fields, sorted by tag.",
        "    pub fields: &'static [Field],",
        "}",
        "",
        "impl Message {",
        "    /// The field with this number.",
        "    pub fn field(&self, tag: u32) -> Option<&'static Field> {",
        "        self.fields",
        "            .binary_search_by_key(&tag, |f| f.tag)",
        "            .ok()",
        "            .map(|i| &self.fields[i])",
        "    }",
        "}",
        "",
        "/// The message with this full proto name.",
        "pub fn message(name: &str) -> Option<&'static Message> {",
        "    MESSAGES",
        "        .binary_search_by(|m| m.name.cmp(name))",
        "        .ok()",
        "        .map(|i| &MESSAGES[i])",
        "}",
        "",
        "const fn f(tag: u32, name: &'static str, kind: Kind) -> Field {",
        "    Field {",
        "        tag,",
        "        name,",
        "        kind,",
        "        repeated: false,",
        "    }",
        "}",
        "",
        "const fn r(tag: u32, name: &'static str, kind: Kind) -> Field {",
        "    Field {",
        "        tag,",
        "        name,",
        "        kind,",
        "        repeated: true,",
        "    }",
        "}",
        "",
        "use Kind::*;",
        "",
        "/// Every message, sorted by name.",
        "#[rustfmt::skip]",
        "pub static MESSAGES: &[Message] = &[",
    ]
    for name in names:
        out.append(f'    Message {{ name: "{name}", fields: &[')
        for tag, field, kind, repeated in sorted(messages[name]):
            ctor = "r" if repeated else "f"
            out.append(f'        {ctor}({tag}, "{field}", {kind_expr(kind)}),')
        out.append("    ] },")
    out.append("];")
    return "\n".join(out) + "\n"


def main():
    crate = find_crate("k8s-pb", 1)
    openapi_crate = find_crate("k8s-openapi", 2)
    messages = restore_case(load(crate), openapi_crate, crate)
    names = closure(messages)
    # Rust's str ordering is byte ordering, as Python's is for ASCII.
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(render(crate, openapi_crate, names, messages))
    try:
        subprocess.run(["rustfmt", "--edition", "2024", OUTPUT], check=True)
    except FileNotFoundError:
        print("rustfmt not found: format the output before committing", file=sys.stderr)
    print(f"wrote {len(names)} messages to {os.path.normpath(OUTPUT)}")


if __name__ == "__main__":
    main()
