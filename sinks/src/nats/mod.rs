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

pub mod config;
pub mod connection;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};

use crate::delivery::{Batch, BatchPolicy, Sink};
use crate::encode::Encoded;
use crate::error::{DeliveryError, SinkError};
pub use config::{NatsOutputConfig, SubjectTemplate, DEFAULT_SUBJECT};
use connection::NatsConnection;

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

/// The alert's (shared) JSON object with `uuid` added last, as one line.
pub fn payload(a: &Encoded, uuid: &str) -> String {
    let json = a.json();
    match json.strip_suffix('}') {
        // A non-empty object: `{...,"uuid":"<uuid>"}` (a UUID needs no escaping).
        Some(head) if head.len() > 1 => format!("{head},\"uuid\":\"{uuid}\"}}"),
        _ => format!("{{\"uuid\":\"{uuid}\"}}"),
    }
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
    let policy = BatchPolicy::queued(cfg.max_in_flight);
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
    use config::tests::alert;
    use vigil_engine::Priority;

    fn cfg(y: &str) -> Result<NatsOutputConfig, String> {
        serde_yaml_ng::from_str(y).map_err(|e| e.to_string())
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
        let a = Encoded::new(Arc::new(a));
        let v: serde_json::Value = serde_json::from_str(&payload(&a, "u-1")).unwrap();
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
        let mk = || Encoded::new(Arc::new(alert("h", "r", Priority::Info)));
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
