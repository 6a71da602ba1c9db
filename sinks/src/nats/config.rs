//! `outputs.nats`: the subject template, stream creation, in-flight bound.

use std::time::Duration;

use serde::Deserialize;
use vigil_engine::{Alert, Priority};

use crate::de::{de_duration, de_opt_priority, de_queue_size, de_str_with, default_queue_size};
use crate::delivery::RetryConfig;

/// The default subject template.
pub const DEFAULT_SUBJECT: &str = "vigil.alerts.{hostname}.{priority}";
/// Placeholders a subject template may use.
const PLACEHOLDERS: [&str; 4] = ["hostname", "priority", "rule", "source"];

/// `outputs.nats`. `nats: {}` is valid: every key has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsOutputConfig {
    /// Subject template; `{hostname}`, `{priority}` (lowercase), `{rule}`
    /// and `{source}` are replaced, characters other than letters, digits,
    /// `-` and `_` in the values becoming `_` (a `.` would split the token).
    #[serde(default = "default_subject", deserialize_with = "de_subject")]
    pub subject: SubjectTemplate,
    /// Create this stream at connect when it does not exist.
    #[serde(default)]
    pub create_stream: Option<CreateStreamConfig>,
    /// Alerts published before their acks are awaited (one batch).
    #[serde(default = "default_max_in_flight", deserialize_with = "de_queue_size")]
    pub max_in_flight: usize,
    /// How long one publish waits for its ack.
    #[serde(default = "default_ack_timeout", deserialize_with = "de_duration")]
    pub ack_timeout: Duration,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// `outputs.nats.create_stream`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStreamConfig {
    #[serde(default = "default_stream_name", deserialize_with = "de_stream_name")]
    pub name: String,
    /// Subjects the stream captures; default: the template's literal prefix
    /// followed by `>` (`vigil.alerts.>`).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// 1 (single server) to 5; a cluster of at least this many servers.
    #[serde(default = "default_replicas", deserialize_with = "de_replicas")]
    pub replicas: usize,
    /// Messages older than this are removed; `0s` keeps them (until limits).
    #[serde(default, deserialize_with = "de_duration")]
    pub max_age: Duration,
    /// Window in which a repeated `Nats-Msg-Id` is recognised.
    #[serde(default = "default_duplicate_window", deserialize_with = "de_duration")]
    pub duplicate_window: Duration,
}

fn default_subject() -> SubjectTemplate {
    SubjectTemplate::parse(DEFAULT_SUBJECT).unwrap_or_else(|_| unreachable!("default subject"))
}
fn default_max_in_flight() -> usize {
    256
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_stream_name() -> String {
    "VIGIL_ALERTS".into()
}
fn default_replicas() -> usize {
    1
}
fn default_duplicate_window() -> Duration {
    Duration::from_secs(120)
}

fn de_subject<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SubjectTemplate, D::Error> {
    de_str_with(d, "a subject template", SubjectTemplate::parse)
}

fn de_stream_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "a stream name", |s| {
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "`{s}`: a stream name is letters, digits, `_` and `-`"
            ));
        }
        Ok(s.to_string())
    })
}

fn de_replicas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)?;
    if !(1..=5).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "{n} is out of range (1 to 5)"
        )));
    }
    Ok(n as usize)
}

/// One piece of a subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(&'static str),
}

/// A parsed subject template (see [`NatsOutputConfig::subject`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    text: String,
    parts: Vec<Part>,
}

impl SubjectTemplate {
    /// Parses and checks a template: known placeholders, no wildcards, no
    /// whitespace, no empty token.
    pub fn parse(s: &str) -> Result<SubjectTemplate, String> {
        if s.is_empty() {
            return Err("empty subject".into());
        }
        if s.split('.').any(str::is_empty) {
            return Err(format!(
                "`{s}`: empty token (leading, trailing or double `.`)"
            ));
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{s}`: unclosed `{{`"))?;
            let name = &rest[open + 1..open + close];
            let var = PLACEHOLDERS.iter().find(|p| **p == name).ok_or_else(|| {
                format!(
                    "`{s}`: unknown placeholder `{{{name}}}` (expected one of {})",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            parts.push(Part::Var(var));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        for p in &parts {
            if let Part::Lit(l) = p {
                if let Some(c) = l
                    .chars()
                    .find(|c| c.is_whitespace() || matches!(c, '*' | '>' | '}'))
                {
                    return Err(format!("`{s}`: `{c}` is not allowed in a subject"));
                }
            }
        }
        Ok(SubjectTemplate {
            text: s.to_string(),
            parts,
        })
    }

    /// The subject of one alert.
    pub fn render(&self, a: &Alert) -> String {
        let mut out = String::with_capacity(self.text.len() + 32);
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Var(v) => {
                    let value = match *v {
                        "hostname" => a.hostname.to_string(),
                        "priority" => a.priority.falco_name().to_ascii_lowercase(),
                        "rule" => a.rule.to_string(),
                        _ => a.source.to_string(),
                    };
                    push_token(&mut out, &value);
                }
            }
        }
        out
    }

    /// Subjects a stream must capture for every rendered subject: the
    /// literal tokens before the first placeholder, then `>`.
    pub fn capture_subject(&self) -> String {
        let mut prefix = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => prefix.push_str(l),
                Part::Var(_) => break,
            }
        }
        if self.parts.iter().all(|p| matches!(p, Part::Lit(_))) {
            return self.text.clone();
        }
        // Whole literal tokens only: `a.b{x}` is captured by `a.>`.
        let whole = prefix.rfind('.').map_or("", |i| &prefix[..=i]);
        format!("{whole}>")
    }
}

/// A placeholder's value as one subject token.
fn push_token(out: &mut String, v: &str) {
    if v.is_empty() {
        out.push('_');
        return;
    }
    out.extend(v.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Arc;

    pub(in crate::nats) fn alert(host: &str, rule: &str, p: Priority) -> Alert {
        Alert {
            time: 1,
            rule: Arc::from(rule),
            priority: p,
            output: "o".into(),
            output_fields: serde_json::Map::new(),
            tags: Arc::from(Vec::<String>::new()),
            source: "syscall",
            hostname: Arc::from(host),
        }
    }

    fn cfg(y: &str) -> Result<NatsOutputConfig, String> {
        serde_yaml_ng::from_str(y).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_block_takes_the_defaults() {
        let c = cfg("{}").unwrap();
        assert_eq!(c.subject.text, DEFAULT_SUBJECT);
        assert_eq!(c.create_stream, None);
        assert_eq!(c.max_in_flight, 256);
        assert_eq!(c.queue_size, default_queue_size());
        let s = cfg("create_stream: {}").unwrap().create_stream.unwrap();
        assert_eq!((s.name.as_str(), s.replicas), ("VIGIL_ALERTS", 1));
        assert_eq!(s.duplicate_window, Duration::from_secs(120));
    }

    #[test]
    fn subjects_render_one_token_per_value() {
        let t = SubjectTemplate::parse(DEFAULT_SUBJECT).unwrap();
        let a = alert("web-01.example.com", "r", Priority::Critical);
        assert_eq!(t.render(&a), "vigil.alerts.web-01_example_com.critical");
        let t = SubjectTemplate::parse("sec.{source}.{rule}").unwrap();
        let a = alert("h", "Shell in container > bad*", Priority::Info);
        assert_eq!(t.render(&a), "sec.syscall.Shell_in_container___bad_");
        assert_eq!(t.capture_subject(), "sec.>");
        assert_eq!(
            SubjectTemplate::parse(DEFAULT_SUBJECT)
                .unwrap()
                .capture_subject(),
            "vigil.alerts.>"
        );
        assert_eq!(
            SubjectTemplate::parse("alerts").unwrap().capture_subject(),
            "alerts"
        );
        assert_eq!(
            SubjectTemplate::parse("{hostname}.alerts")
                .unwrap()
                .capture_subject(),
            ">"
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = cfg("subject: \"vigil.{host}\"").unwrap_err();
        assert!(
            e.starts_with("subject: ") && e.contains("{host}") && e.contains("{hostname}"),
            "{e}"
        );
        let e = cfg("subject: \"vigil..x\"").unwrap_err();
        assert!(e.contains("empty token"), "{e}");
        let e = cfg("subject: \"vigil.*\"").unwrap_err();
        assert!(e.contains("`*`"), "{e}");
        let e = cfg("subject: \"vigil.{rule\"").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        let e = cfg("create_stream: { replicas: 7 }").unwrap_err();
        assert!(e.contains("create_stream") && e.contains("1 to 5"), "{e}");
        let e = cfg("create_stream: { name: \"a.b\" }").unwrap_err();
        assert!(
            e.contains("create_stream") && e.contains("stream name"),
            "{e}"
        );
        let e = cfg("subjekt: x").unwrap_err();
        assert!(e.contains("subjekt"), "{e}");
    }
}
