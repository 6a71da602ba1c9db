//! Each alert encoded once: [`Encoded`] wraps an alert on its way to the
//! sinks and renders its JSON line and its text line the first time a sink
//! asks, then hands the same bytes to every other sink (the queues carry
//! `Arc<Encoded>`, so "the same" is one allocation, not a copy). Sinks that
//! need other shapes (syslog headers, mail bodies) read the typed fields
//! through `Deref<Target = Alert>`.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Deserialize;
use vigil_engine::Alert;

/// Line format of the stdout and file sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One Falco-compatible JSON object a line.
    #[default]
    Json,
    /// `<time> <Priority>: <output> [rule: <rule>]`.
    Text,
}

/// An alert with its encodings, computed at most once each.
#[derive(Debug)]
pub struct Encoded {
    alert: Arc<Alert>,
    json: OnceLock<Bytes>,
    text: OnceLock<String>,
}

impl Encoded {
    pub fn new(alert: Arc<Alert>) -> Arc<Encoded> {
        Arc::new(Encoded {
            alert,
            json: OnceLock::new(),
            text: OnceLock::new(),
        })
    }

    /// The Falco-compatible JSON object, one line, no newline, as shared
    /// bytes (a clone is a reference count, e.g. for an HTTP body).
    pub fn json_bytes(&self) -> &Bytes {
        self.json
            .get_or_init(|| Bytes::from(self.alert.to_json_line()))
    }

    /// [`Encoded::json_bytes`] as text.
    pub fn json(&self) -> &str {
        // Built from a String: always UTF-8.
        std::str::from_utf8(self.json_bytes()).unwrap_or_default()
    }

    /// The text line, no newline.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| self.alert.to_text_line())
    }

    /// The line of `format`, no newline.
    pub fn line(&self, format: Format) -> &str {
        match format {
            Format::Json => self.json(),
            Format::Text => self.text(),
        }
    }

    /// Appends the line of `format` and a newline to `out`.
    pub fn push_line(&self, format: Format, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line(format).as_bytes());
        out.push(b'\n');
    }
}

impl Deref for Encoded {
    type Target = Alert;
    fn deref(&self) -> &Alert {
        &self.alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::Priority;

    #[test]
    fn encodes_once_and_shares_the_bytes() {
        let a = Encoded::new(Arc::new(Alert {
            time: 0,
            rule: Arc::from("r"),
            priority: Priority::Warning,
            output: "out".into(),
            output_fields: serde_json::Map::new(),
            tags: Arc::from(Vec::<String>::new()),
            source: "syscall",
            hostname: Arc::from("h"),
        }));
        let p = a.json().as_ptr();
        assert_eq!(
            a.line(Format::Json).as_ptr(),
            p,
            "second reader gets the same bytes"
        );
        assert_eq!(a.json(), a.alert.to_json_line());
        assert!(a.text().ends_with("out [rule: r]"), "{}", a.text());
        let mut buf = Vec::new();
        a.push_line(Format::Text, &mut buf);
        assert_eq!(buf.last(), Some(&b'\n'));
    }
}
