//! Serde types of the `outputs:` section of vigil's config file: one optional
//! block per sink, shared queue/retry settings, and the dedup section. Every
//! struct denies unknown keys; values are checked while deserializing so the
//! error names the key (and serde_yaml_ng adds the line and column).
//! `sinks/CONFIG.md` documents every key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use vigil_engine::Priority;

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
    pub nats: Option<crate::nats::NatsOutputConfig>,
    /// The top-level `nats:` block, copied here by the daemon's config loader
    /// (not a key of `outputs:`); a change restarts the outputs like any other.
    #[serde(skip)]
    pub nats_connection: Option<crate::nats_config::NatsConnection>,
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

/// Alert rendering for stdout and file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One Falco-compatible JSON object a line.
    #[default]
    Json,
    /// `<time> <Priority>: <output>`.
    Text,
}

/// Retry policy of a sink (exponential backoff with jitter).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per alert (or digest) before it is given up and counted as
    /// abandoned; `0` = keep retrying while the alert is queued (until shutdown).
    #[serde(default)]
    pub max_attempts: u32,
    /// First backoff; doubled each failed attempt up to `max_backoff`.
    #[serde(default = "default_initial_backoff", deserialize_with = "de_duration")]
    pub initial_backoff: Duration,
    #[serde(default = "default_max_backoff", deserialize_with = "de_duration")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 0,
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    #[serde(default)]
    pub format: Format,
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
}

impl Default for StdoutConfig {
    fn default() -> Self {
        StdoutConfig {
            format: Format::Json,
            min_priority: None,
            queue_size: default_queue_size(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Appended to; parent directories are created; reopened on SIGHUP.
    pub path: PathBuf,
    #[serde(default)]
    pub format: Format,
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// A unix datagram socket (`unix:///dev/log`).
    Unix(PathBuf),
    /// `udp://host:port`
    Udp(String),
    /// `tcp://host:port` (RFC 6587 framing)
    Tcp(String),
    /// `tls://host:port` (RFC 5425: TLS, octet counting)
    Tls(String),
}

impl SyslogAddress {
    /// The host part of a udp/tcp/tls address (brackets of an IPv6 literal removed).
    pub fn host(&self) -> Option<&str> {
        match self {
            SyslogAddress::Unix(_) => None,
            SyslogAddress::Udp(a) | SyslogAddress::Tcp(a) | SyslogAddress::Tls(a) => {
                let h = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
                Some(h.trim_start_matches('[').trim_end_matches(']'))
            }
        }
    }
}

impl std::str::FromStr for SyslogAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!("`{s}`: expected unix:///path, udp://host:port or tcp://host:port")
        })?;
        let host_port = |rest: &str| -> Result<String, String> {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}`: missing port"))?;
            if host.is_empty() {
                return Err(format!("`{s}`: missing host"));
            }
            port.parse::<u16>()
                .map_err(|_| format!("`{s}`: bad port `{port}`"))?;
            Ok(rest.to_string())
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogAddress::Unix(PathBuf::from(rest))),
            "unix" => Err(format!("`{s}`: unix socket path must be absolute")),
            "udp" => host_port(rest).map(SyslogAddress::Udp),
            "tcp" => host_port(rest).map(SyslogAddress::Tcp),
            "tls" => host_port(rest).map(SyslogAddress::Tls),
            other => Err(format!(
                "`{s}`: unknown scheme `{other}` (expected unix, udp, tcp or tls)"
            )),
        }
    }
}

impl fmt::Display for SyslogAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogAddress::Unix(p) => write!(f, "unix://{}", p.display()),
            SyslogAddress::Udp(a) => write!(f, "udp://{a}"),
            SyslogAddress::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogAddress::Tls(a) => write!(f, "tls://{a}"),
        }
    }
}

impl<'de> Deserialize<'de> for SyslogAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str_with(d, "unix:///path, udp://host:port or tcp://host:port", |s| {
            s.parse()
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// What goes in the syslog MSG part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogPayload {
    /// The rendered rule output.
    #[default]
    Text,
    /// The alert's JSON object.
    Json,
}

/// TCP framing (RFC 6587).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpFraming {
    /// `<length> <message>` (RFC 6587 3.4.1); what RFC 5425 mandates.
    #[default]
    OctetCounting,
    /// Message followed by LF (legacy receivers).
    NonTransparent,
}

/// Syslog facility (RFC 5424 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Facility {
    pub const NAMES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
}

impl Default for Facility {
    fn default() -> Self {
        Facility(10) // authpriv: security alerts, like sshd/sudo
    }
}

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str_with(d, "a syslog facility name", |s| {
            let l = s.to_ascii_lowercase();
            let l = match l.as_str() {
                "security" => "auth",
                other => other,
            };
            Facility::NAMES
                .iter()
                .position(|n| *n == l)
                .map(|i| Facility(i as u8))
                .ok_or_else(|| {
                    format!(
                        "unknown facility `{s}` (expected one of {})",
                        Facility::NAMES.join(", ")
                    )
                })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    #[serde(default = "default_syslog_address")]
    pub address: SyslogAddress,
    #[serde(default)]
    pub format: SyslogFormat,
    #[serde(default)]
    pub facility: Facility,
    #[serde(default)]
    pub payload: SyslogPayload,
    #[serde(default)]
    pub framing: TcpFraming,
    /// APP-NAME / TAG.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Messages longer than this (bytes) are truncated at a character boundary.
    #[serde(
        default = "default_max_message_size",
        deserialize_with = "de_queue_size"
    )]
    pub max_message_size: usize,
    /// Connect and write timeout.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `tls://` only: PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the alert JSON is POSTed to.
    #[serde(deserialize_with = "de_http_url")]
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Name of the environment variable holding the HMAC-SHA256 key; when set,
    /// requests carry `X-Vigil-Signature: sha256=<hex>`. The variable must exist.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Whole-request timeout.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Several alerts per request. Absent: one alert object per request
    /// (falcosidekick-compatible).
    #[serde(default)]
    pub batch: Option<WebhookBatchConfig>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Largest `webhook.batch.max_alerts`.
pub const WEBHOOK_MAX_BATCH: usize = 10_000;

/// `webhook.batch`: alerts are collected and POSTed together. A batch is
/// sent when it holds `max_alerts` alerts or `max_wait` after its first
/// alert, whichever comes first; it is delivered (and retried) whole.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBatchConfig {
    /// Alerts per request at most (1 to [`WEBHOOK_MAX_BATCH`]).
    #[serde(
        default = "default_batch_max_alerts",
        deserialize_with = "de_batch_max_alerts"
    )]
    pub max_alerts: usize,
    /// How long a batch waits for more alerts after its first one. `0s`:
    /// no waiting, a request carries what is queued at that moment.
    #[serde(default = "default_batch_max_wait", deserialize_with = "de_duration")]
    pub max_wait: Duration,
    /// Body layout.
    #[serde(default)]
    pub format: WebhookBatchFormat,
}

impl Default for WebhookBatchConfig {
    fn default() -> Self {
        WebhookBatchConfig {
            max_alerts: default_batch_max_alerts(),
            max_wait: default_batch_max_wait(),
            format: WebhookBatchFormat::default(),
        }
    }
}

/// Body of a batched webhook request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookBatchFormat {
    /// One JSON array of alert objects (`Content-Type: application/json`).
    #[default]
    Array,
    /// One alert JSON object per line, each line ending in `\n`
    /// (`Content-Type: application/x-ndjson`).
    Ndjson,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a local relay).
    None,
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host[:port]` (port defaults: 25 for none, 587 for starttls, 465 for tls).
    #[serde(deserialize_with = "de_smtp_url")]
    pub smtp: String,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(deserialize_with = "de_mailbox")]
    pub from: String,
    #[serde(deserialize_with = "de_mailboxes")]
    pub to: Vec<String>,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Allow `username_env`/`password_env` with `tls: none` to a relay that
    /// is not on loopback (the password then crosses the network in
    /// cleartext). Off by default: such a config is refused at start.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// Alerts arriving within this window after the first one go out as one
    /// digest mail. `0s` sends one mail per alert.
    #[serde(default = "default_digest_window", deserialize_with = "de_duration")]
    pub digest_window: Duration,
    /// Mail the first alert of a quiet period at once, before its digest
    /// window opens (default). `false`: digests only, every mail waits for
    /// its window.
    #[serde(default = "default_immediate_first")]
    pub immediate_first: bool,
    /// Alerts listed in full in one mail; the rest of a digest is summarised
    /// as counts per rule.
    #[serde(default = "default_max_listed", deserialize_with = "de_queue_size")]
    pub max_alerts_per_mail: usize,
    /// SMTP command timeout.
    #[serde(default = "default_smtp_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Deduplication: alerts of the same rule with the same values of `by`
/// within `window` are one alert. The first goes out at once; the rest are
/// counted and, when the window closes, one summary alert carrying
/// `vigil.count` (how many were suppressed) goes out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    #[serde(default = "default_dedup_window", deserialize_with = "de_duration")]
    pub window: Duration,
    /// Output fields forming the key together with the rule name.
    #[serde(default = "default_dedup_by")]
    pub by: Vec<String>,
    /// Keys tracked at once; alerts with new keys beyond it pass undeduplicated
    /// (counted), never dropped.
    #[serde(default = "default_max_keys", deserialize_with = "de_queue_size")]
    pub max_keys: usize,
    /// Per-rule overrides, by rule name. `window: 0s` disables dedup for it.
    #[serde(default)]
    pub rules: BTreeMap<String, DedupRuleConfig>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window: default_dedup_window(),
            by: default_dedup_by(),
            max_keys: default_max_keys(),
            rules: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupRuleConfig {
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub window: Option<Duration>,
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

fn default_loss_alert_interval() -> Duration {
    Duration::from_secs(60)
}
pub(crate) fn default_queue_size() -> usize {
    10_000
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_syslog_address() -> SyslogAddress {
    SyslogAddress::Unix(PathBuf::from("/dev/log"))
}
fn default_app_name() -> String {
    "vigil".to_string()
}
fn default_max_message_size() -> usize {
    8192
}
fn default_immediate_first() -> bool {
    true
}

fn default_digest_window() -> Duration {
    Duration::from_secs(60)
}
fn default_max_listed() -> usize {
    50
}
fn default_dedup_window() -> Duration {
    Duration::from_secs(60)
}
fn default_dedup_by() -> Vec<String> {
    vec![
        "proc.exe".to_string(),
        "proc.cmdline".to_string(),
        "container.id".to_string(),
    ]
}
fn default_max_keys() -> usize {
    10_000
}
fn default_batch_max_alerts() -> usize {
    100
}
fn default_batch_max_wait() -> Duration {
    Duration::from_secs(1)
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `1d`, a bare number of seconds, or a
/// combination such as `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{s}`: missing unit (ms, s, m, h, d)"))?;
        if num_end == 0 {
            return Err(format!("`{s}`: expected a number"));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("`{s}`: bad number"))?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = &after[..unit_end];
        let mult = match unit {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h, d)")),
        };
        let secs = n * mult;
        if !secs.is_finite() || secs > 1e9 {
            return Err(format!("`{s}`: out of range"));
        }
        total += Duration::from_secs_f64(secs);
        rest = &after[unit_end..];
    }
    Ok(total)
}

struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as 500ms, 5s, 2m or 1h")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// serde helper: a duration written as `5s` / `250ms` / seconds.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// A string value checked (and converted) by `f`; the error is raised inside
/// the visitor so serde_yaml_ng reports the key's full path and line.
struct StrVisitor<F>(F, &'static str);

impl<T, F: FnOnce(&str) -> Result<T, String>> de::Visitor<'_> for StrVisitor<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

pub(crate) fn de_str_with<'de, D, T>(
    d: D,
    what: &'static str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(StrVisitor(f, what))
}

pub(crate) fn de_opt_priority<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Priority>, D::Error> {
    de_str_with(d, "a priority name", |s| {
        s.parse::<Priority>().map(Some).map_err(|e| e.to_string())
    })
}

struct SizeVisitor;

impl de::Visitor<'_> for SizeVisitor {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a positive integer")
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
        if n == 0 || n > 100_000_000 {
            return Err(E::custom(format!("{n} is out of range (1 to 100000000)")));
        }
        Ok(n as usize)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
        if n < 0 {
            return Err(E::custom(format!("{n} is out of range (1 to 100000000)")));
        }
        self.visit_u64(n as u64)
    }
}

pub(crate) fn de_queue_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    d.deserialize_u64(SizeVisitor)
}

/// An integer in `1..=max`.
struct BoundedVisitor(u64);

impl de::Visitor<'_> for BoundedVisitor {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer from 1 to {}", self.0)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
        if n == 0 || n > self.0 {
            return Err(E::custom(format!("{n} is out of range (1 to {})", self.0)));
        }
        usize::try_from(n).map_err(|_| E::custom(format!("{n} is out of range (1 to {})", self.0)))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
        if n < 0 {
            return Err(E::custom(format!("{n} is out of range (1 to {})", self.0)));
        }
        self.visit_u64(n as u64)
    }
}

fn de_batch_max_alerts<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    d.deserialize_u64(BoundedVisitor(WEBHOOK_MAX_BATCH as u64))
}

fn de_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "an http(s) URL", |s| {
        let u = reqwest::Url::parse(s).map_err(|e| format!("`{s}`: {e}"))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!("`{s}`: scheme must be http or https"));
        }
        if u.host_str().is_none() {
            return Err(format!("`{s}`: missing host"));
        }
        Ok(s.to_string())
    })
}

/// `smtp://host[:port]` -> (host, optional port).
pub fn parse_smtp_url(s: &str) -> Result<(String, Option<u16>), String> {
    let rest = s
        .strip_prefix("smtp://")
        .or_else(|| s.strip_prefix("smtps://"))
        .ok_or_else(|| format!("`{s}`: expected smtp://host[:port]"))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(format!("`{s}`: expected smtp://host[:port]"));
    }
    // [v6]:port, host:port, host
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("`{s}`: expected smtp://host[:port]")),
        };
        (h.to_string(), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("`{s}`: bad port `{p}`"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!("`{s}`: missing host"));
    }
    Ok((host, port))
}

/// True for `localhost` (and `*.localhost`) and loopback IP literals: a
/// relay on this host, where plaintext SMTP never leaves the machine. No
/// name is resolved.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn de_smtp_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "smtp://host[:port]", |s| {
        parse_smtp_url(s)?;
        Ok(s.to_string())
    })
}

fn check_mailbox(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| s.to_string())
        .map_err(|e| format!("`{s}`: not a mail address ({e})"))
}

fn de_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "a mail address", check_mailbox)
}

struct Mailbox(String);

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_mailbox(d).map(Mailbox)
    }
}

fn de_mailboxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<Mailbox>::deserialize(d)?;
    if v.is_empty() {
        return Err(de::Error::custom("to: needs at least one recipient"));
    }
    Ok(v.into_iter().map(|m| m.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<OutputsConfig, String> {
        serde_yaml_ng::from_str::<OutputsConfig>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10").is_ok());
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

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://mail.x:2525").unwrap(),
            ("mail.x".to_string(), Some(2525))
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:25").unwrap(),
            ("::1".to_string(), Some(25))
        );
        assert_eq!(parse_smtp_url("smtp://h").unwrap(), ("h".to_string(), None));
        assert!(parse_smtp_url("http://h").is_err());
        assert!(parse_smtp_url("smtp://h:x").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST.",
            "mail.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "mail.example.com",
            "10.0.0.1",
            "::2",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
