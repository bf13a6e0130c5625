//! A block-style YAML writer for JSON values that formats scalars the way kubectl's
//! YAML output does (sequences flush with their key, strings that a YAML 1.1 reader
//! would take for something else double-quoted, strings that can't be plain
//! single-quoted, multi-line strings as literal blocks).
//!
//! Unlike serde_yaml (a YAML 1.2 writer), this quotes `"2024-01-01"`, `"yes"` or
//! `"0x1F"`, so output stays a string when fed back to kubectl. Like kubectl, long
//! plain and quoted strings are folded at spaces once a line passes 80 columns.

use serde_json::{Map, Number, Value};

/// `value` as a YAML document (no leading `---`), ending in a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            out.push_str(&inline(other, 0, 0));
            out.push('\n');
        }
    }
    out
}

/// Lines longer than this are folded at a space (go-yaml's "best width").
const BEST_WIDTH: usize = 80;

/// The column the next character written to `out` lands in.
fn column(out: &str) -> usize {
    out.rsplit('\n').next().unwrap_or("").chars().count()
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a map inside a sequence item follows the "- " directly.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&key_scalar(key));
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        other => {
            out.push(' ');
            let text = inline(other, indent + 2, column(out));
            out.push_str(&text);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            other => {
                let text = inline(other, indent + 2, column(out));
                out.push_str(&text);
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar or empty collection starting at `column`; folded and literal-block lines
/// are indented by `indent`.
fn inline(value: &Value, indent: usize, column: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string_scalar(s, indent, Some(column)),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn key_scalar(key: &str) -> String {
    string_scalar(key, 0, None)
}

fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// How a string is written.
#[derive(Debug, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// A string written at `column` (`None` for a mapping key, which is never folded).
fn string_scalar(s: &str, indent: usize, column: Option<usize>) -> String {
    let fold = column.map(|c| (c, indent));
    match style(s, column.is_none()) {
        Style::Plain => folded(s, fold, Quote::None),
        Style::Single => folded(s, fold, Quote::Single),
        Style::Double => folded(s, fold, Quote::Double),
        Style::Literal => literal(s, indent),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Writes a plain, single- or double-quoted scalar, breaking the line at a space once
/// the column passes [`BEST_WIDTH`] (when `fold` gives the start column and the
/// continuation indent), the way go-yaml's emitter does.
fn folded(s: &str, fold: Option<(usize, usize)>, quote: Quote) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut col = fold.map_or(0, |(c, _)| c);
    let open = match quote {
        Quote::None => "",
        Quote::Single => "'",
        Quote::Double => "\"",
    };
    out.push_str(open);
    col += open.len();
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let inner = i > 0 && i + 1 < chars.len();
            let may_break = match quote {
                Quote::None => !next_is_space,
                Quote::Single => inner && !next_is_space,
                Quote::Double => inner,
            };
            match fold {
                Some((_, indent)) if may_break && !spaces && col > BEST_WIDTH => {
                    out.push('\n');
                    push_indent(&mut out, indent);
                    col = indent;
                    if quote == Quote::Double && next_is_space {
                        out.push('\\');
                        col += 1;
                    }
                }
                _ => {
                    out.push(' ');
                    col += 1;
                }
            }
            spaces = true;
            continue;
        }
        spaces = false;
        let piece = match (quote, c) {
            (Quote::Single, '\'') => "''".to_string(),
            (Quote::Double, c) => double_escape(c),
            (_, c) => c.to_string(),
        };
        col += piece.chars().count();
        out.push_str(&piece);
    }
    out.push_str(open);
    out
}

fn style(s: &str, is_key: bool) -> Style {
    let a = analyze(s);
    if a.special || a.space_break {
        return Style::Double;
    }
    if s.contains('\n') {
        return if is_key || a.trailing_space {
            Style::Double
        } else {
            Style::Literal
        };
    }
    if resolves_to_non_string(s) {
        return Style::Double;
    }
    if a.indicators || a.leading_space || a.trailing_space {
        return Style::Single;
    }
    Style::Plain
}

#[derive(Default)]
struct Analysis {
    /// Characters that can't appear literally (control characters, tabs, ...).
    special: bool,
    /// Something that makes a plain scalar read differently (`: `, ` #`, leading `-`...).
    indicators: bool,
    leading_space: bool,
    trailing_space: bool,
    /// A space right before a line break.
    space_break: bool,
    /// A line break right before a space.
    break_space: bool,
}

fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

fn analyze(s: &str) -> Analysis {
    let mut a = Analysis::default();
    let chars: Vec<char> = s.chars().collect();
    let blank_or_end = |i: usize| chars.get(i).is_none_or(|c| matches!(c, ' ' | '\t' | '\n'));
    if (s.starts_with("---") || s.starts_with("...")) && blank_or_end(3) {
        a.indicators = true;
    }
    for (i, &c) in chars.iter().enumerate() {
        if !printable(c) {
            a.special = true;
        }
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                a.indicators = true;
            }
            if matches!(c, '?' | ':' | '-') && blank_or_end(1) {
                a.indicators = true;
            }
        } else {
            if c == ':' && blank_or_end(i + 1) {
                a.indicators = true;
            }
            if c == '#' && matches!(chars[i - 1], ' ' | '\t' | '\n') {
                a.indicators = true;
            }
        }
        if c == ' ' && chars.get(i + 1) == Some(&'\n') {
            a.space_break = true;
        }
        if c == '\n' && chars.get(i + 1) == Some(&' ') {
            a.break_space = true;
        }
    }
    a.leading_space = matches!(chars.first(), Some(' ' | '\n'));
    a.trailing_space = matches!(chars.last(), Some(' '));
    a
}

/// Whether a YAML 1.1 reader (as kubectl's) would read the plain scalar `s` as something
/// other than a string: null, booleans (`yes`, `off`...), numbers (`010`, `0x1F`,
/// `1_000`, `1e3`, `.inf`, `1:30`), timestamps, or the merge key.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let Some(first) = s.chars().next() else {
        return true;
    };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return false;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    is_int(&plain) || plain.parse::<f64>().is_ok() || is_base60(s) || is_timestamp(s)
}

fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (radix, body) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    !body.is_empty() && body.chars().all(|c| c.is_digit(radix))
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`
fn is_base60(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let rest: Vec<&str> = parts.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b {
                [d] => d.is_ascii_digit(),
                [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
                _ => false,
            }
        });
    let frac_ok = frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'));
    head_ok && rest_ok && frac_ok
}

/// `YYYY-M-D`, optionally followed by `T`, `t` or a space and a time.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    for part in 0..2 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        if i == start {
            return false;
        }
        if part == 0 {
            if b.get(i) != Some(&b'-') {
                return false;
            }
            i += 1;
        }
    }
    match b.get(i) {
        None => true,
        Some(b'T' | b't' | b' ') => b.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// One character inside a double-quoted scalar.
fn double_escape(c: char) -> String {
    match c {
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\r' => "\\r".into(),
        '\0' => "\\0".into(),
        c if printable(c) => c.to_string(),
        c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
        c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
        c => format!("\\U{:08X}", c as u32),
    }
}

/// `|` (keep one trailing newline), `|-` (none) or `|+` (several), with an indentation
/// indicator when the text starts with a space or newline; lines indented by `indent`.
fn literal(s: &str, indent: usize) -> String {
    let mut header = String::from("|");
    if s.starts_with([' ', '\n']) {
        header.push('2');
    }
    let body = s.strip_suffix('\n');
    match body {
        None => header.push('-'),
        Some(b) if b.ends_with('\n') || b.is_empty() => header.push('+'),
        Some(_) => {}
    }
    let body = body.unwrap_or(s);
    let mut out = header;
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "data": {"color": "blue", "count": "16", "empty": "", "when": "2024-01-01"},
            "kind": "ConfigMap",
            "metadata": {
                "creationTimestamp": "2026-11-22T23:27:46Z",
                "labels": {"app": "web"},
                "name": "web-config",
                "resourceVersion": "16",
                "finalizers": [],
                "annotations": {},
            },
            "spec": {
                "containers": [{"name": "nginx", "ports": [{"containerPort": 80}], "args": ["a", "b"]}],
                "matrix": [[1, 2], []],
                "replicas": 2,
                "ratio": 1.5,
                "whole": 2.0,
                "enabled": true,
                "nothing": null
            }
        });
        assert_eq!(
            to_string(&v),
            r#"apiVersion: v1
data:
  color: blue
  count: "16"
  empty: ""
  when: "2024-01-01"
kind: ConfigMap
metadata:
  creationTimestamp: "2026-11-22T23:27:46Z"
  labels:
    app: web
  name: web-config
  resourceVersion: "16"
  finalizers: []
  annotations: {}
spec:
  containers:
  - name: nginx
    ports:
    - containerPort: 80
    args:
    - a
    - b
  matrix:
  - - 1
    - 2
  - []
  replicas: 2
  ratio: 1.5
  whole: 2
  enabled: true
  nothing: null
"#
        );
    }

    #[test]
    fn scalars_that_need_quotes() {
        let s = |v: &str| string_scalar(v, 0, Some(0));
        for (input, expected) in [
            ("plain text", "plain text"),
            ("yes", "\"yes\""),
            ("Off", "\"Off\""),
            ("~", "\"~\""),
            ("null", "\"null\""),
            ("0x1F", "\"0x1F\""),
            ("010", "\"010\""),
            ("1_000", "\"1_000\""),
            ("1e3", "\"1e3\""),
            ("-1.5", "\"-1.5\""),
            (".inf", "\".inf\""),
            ("1:30", "\"1:30\""),
            ("2024-1-2 10:00:00", "\"2024-1-2 10:00:00\""),
            ("1.2.3", "1.2.3"),
            ("v1", "v1"),
            ("app=web", "app=web"),
            ("nginx:1.27", "nginx:1.27"),
            ("a: b", "'a: b'"),
            ("trailing:", "'trailing:'"),
            ("x #y", "'x #y'"),
            ("x#y", "x#y"),
            ("- item", "'- item'"),
            ("-flag", "-flag"),
            ("*", "'*'"),
            ("{}", "'{}'"),
            ("it's", "it's"),
            ("'quoted'", "'''quoted'''"),
            (" lead", "' lead'"),
            ("tail ", "'tail '"),
            ("tab\there", "\"tab\\there\""),
            ("bell\u{7}", "\"bell\\x07\""),
            ("---", "'---'"),
            ("ünïcödé", "ünïcödé"),
        ] {
            assert_eq!(s(input), expected, "{input:?}");
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = json!({"data": {
            "script": "echo hi\necho there\n",
            "nonl": "a\nb",
            "keep": "a\n\n",
            "blank": "a\n\nb\n",
            "lead": " a\nb\n",
            "trailing space": "a \nb"
        }});
        assert_eq!(
            to_string(&v),
            "data:\n  script: |\n    echo hi\n    echo there\n  nonl: |-\n    a\n    b\n  keep: |+\n    a\n\n  blank: |\n    a\n\n    b\n  lead: |2\n     a\n    b\n  trailing space: \"a \\nb\"\n"
        );
    }

    #[test]
    fn long_strings_fold_like_kubectl() {
        let long = "aaaaaaaaaa bbbbbbbbbbbbb cccccccccccccc dddddddddddddddd eeeeeeeeeeeeeeeeeeee fffffffffffffffff ggggggggggggg";
        assert_eq!(
            to_string(&json!({"data": {"long": long}})),
            "data:\n  long: aaaaaaaaaa bbbbbbbbbbbbb cccccccccccccc dddddddddddddddd eeeeeeeeeeeeeeeeeeee\n    fffffffffffffffff ggggggggggggg\n"
        );
        // Keys never fold; sequence items continue two columns in.
        let key = format!("{long} {long}");
        let out = to_string(&json!({ key.clone(): [long] }));
        assert!(out.starts_with(&format!("{key}:\n- aaaaaaaaaa")), "{out}");
        assert!(
            out.contains("eeeeeeeeeeeeeeeeeeee fffffffffffffffff\n  ggggggggggggg"),
            "{out}"
        );
    }

    #[test]
    fn folded_strings_read_back_unchanged() {
        let words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor";
        let v = json!({
            "plain": format!("{words} {words}"),
            "single": format!("a: {words}  {words} {words}"),
            "double": format!("tab\t{words}  {words}   {words} end"),
            "nested": [{"deep": format!("{words} {words}")}]
        });
        let text = to_string(&v);
        assert!(text.lines().count() > 5, "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn top_level_shapes() {
        assert_eq!(to_string(&json!({})), "{}\n");
        assert_eq!(to_string(&json!([1, "a"])), "- 1\n- a\n");
        assert_eq!(to_string(&json!("x")), "x\n");
        assert_eq!(
            to_string(&json!({"a": [{"b": {"c": 1}}]})),
            "a:\n- b:\n    c: 1\n"
        );
    }

    #[test]
    fn output_reads_back_as_the_same_value() {
        let v = json!({
            "a": ["yes", "1:2", " x", "a: b", "l1\nl2\n", "t\tab", "", "#c", "é", "  lead\nx\n", "k\n\n", "\n"],
            "b": {"k y": "-", "lead": "  lead\nx", "nested": [{"m": "x\n y\n"}], "keep": "a\n\n\n"}
        });
        let back: Value = serde_yaml::from_str(&to_string(&v)).unwrap();
        assert_eq!(back, v);
    }
}
