//! The webhook sink: POSTs each alert's JSON object (one request per alert)
//! with `Content-Type: application/json`, the configured headers and, when the
//! secret env variable is set, `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of
//! the body>`. 2xx is delivered; connection errors, timeouts, 408, 429 and
//! 5xx are retried by the router with backoff; other statuses are permanent.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::config::WebhookConfig;
use crate::router::{Batch, BatchPolicy, Sink};
use crate::{DeliveryError, SinkError};

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

/// Installs rustls' ring provider as the process default (once; a provider
/// installed earlier by someone else is kept).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    key: Option<Vec<u8>>,
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
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
    install_crypto_provider();
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
    Ok((
        WebhookSink {
            client,
            url,
            headers,
            key,
        },
        BatchPolicy {
            window: std::time::Duration::ZERO,
            max: 1,
            count_rest: false,
        },
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

impl Sink for WebhookSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        for a in &batch.alerts {
            let body = a.to_json_line();
            let mut req = self
                .client
                .post(self.url.clone())
                .headers(self.headers.clone());
            if let Some(k) = &self.key {
                req = req.header(SIGNATURE_HEADER, signature(k, body.as_bytes()));
            }
            let resp = req
                .body(body)
                .send()
                .await
                .map_err(|e| DeliveryError::transient(chain(&e)))?;
            let st = resp.status();
            let body = read_some(resp).await;
            if st.is_success() {
                continue;
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
            return Err(DeliveryError::permanent(msg));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
