//! The `outputs:` section of vigil's config file: one optional block per
//! sink, each sink's own config type (in its module), composed here with the
//! dedup block and the loss-alert interval. Every struct denies unknown
//! keys; values are checked while deserializing so the error names the key
//! (and serde_yaml_ng adds the line and column). `sinks/CONFIG.md`
//! documents every key. The per-sink types are re-exported here so the
//! daemon names them from one place.

use std::time::Duration;

use serde::Deserialize;

pub use crate::de::{de_duration, parse_duration};
pub use crate::dedup::config::{DedupConfig, DedupRuleConfig};
pub use crate::delivery::RetryConfig;
pub use crate::email::config::{is_loopback_host, parse_smtp_url, EmailConfig, SmtpTls};
pub use crate::encode::Format;
pub use crate::file::config::FileConfig;
pub use crate::nats::config::NatsOutputConfig;
pub use crate::nats::connection::NatsConnection;
pub use crate::stdout::config::StdoutConfig;
pub use crate::syslog::config::{
    Facility, SyslogAddress, SyslogConfig, SyslogFormat, SyslogPayload, TcpFraming,
};
pub use crate::webhook::config::{
    WebhookBatchConfig, WebhookBatchFormat, WebhookConfig, WEBHOOK_MAX_BATCH,
};

/// The `outputs:` section. A sink is enabled by the presence of its block.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    pub stdout: Option<StdoutConfig>,
    pub file: Option<FileConfig>,
    pub syslog: Option<SyslogConfig>,
    pub webhook: Option<WebhookConfig>,
    pub email: Option<EmailConfig>,
    /// JetStream publish; connects through the config's top-level `nats:` block.
    pub nats: Option<NatsOutputConfig>,
    /// The top-level `nats:` block, copied here by the daemon's config loader
    /// (not a key of `outputs:`); a change restarts the outputs like any other.
    #[serde(skip)]
    pub nats_connection: Option<NatsConnection>,
    /// Deduplication / rate limiting applied before the fan-out.
    pub dedup: Option<DedupConfig>,
    /// Interval of the "vigil alerts dropped" self-alert raised when any sink
    /// dropped alerts (queue overflow or given up). `0s` turns it off.
    #[serde(
        default = "default_loss_alert_interval",
        deserialize_with = "de_duration"
    )]
    pub loss_alert_interval: Duration,
}

impl OutputsConfig {
    /// True when no sink is configured.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_none()
            && self.file.is_none()
            && self.syslog.is_none()
            && self.webhook.is_none()
            && self.email.is_none()
            && self.nats.is_none()
    }

    /// The config used when none is given: JSON alerts on stdout.
    pub fn stdout_only(format: Format) -> OutputsConfig {
        OutputsConfig {
            stdout: Some(StdoutConfig {
                format,
                ..StdoutConfig::default()
            }),
            loss_alert_interval: default_loss_alert_interval(),
            ..OutputsConfig::default()
        }
    }
}

fn default_loss_alert_interval() -> Duration {
    Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vigil_engine::Priority;

    fn parse(y: &str) -> Result<OutputsConfig, String> {
        serde_yaml_ng::from_str::<OutputsConfig>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
stdout: { format: text, min_priority: warning }
file: { path: /tmp/x/alerts.jsonl }
syslog: { address: "tcp://127.0.0.1:6514", format: rfc3164, facility: local3 }
webhook: { url: "https://example.invalid/hook", headers: { X-A: b }, secret_env: S, retry: { max_attempts: 3, initial_backoff: 100ms } }
email: { smtp: "smtp://mail.example.invalid:587", from: "vigil <v@example.invalid>", to: [a@example.invalid], digest_window: 2m }
dedup: { window: 30s, by: [proc.name], rules: { "Noisy rule": { window: 0s } } }
"#,
        )
        .unwrap();
        assert_eq!(c.stdout.as_ref().unwrap().format, Format::Text);
        assert_eq!(
            c.stdout.as_ref().unwrap().min_priority,
            Some(Priority::Warning)
        );
        let s = c.syslog.unwrap();
        assert_eq!(s.address, SyslogAddress::Tcp("127.0.0.1:6514".into()));
        assert_eq!(s.facility, Facility(19));
        assert_eq!(s.format, SyslogFormat::Rfc3164);
        let w = c.webhook.unwrap();
        assert_eq!(w.retry.max_attempts, 3);
        assert_eq!(w.retry.initial_backoff, Duration::from_millis(100));
        assert_eq!(w.retry.max_backoff, Duration::from_secs(30));
        assert_eq!(w.headers["X-A"], "b");
        let e = c.email.unwrap();
        assert_eq!(e.digest_window, Duration::from_secs(120));
        assert_eq!(e.tls, SmtpTls::Starttls);
        let d = c.dedup.unwrap();
        assert_eq!(d.rules["Noisy rule"].window, Some(Duration::ZERO));
        assert_eq!(d.by, vec!["proc.name".to_string()]);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = parse("stdout: { formt: json }").unwrap_err();
        assert!(e.contains("formt"), "{e}");
        let e = parse("stdout: {}\nsyslog:\n  address: \"ftp://x:1\"\n").unwrap_err();
        assert!(e.contains("ftp") && e.contains("line 3"), "{e}");
        let e = parse("webhook: { url: \"ftp://x\" }").unwrap_err();
        assert!(e.contains("scheme"), "{e}");
        let e = parse("file: { path: /x, queue_size: 0 }").unwrap_err();
        assert!(
            e.contains("queue_size") || e.contains("out of range"),
            "{e}"
        );
        let e = parse("stdout: { min_priority: loud }").unwrap_err();
        assert!(e.contains("loud"), "{e}");
        let e = parse("email: { smtp: \"smtp://h\", from: \"not an address\", to: [a@b.c] }")
            .unwrap_err();
        assert!(e.contains("not a mail address"), "{e}");
        let e = parse("email: { smtp: \"smtp://h\", from: a@b.c, to: [] }").unwrap_err();
        assert!(e.contains("recipient"), "{e}");
        let e = parse("dedup: { window: soon }").unwrap_err();
        assert!(e.contains("soon"), "{e}");
        let e = parse("syslog: { facility: kernel }").unwrap_err();
        assert!(e.contains("syslog.facility") && e.contains("kernel"), "{e}");
        let e =
            parse("email: { smtp: \"smtp://h\", from: a@b.c, to: [a@b.c, \"x y\"] }").unwrap_err();
        assert!(e.contains("email.to[1]"), "{e}");
        let e = parse("dedup:\n  window: 1x\n").unwrap_err();
        assert!(e.contains("dedup.window") && e.contains("line 2"), "{e}");
        let e = parse("retries: 3").unwrap_err();
        assert!(e.contains("retries"), "{e}");
    }

    #[test]
    fn webhook_batch_defaults_bounds_and_errors() {
        let w = parse("webhook: { url: \"http://h/\" }")
            .unwrap()
            .webhook
            .unwrap();
        assert_eq!(w.batch, None, "no batch block: one alert per request");
        let b = parse("webhook: { url: \"http://h/\", batch: {} }")
            .unwrap()
            .webhook
            .unwrap()
            .batch
            .unwrap();
        assert_eq!(b, WebhookBatchConfig::default());
        assert_eq!(b.max_alerts, 100);
        assert_eq!(b.max_wait, Duration::from_secs(1));
        assert_eq!(b.format, WebhookBatchFormat::Array);
        let b = parse(
            "webhook: { url: \"http://h/\", batch: { max_alerts: 10000, max_wait: 250ms, format: ndjson } }",
        )
        .unwrap()
        .webhook
        .unwrap()
        .batch
        .unwrap();
        assert_eq!(b.max_alerts, WEBHOOK_MAX_BATCH);
        assert_eq!(b.max_wait, Duration::from_millis(250));
        assert_eq!(b.format, WebhookBatchFormat::Ndjson);

        for bad in ["0", "10001", "-1"] {
            let e = parse(&format!(
                "webhook:\n  url: \"http://h/\"\n  batch:\n    max_alerts: {bad}\n"
            ))
            .unwrap_err();
            assert!(
                e.contains("webhook.batch.max_alerts") && e.contains("1 to 10000"),
                "{bad}: {e}"
            );
        }
        let e = parse("webhook: { url: \"http://h/\", batch: { max_alerts: lots } }").unwrap_err();
        assert!(e.contains("webhook.batch.max_alerts"), "{e}");
        let e = parse("webhook: { url: \"http://h/\", batch: { format: xml } }").unwrap_err();
        assert!(
            e.contains("webhook.batch.format") && e.contains("xml") && e.contains("ndjson"),
            "{e}"
        );
        let e = parse("webhook: { url: \"http://h/\", batch: { max_wait: soon } }").unwrap_err();
        assert!(
            e.contains("webhook.batch.max_wait") && e.contains("soon"),
            "{e}"
        );
        let e = parse("webhook: { url: \"http://h/\", batch: { size: 5 } }").unwrap_err();
        assert!(e.contains("size") && e.contains("max_alerts"), "{e}");
    }
}
