//! The webhook sink: POSTs alert JSON with the configured headers and, when
//! the secret env variable is set, `X-Vigil-Signature: sha256=<hex
//! HMAC-SHA256 of the body>`.
//!
//! Without `batch` each request carries one alert object (`Content-Type:
//! application/json`, falcosidekick-compatible). With `batch` the router
//! collects up to `max_alerts` alerts (or what arrived within `max_wait` of
//! the first) and one request carries them all: a JSON array of alert
//! objects (`application/json`) or one object per line
//! (`application/x-ndjson`); the signature covers that whole body.
//!
//! 2xx is delivered; connection errors, timeouts, 408, 429 and 5xx are
//! retried by the router with backoff (a batch is retried whole, with the
//! same body); other statuses are permanent.

pub mod config;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::delivery::{Batch, BatchPolicy, Sink};
use crate::error::{DeliveryError, SinkError};
use config::{WebhookBatchFormat, WebhookConfig};

/// The signature header name.
pub const SIGNATURE_HEADER: &str = "x-vigil-signature";

/// `sha256=<lowercase hex HMAC-SHA256(key, body)>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, body);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `Content-Type` of an `ndjson` batch.
pub const NDJSON_CONTENT_TYPE: &str = "application/x-ndjson";

/// What one request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// One alert object per request.
    Single,
    /// All the batch's alerts in one request.
    Batch(WebhookBatchFormat),
}

pub(crate) struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    key: Option<Vec<u8>>,
    body: Body,
}

/// The request body of a batch: a JSON array of the alert objects, or one
/// object per line (every line ending in `\n`), in queue order. `jsons`
/// are the alerts' JSON lines.
pub fn batch_body<'a>(
    jsons: impl IntoIterator<Item = &'a str>,
    format: WebhookBatchFormat,
) -> String {
    let mut out = String::new();
    match format {
        WebhookBatchFormat::Array => {
            out.push('[');
            for (i, j) in jsons.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(j);
            }
            out.push(']');
        }
        WebhookBatchFormat::Ndjson => {
            for j in jsons {
                out.push_str(j);
                out.push('\n');
            }
        }
    }
    out
}

pub(crate) fn build(cfg: &WebhookConfig) -> Result<(WebhookSink, BatchPolicy), SinkError> {
    let err = |msg: String| SinkError::Config {
        sink: "webhook",
        msg,
    };
    let url = reqwest::Url::parse(&cfg.url).map_err(|e| err(format!("url: {e}")))?;
    let mut headers = HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| err(format!("headers: bad header name `{k}`: {e}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|e| err(format!("headers.{k}: bad header value: {e}")))?;
        headers.insert(name, value);
    }
    let (body, content_type) = match &cfg.batch {
        None => (Body::Single, "application/json"),
        Some(b) => (
            Body::Batch(b.format),
            match b.format {
                WebhookBatchFormat::Array => "application/json",
                WebhookBatchFormat::Ndjson => NDJSON_CONTENT_TYPE,
            },
        ),
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let key = match &cfg.secret_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v.into_bytes()),
            _ => {
                return Err(SinkError::MissingEnv {
                    sink: "webhook",
                    key: "secret_env",
                    var: var.clone(),
                })
            }
        },
    };
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder();
    if let Some(p) = &cfg.ca_file {
        for der in crate::tls::read_ca_file("webhook", p)? {
            let c = reqwest::Certificate::from_der(&der)
                .map_err(|e| err(format!("ca_file {}: {e}", p.display())))?;
            builder = builder.add_root_certificate(c);
        }
    }
    let client = builder
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        // A redirected POST turns into a GET: treat 3xx as an error instead.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| err(format!("HTTP client: {e}")))?;
    let policy = match &cfg.batch {
        None => BatchPolicy::queued(1),
        // count_rest false: a full batch goes out at once and the next
        // alerts start the next batch (none is only counted).
        Some(b) => BatchPolicy {
            window: b.max_wait,
            max: b.max_alerts,
            count_rest: false,
            lead_alone: false,
        },
    };
    Ok((
        WebhookSink {
            client,
            url,
            headers,
            key,
            body,
        },
        policy,
    ))
}

/// `e` and its sources, `: `-joined (reqwest's Display hides the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Reads up to 64 KiB of the response body (so the connection can be
/// reused) and returns it; errors end the read.
async fn read_some(mut resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < 64 * 1024 {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    body
}

impl WebhookSink {
    /// POSTs one body; Ok on 2xx.
    async fn post(&self, body: Bytes) -> Result<(), DeliveryError> {
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone());
        if let Some(k) = &self.key {
            req = req.header(SIGNATURE_HEADER, signature(k, &body));
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::transient(chain(&e)))?;
        let st = resp.status();
        let body = read_some(resp).await;
        if st.is_success() {
            return Ok(());
        }
        let mut msg = format!("{}: HTTP {st}", self.url);
        let snippet: String = String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if !snippet.trim().is_empty() {
            msg.push_str(": ");
            msg.push_str(snippet.trim());
        }
        if st.is_server_error() || st.as_u16() == 408 || st.as_u16() == 429 {
            return Err(DeliveryError::transient(msg));
        }
        Err(DeliveryError::permanent(msg))
    }
}

impl Sink for WebhookSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        match self.body {
            Body::Single => {
                for a in &batch.alerts {
                    self.post(a.json_bytes().clone()).await?;
                }
            }
            Body::Batch(format) => {
                if batch.alerts.is_empty() {
                    return Ok(());
                }
                let body = batch_body(batch.alerts.iter().map(|a| a.json()), format);
                tracing::debug!(
                    alerts = batch.alerts.len(),
                    bytes = body.len(),
                    "posting webhook batch"
                );
                self.post(Bytes::from(body)).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoded;
    use std::sync::Arc;
    use std::time::Duration;
    use vigil_engine::{Alert, Priority};

    fn alert(i: i64) -> Alert {
        let mut f = serde_json::Map::new();
        f.insert("proc.pid".into(), serde_json::Value::from(i));
        Alert {
            time: 1_795_000_000_000_000_000 + i,
            rule: Arc::from("r"),
            priority: Priority::Warning,
            // A newline in a string must not split an ndjson line.
            output: format!("line one\nline two {i}"),
            output_fields: f,
            tags: Arc::from(vec!["t".to_string()]),
            source: "syscall",
            hostname: Arc::from("h"),
        }
    }

    fn cfg(yaml: &str) -> WebhookConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn array_body_is_one_json_array_in_order() {
        let alerts: Vec<Arc<Encoded>> = (0..3).map(|i| Encoded::new(Arc::new(alert(i)))).collect();
        let body = batch_body(alerts.iter().map(|a| a.json()), WebhookBatchFormat::Array);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 3);
        for (i, a) in arr.iter().enumerate() {
            assert_eq!(a["output_fields"]["proc.pid"], i as i64);
            assert_eq!(*a, alerts[i].to_json());
        }
        assert_eq!(batch_body([], WebhookBatchFormat::Array), "[]");
    }

    #[test]
    fn ndjson_body_is_one_object_per_line() {
        let alerts: Vec<Arc<Encoded>> = (0..3).map(|i| Encoded::new(Arc::new(alert(i)))).collect();
        let body = batch_body(alerts.iter().map(|a| a.json()), WebhookBatchFormat::Ndjson);
        assert!(body.ends_with('\n'));
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 3, "{body}");
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["output_fields"]["proc.pid"], i as i64);
        }
    }

    #[test]
    fn policy_and_content_type_follow_the_batch_block() {
        let (s, p) = build(&cfg("url: http://127.0.0.1:9/")).unwrap();
        assert_eq!((p.window, p.max, p.count_rest), (Duration::ZERO, 1, false));
        assert_eq!(s.body, Body::Single);
        assert_eq!(s.headers[CONTENT_TYPE], "application/json");

        let (s, p) = build(&cfg(
            "url: http://127.0.0.1:9/\nbatch: { max_alerts: 7, max_wait: 2s, format: ndjson }",
        ))
        .unwrap();
        assert_eq!(
            (p.window, p.max, p.count_rest),
            (Duration::from_secs(2), 7, false)
        );
        assert_eq!(s.body, Body::Batch(WebhookBatchFormat::Ndjson));
        assert_eq!(s.headers[CONTENT_TYPE], NDJSON_CONTENT_TYPE);

        // A user header cannot override the content type of the body.
        let (s, _) = build(&cfg(
            "url: http://127.0.0.1:9/\nheaders: { Content-Type: text/plain }\nbatch: {}",
        ))
        .unwrap();
        assert_eq!(s.body, Body::Batch(WebhookBatchFormat::Array));
        assert_eq!(s.headers[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
