//! The NATS JetStream sink (`outputs.nats`): each alert is published to a
//! subject rendered from a template (default `vigil.alerts.{hostname}.{priority}`)
//! and acknowledged by the stream that captures it. Every alert gets a random
//! UUID, added to its JSON as `uuid` (the key falcosidekick uses) and sent as
//! `Nats-Msg-Id`, so a publish retried after a lost ack is stored once (the
//! stream's duplicate window, 2 minutes by default, must cover the retries).
//!
//! The router hands over what is queued (up to `max_in_flight` alerts); the
//! sink publishes them pipelined, in order, then waits for every ack. Any
//! failure fails the whole batch, which the router retries with the same ids:
//! alerts already stored are acknowledged as duplicates, so nothing is stored
//! twice and the stream keeps the queue's order. The client connects lazily
//! on the first alert and reconnects on its own; while the servers are
//! unreachable alerts wait in the sink's bounded queue, and an outage longer
//! than the queue is counted as drops and raises the loss alert like any sink.
//!
//! vigil creates no stream unless `create_stream` is set (then once per
//! connection, without changing an existing stream).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use serde::Deserialize;
use serde_json::Value as Json;
use vigil_engine::{Alert, Priority};

use crate::config::{de_duration, de_opt_priority, de_queue_size, de_str_with, RetryConfig};
use crate::nats_config::NatsConnection;
use crate::router::{Batch, BatchPolicy, Sink};
use crate::{DeliveryError, SinkError};

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
    #[serde(
        default = "crate::config::default_queue_size",
        deserialize_with = "de_queue_size"
    )]
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

/// A random (version 4) UUID, `8-4-4-4-12` lowercase hex.
pub fn uuid_v4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // getrandom failing is not expected; fall back to the process PRNG.
        b = fastrand::u128(..).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The alert's JSON object with `uuid` added, as one line.
pub fn payload(a: &Alert, uuid: &str) -> String {
    let mut j = a.to_json();
    if let Json::Object(m) = &mut j {
        m.insert("uuid".into(), Json::String(uuid.to_string()));
    }
    j.to_string()
}

pub(crate) struct NatsSink {
    conn: NatsConnection,
    client_name: String,
    subject: SubjectTemplate,
    create: Option<jetstream::stream::Config>,
    ack_timeout: Duration,
    js: Option<jetstream::Context>,
    stream_ready: bool,
    /// Ids of the batch last tried, by alert identity: a retried batch (the
    /// same `Arc`s) is published with the same ids.
    ids: Vec<(usize, String)>,
}

pub(crate) fn build(
    cfg: &NatsOutputConfig,
    conn: Option<&NatsConnection>,
    hostname: &str,
) -> Result<(NatsSink, BatchPolicy), SinkError> {
    let conn = conn.ok_or(SinkError::Config {
        sink: "nats",
        msg: "needs the top-level `nats:` block (servers, credentials, TLS)".into(),
    })?;
    let client_name = format!("vigil {hostname}");
    // Read the credentials and check the TLS files now: a mistake shows at start.
    conn.options(&client_name).map_err(SinkError::Nats)?;
    let create = cfg
        .create_stream
        .as_ref()
        .map(|c| jetstream::stream::Config {
            name: c.name.clone(),
            subjects: if c.subjects.is_empty() {
                vec![cfg.subject.capture_subject()]
            } else {
                c.subjects.clone()
            },
            num_replicas: c.replicas,
            max_age: c.max_age,
            duplicate_window: c.duplicate_window,
            ..Default::default()
        });
    let policy = BatchPolicy {
        window: Duration::ZERO,
        max: cfg.max_in_flight,
        count_rest: false,
        lead_alone: false,
    };
    Ok((
        NatsSink {
            conn: conn.clone(),
            client_name,
            subject: cfg.subject.clone(),
            create,
            ack_timeout: cfg.ack_timeout,
            js: None,
            stream_ready: false,
            ids: Vec::new(),
        },
        policy,
    ))
}

fn publish_error(subject: &str, e: &jetstream::context::PublishError) -> DeliveryError {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => {
            DeliveryError::permanent(format!("{subject}: {e}"))
        }
        PublishErrorKind::StreamNotFound => DeliveryError::transient(format!(
            "{subject}: no JetStream stream captures this subject (create one, or set outputs.nats.create_stream)"
        )),
        _ => DeliveryError::transient(format!("{subject}: {e}")),
    }
}

impl NatsSink {
    async fn context(&mut self) -> Result<jetstream::Context, DeliveryError> {
        if self.js.is_none() {
            let client = self
                .conn
                .connect(&self.client_name)
                .await
                .map_err(|e| DeliveryError::transient(e.to_string()))?;
            let js = jetstream::ContextBuilder::new()
                .timeout(self.ack_timeout)
                .build(client);
            self.js = Some(js);
        }
        let js = self
            .js
            .clone()
            .ok_or_else(|| DeliveryError::transient("not connected"))?;
        if let (Some(cfg), false) = (&self.create, self.stream_ready) {
            js.get_or_create_stream(cfg.clone()).await.map_err(|e| {
                DeliveryError::transient(format!("create_stream {}: {e}", cfg.name))
            })?;
            tracing::info!(stream = %cfg.name, subjects = ?cfg.subjects, replicas = cfg.num_replicas, "nats: stream ready");
            self.stream_ready = true;
        }
        Ok(js)
    }

    /// The ids of this batch: the previous ones when it is a retry.
    fn assign_ids(&mut self, batch: &Batch) {
        let same = self.ids.len() == batch.alerts.len()
            && self
                .ids
                .iter()
                .zip(&batch.alerts)
                .all(|((p, _), a)| *p == Arc::as_ptr(a) as usize);
        if !same {
            self.ids = batch
                .alerts
                .iter()
                .map(|a| (Arc::as_ptr(a) as usize, uuid_v4()))
                .collect();
        }
    }
}

impl Sink for NatsSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.alerts.is_empty() {
            return Ok(());
        }
        let js = self.context().await?;
        self.assign_ids(batch);
        let mut acks = Vec::with_capacity(batch.alerts.len());
        let mut failed = None;
        for (a, (_, id)) in batch.alerts.iter().zip(&self.ids) {
            let subject = self.subject.render(a);
            let msg = PublishMessage::build()
                .payload(payload(a, id).into())
                .message_id(id);
            match js.send_publish(subject.clone(), msg).await {
                Ok(ack) => acks.push((subject, ack)),
                Err(e) => {
                    failed = Some(publish_error(&subject, &e));
                    break;
                }
            }
        }
        // Wait for every ack sent, even after a failure: the next attempt
        // must not overtake publishes still in flight. All at once: each
        // ack's timeout starts when it is awaited, so one after the other a
        // dead server would cost `ack_timeout` per alert.
        let results = futures_util::future::join_all(
            acks.into_iter()
                .map(|(subject, ack)| async move { (subject, ack.await) }),
        )
        .await;
        let mut dups = 0u64;
        for (subject, r) in results {
            match r {
                Ok(a) => dups += u64::from(a.duplicate),
                Err(e) => {
                    if failed.is_none() {
                        failed = Some(publish_error(&subject, &e));
                    }
                }
            }
        }
        if dups > 0 {
            tracing::debug!(
                duplicates = dups,
                "nats: retried alerts were already stored"
            );
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(host: &str, rule: &str, p: Priority) -> Alert {
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
        assert_eq!(c.queue_size, crate::config::default_queue_size());
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

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }

    #[test]
    fn payload_is_the_alert_json_plus_uuid() {
        let a = alert("h", "r", Priority::Warning);
        let v: Json = serde_json::from_str(&payload(&a, "u-1")).unwrap();
        assert_eq!(v["uuid"], "u-1");
        assert_eq!(v["rule"], "r");
        let mut plain = v.clone();
        plain.as_object_mut().unwrap().remove("uuid");
        assert_eq!(plain, a.to_json());
    }

    #[tokio::test]
    async fn a_retried_batch_keeps_its_ids() {
        let conn = NatsConnection::plain(vec!["nats://127.0.0.1:1".into()]);
        let (mut s, _) = build(&cfg("{}").unwrap(), Some(&conn), "h").unwrap();
        let mk = || Arc::new(alert("h", "r", Priority::Info));
        let batch = Batch {
            alerts: vec![mk(), mk()],
            ..Batch::default()
        };
        s.assign_ids(&batch);
        let first: Vec<String> = s.ids.iter().map(|(_, i)| i.clone()).collect();
        s.assign_ids(&batch);
        assert_eq!(
            first,
            s.ids.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>()
        );
        assert_ne!(first[0], first[1]);
        let other = Batch {
            alerts: vec![mk(), mk()],
            ..Batch::default()
        };
        s.assign_ids(&other);
        assert_ne!(first[0], s.ids[0].1);
        let e = build(&cfg("{}").unwrap(), None, "h")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("top-level `nats:` block"), "{e}");
    }
}
