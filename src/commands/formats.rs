//! Pieces shared by the machine-readable reports of `vigil test` (JSON,
//! JUnit XML) and `vigil validate` (JSON, SARIF): the JSON shape of a
//! located error or warning, XML text escaping, and writing a report to
//! `--output FILE` or stdout.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};
use vigil_engine::{LoadError, LoadWarning, Location};

/// `{"file", "line", "col", "item", "message"}` (line and col 0: unknown).
pub fn located_json(loc: &Location, item: Option<&str>, msg: &str) -> Value {
    json!({
        "file": loc.file,
        "line": loc.line,
        "col": loc.col,
        "item": item,
        "message": msg,
    })
}

pub fn error_json(e: &LoadError) -> Value {
    located_json(&e.loc, e.item.as_deref(), &e.msg)
}

pub fn warning_json(w: &LoadWarning) -> Value {
    located_json(&w.loc, w.item.as_deref(), &w.msg)
}

/// `text` escaped for XML 1.0 content and attribute values: markup
/// characters as entities, characters XML 1.0 cannot carry as U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Write a report to `path`, or to stdout when `None`.
pub fn write_report(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}\n"
        );
    }

    #[test]
    fn an_unknown_position_is_zero() {
        let v = error_json(&LoadError {
            loc: Location {
                file: "/x".into(),
                line: 0,
                col: 0,
            },
            item: None,
            msg: "cannot read".into(),
        });
        assert_eq!(
            v,
            json!({"file": "/x", "line": 0, "col": 0, "item": null, "message": "cannot read"})
        );
    }
}
