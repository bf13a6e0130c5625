//! JSON written exactly as Go's `encoding/json` writes it: HTML-safe string escapes, Go's
//! number formatting, optionally sorted object keys (Go marshals maps sorted). Kubernetes puts
//! such text in places clients compare byte for byte: managedFields keys (`k:{"name":"web"}`)
//! and the values quoted in validation messages.

use serde_json::{Number, Value};

/// A value as compact Go JSON.
pub fn value(v: &Value, sorted: bool) -> String {
    let mut out = String::new();
    write_value(v, sorted, &mut out);
    out
}

/// Appends a value as compact Go JSON.
pub fn write_value(v: &Value, sorted: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, sorted, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if sorted {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(key, out);
                out.push(':');
                write_value(&map[key], sorted, out);
            }
            out.push('}');
        }
    }
}

/// A number as Go's encoding/json writes it.
pub fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else if f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// Appends a string quoted as Go's encoding/json does (HTML-safe, `\b`/`\f` short escapes).
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_like_go() {
        assert_eq!(
            value(&json!({"b": 1, "a": "<x>\n"}), true),
            r#"{"a":"\u003cx\u003e\n","b":1}"#
        );
        assert_eq!(value(&json!({"b": 1, "a": 2}), false), r#"{"b":1,"a":2}"#);
        assert_eq!(value(&json!(1e21), true), "1e+21");
        assert_eq!(value(&json!(2.5), true), "2.5");
        assert_eq!(value(&json!("\u{8}"), true), r#""\b""#);
    }
}
