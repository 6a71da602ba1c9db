//! The email sink (lettre, async SMTP over tokio; none / STARTTLS / TLS with
//! rustls). The first alert after a quiet `digest_window` is mailed at once
//! (unless `immediate_first: false`: digests only);
//! alerts arriving within `digest_window` after it are one digest mail, so
//! an alert storm sends a bounded number of mails (the router's
//! `BatchPolicy::lead_alone`; counted as immediate batches and digests); the
//! first `max_alerts_per_mail` are listed in full, the rest counted per rule.
//! Subject: `[vigil] <Priority> <rule> on <host>` (plus `(+N more alerts)`
//! for a digest, naming the most severe alert). Date, From, To and a
//! Message-ID are set on every mail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use vigil_engine::Priority;

use crate::config::{is_loopback_host, parse_smtp_url, EmailConfig, SmtpTls};
use crate::router::{Batch, BatchPolicy, Sink};
use crate::{DeliveryError, SinkError};

pub(crate) struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    hostname: Arc<str>,
}

fn env_var(var: &Option<String>, key: &'static str) -> Result<Option<String>, SinkError> {
    match var {
        None => Ok(None),
        Some(v) => match std::env::var(v) {
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(SinkError::MissingEnv {
                sink: "email",
                key,
                var: v.clone(),
            }),
        },
    }
}

pub(crate) fn build(
    cfg: &EmailConfig,
    hostname: &Arc<str>,
) -> Result<(EmailSink, BatchPolicy), SinkError> {
    let err = |msg: String| SinkError::Config { sink: "email", msg };
    let (host, port) = parse_smtp_url(&cfg.smtp).map_err(|e| err(format!("smtp: {e}")))?;
    crate::webhook::install_crypto_provider();
    let builder = match cfg.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| err(format!("tls: {e}")))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(|e| err(format!("tls: {e}")))?,
    };
    let port = port.unwrap_or(match cfg.tls {
        SmtpTls::None => 25,
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
    });
    let builder = match (&cfg.ca_file, cfg.tls) {
        (None, _) => builder,
        (Some(_), SmtpTls::None) => {
            return Err(err("ca_file needs tls: starttls or tls".into()));
        }
        (Some(p), mode) => {
            let mut tp = TlsParameters::builder(host.clone());
            for der in crate::tls::read_ca_file("email", p)? {
                let c = Certificate::from_der(der.to_vec())
                    .map_err(|e| err(format!("ca_file {}: {e}", p.display())))?;
                tp = tp.add_root_certificate(c);
            }
            let params = tp.build_rustls().map_err(|e| err(format!("tls: {e}")))?;
            builder.tls(match mode {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            })
        }
    };
    let mut builder = builder
        .port(port)
        .timeout(Some(cfg.timeout))
        .hello_name(ClientId::Domain(hello_name(hostname)));
    let user = env_var(&cfg.username_env, "username_env")?;
    let pass = env_var(&cfg.password_env, "password_env")?;
    match (user, pass) {
        (Some(u), Some(p)) => {
            plaintext_auth_allowed(cfg, &host).map_err(err)?;
            builder = builder.credentials(Credentials::new(u, p))
        }
        (None, None) => {}
        _ => {
            return Err(err(
                "username_env and password_env must be given together".into()
            ))
        }
    }
    let from: Mailbox = cfg.from.parse().map_err(|e| err(format!("from: {e}")))?;
    let to = cfg
        .to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>()
                .map_err(|e| err(format!("to: {t}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy = if cfg.digest_window.is_zero() {
        BatchPolicy {
            window: std::time::Duration::ZERO,
            max: 1,
            count_rest: false,
            lead_alone: false,
        }
    } else {
        BatchPolicy {
            window: cfg.digest_window,
            max: cfg.max_alerts_per_mail,
            count_rest: true,
            lead_alone: cfg.immediate_first,
        }
    };
    Ok((
        EmailSink {
            transport: builder.build(),
            from,
            to,
            hostname: hostname.clone(),
        },
        policy,
    ))
}

/// Credentials over `tls: none` cross the network in cleartext: refused
/// unless the relay is on loopback or `allow_plaintext_auth: true`.
fn plaintext_auth_allowed(cfg: &EmailConfig, host: &str) -> Result<(), String> {
    if cfg.tls != SmtpTls::None || cfg.allow_plaintext_auth || is_loopback_host(host) {
        return Ok(());
    }
    Err(format!(
        "tls: none with username_env/password_env would send the SMTP password in cleartext \
         to `{host}`; use tls: starttls or tls, a relay on loopback, or set \
         allow_plaintext_auth: true to accept the risk"
    ))
}

/// A host name usable in EHLO and Message-ID.
fn hello_name(h: &str) -> String {
    let s: String = h
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    if s.is_empty() {
        "localhost".into()
    } else {
        s
    }
}

/// The subject line of a mail carrying `batch`.
pub(crate) fn subject(batch: &Batch, hostname: &str) -> String {
    let top = batch
        .alerts
        .iter()
        .min_by_key(|a| a.priority)
        .map(|a| (a.priority, a.rule.to_string()));
    let top_omitted = batch
        .omitted
        .iter()
        .min_by_key(|(_, (_, p))| *p)
        .map(|(r, (_, p))| (*p, r.to_string()));
    let (p, rule) = match (top, top_omitted) {
        (Some(a), Some(b)) if b.0 < a.0 => b,
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => (Priority::Info, String::from("(none)")),
    };
    let host = batch
        .alerts
        .first()
        .map(|a| a.hostname.to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| hostname.to_string());
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut s = format!(
        "[vigil] {} {} on {}",
        p.falco_name(),
        clean(&rule),
        clean(&host)
    );
    if batch.len() > 1 {
        let _ = write!(s, " (+{} more alerts)", batch.len() - 1);
    }
    s
}

/// The plain-text body.
pub(crate) fn body(batch: &Batch, hostname: &str) -> String {
    let mut b = String::new();
    let n = batch.len();
    if n == 1 {
        let _ = writeln!(b, "vigil raised an alert on {hostname}.\n");
    } else {
        let first = batch.alerts.first().map(|a| a.time_rfc3339());
        let last = batch.alerts.last().map(|a| a.time_rfc3339());
        let _ = writeln!(
            b,
            "vigil raised {n} alerts on {hostname} (listed from {} to {}).\n",
            first.unwrap_or_default(),
            last.unwrap_or_default()
        );
        let mut counts: BTreeMap<&str, (u64, Priority)> = BTreeMap::new();
        for a in &batch.alerts {
            let e = counts.entry(&a.rule).or_insert((0, a.priority));
            e.0 += 1;
            e.1 = e.1.min(a.priority);
        }
        for (r, (c, p)) in &batch.omitted {
            let e = counts.entry(r).or_insert((0, *p));
            e.0 += c;
            e.1 = e.1.min(*p);
        }
        let mut rows: Vec<_> = counts.into_iter().collect();
        rows.sort_by_key(|(r, (c, p))| (*p, std::cmp::Reverse(*c), *r));
        let _ = writeln!(b, "Alerts by rule:");
        for (r, (c, p)) in rows {
            let _ = writeln!(b, "  {c:>6}  {:<13}  {r}", p.falco_name());
        }
        b.push('\n');
    }
    for (i, a) in batch.alerts.iter().enumerate() {
        if n > 1 {
            let _ = writeln!(b, "--- alert {} of {n} ---", i + 1);
        }
        let _ = writeln!(b, "Time:     {}", a.time_rfc3339());
        let _ = writeln!(b, "Rule:     {}", a.rule);
        let _ = writeln!(b, "Priority: {}", a.priority.falco_name());
        let _ = writeln!(b, "Host:     {}", a.hostname);
        let _ = writeln!(b, "Output:   {}", a.output);
        if !a.tags.is_empty() {
            let _ = writeln!(b, "Tags:     {}", a.tags.join(", "));
        }
        if !a.output_fields.is_empty() {
            let _ = writeln!(b, "Fields:");
            for (k, v) in &a.output_fields {
                match v {
                    serde_json::Value::String(s) => {
                        let _ = writeln!(b, "  {k} = {s}");
                    }
                    v => {
                        let _ = writeln!(b, "  {k} = {v}");
                    }
                }
            }
        }
        b.push('\n');
    }
    if batch.omitted_total > 0 {
        let _ = writeln!(
            b,
            "{} more alerts in this digest are not listed (see the counts above).",
            batch.omitted_total
        );
    }
    b
}

impl EmailSink {
    fn message(&self, batch: &Batch) -> Result<Message, DeliveryError> {
        let host = hello_name(&self.hostname);
        let id = format!(
            "<{}.{:016x}@{host}>",
            batch.alerts.first().map(|a| a.time).unwrap_or(0),
            fastrand::u64(..)
        );
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject(batch, &self.hostname))
            .message_id(Some(id))
            .date_now()
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            m = m.to(t.clone());
        }
        m.body(body(batch, &self.hostname))
            .map_err(|e| DeliveryError::permanent(format!("building mail: {e}")))
    }
}

impl Sink for EmailSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        let msg = self.message(batch)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!("SMTP: {e}"))),
            Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}"))),
        }
    }
}
