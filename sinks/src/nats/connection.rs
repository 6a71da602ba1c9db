//! The top-level `nats:` block of the config file: one NATS connection
//! definition (server list, credentials, TLS) shared by the `outputs.nats`
//! sink and the `nats-kv://` rules source. Credentials are read from an
//! environment variable or a file when a connection is prepared
//! ([`NatsConnection::options`]); they never appear in errors, logs or
//! `Debug` output (only the variable name or path does).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::de::de_duration;
pub use crate::error::NatsConfigError;

fn err(key: &'static str, msg: impl Into<String>) -> NatsConfigError {
    NatsConfigError {
        key,
        msg: msg.into(),
    }
}

/// Where a secret comes from: `{ env: VAR }` or `{ file: /path }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the vigil process (must be set, non-empty).
    Env(String),
    /// A file (its content, surrounding whitespace trimmed).
    File(PathBuf),
}

/// Accepts `{ env: VAR }` / `{ file: PATH }`; anything else is refused
/// without echoing the value (it may be a secret written in the clear).
struct SecretVisitor;

const SECRET_SHAPE: &str =
    "`{ env: VAR }` or `{ file: PATH }` (a secret is never written in the config)";

impl<'de> de::Visitor<'de> for SecretVisitor {
    type Value = SecretSource;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(SECRET_SHAPE)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretSource, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}")))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretSource, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}")))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretSource, E> {
        Err(E::custom(format!("expected {SECRET_SHAPE}")))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<SecretSource, A::Error> {
        let mut out = None;
        while let Some(k) = m.next_key::<String>()? {
            let v = match k.as_str() {
                "env" => SecretSource::Env(m.next_value()?),
                "file" => SecretSource::File(m.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{other}`, expected {SECRET_SHAPE}"
                    )))
                }
            };
            if out.replace(v).is_some() {
                return Err(de::Error::custom("give one of `env: VAR` or `file: PATH`"));
            }
        }
        match out {
            Some(SecretSource::Env(v)) if v.is_empty() => {
                Err(de::Error::custom("env: empty variable name"))
            }
            Some(v) => Ok(v),
            None => Err(de::Error::custom(format!("expected {SECRET_SHAPE}"))),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

impl SecretSource {
    /// Reads the secret. The error names the variable or path only.
    pub fn read(&self, key: &'static str) -> Result<String, NatsConfigError> {
        let v = match self {
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| err(key, format!("environment variable `{var}` is not set")))?,
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| err(key, format!("cannot read {}: {e}", p.display())))?,
        };
        let v = v.trim().to_string();
        if v.is_empty() {
            return Err(err(key, format!("{} is empty", self.describe())));
        }
        Ok(v)
    }

    fn describe(&self) -> String {
        match self {
            SecretSource::Env(v) => format!("environment variable `{v}`"),
            SecretSource::File(p) => format!("file {}", p.display()),
        }
    }
}

/// `nats.tls`: server certificate checked against the system's roots plus
/// `ca_file`; `cert_file` + `key_file` present a client certificate (mTLS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTls {
    /// PEM CA certificates trusted for the server certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// The `nats:` block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConnection {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`); the client picks
    /// one, fails over to the others and learns the rest of the cluster.
    #[serde(deserialize_with = "de_servers")]
    pub servers: Vec<String>,
    /// User name for `password` authentication.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<SecretSource>,
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// An NKey seed (`SU...`).
    #[serde(default)]
    pub nkey_seed: Option<SecretSource>,
    /// A `.creds` file's content (JWT + NKey seed), as written by `nsc`.
    #[serde(default)]
    pub creds: Option<SecretSource>,
    /// Present = TLS required.
    #[serde(default)]
    pub tls: Option<NatsTls>,
    /// KV bucket where hosts that read rules from `nats-kv://` write their
    /// status (`vigil fleet status` reads it); created if missing.
    #[serde(default = "default_status_bucket")]
    pub status_bucket: String,
    /// Timeout of one connection attempt and of JetStream API requests.
    #[serde(default = "default_connect_timeout", deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
}

fn default_status_bucket() -> String {
    "vigil-status".into()
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl NatsConnection {
    /// A connection to `servers` without credentials or TLS (tests, tools).
    pub fn plain(servers: Vec<String>) -> NatsConnection {
        NatsConnection {
            servers,
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            creds: None,
            tls: None,
            status_bucket: default_status_bucket(),
            connect_timeout: default_connect_timeout(),
        }
    }

    /// Checks the combinations serde cannot: one authentication method,
    /// `user` with `password`, client certificate and key together.
    pub fn check(&self) -> Result<(), NatsConfigError> {
        let methods: Vec<&str> = [
            ("password", self.password.is_some()),
            ("token", self.token.is_some()),
            ("nkey_seed", self.nkey_seed.is_some()),
            ("creds", self.creds.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        if methods.len() > 1 {
            return Err(err(
                "auth",
                format!(
                    "give one authentication method, not {}",
                    methods.join(" and ")
                ),
            ));
        }
        if self.password.is_some() != self.user.is_some() {
            return Err(err("user", "`user` and `password` go together"));
        }
        if let Some(t) = &self.tls {
            if t.cert_file.is_some() != t.key_file.is_some() {
                return Err(err("tls", "`cert_file` and `key_file` go together"));
            }
        }
        if self.status_bucket.is_empty()
            || !self
                .status_bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(
                "status_bucket",
                format!(
                    "`{}`: a bucket name is letters, digits, `_` and `-`",
                    self.status_bucket
                ),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(err("connect_timeout", "must be more than 0s"));
        }
        Ok(())
    }

    /// Connect options with the credentials read and the TLS files checked.
    /// `name` is the client name the server shows (`vigil web-01`). The
    /// client reconnects on its own, forever; the first connection is also
    /// retried in the background, so this never waits for a server.
    pub fn options(&self, name: &str) -> Result<async_nats::ConnectOptions, NatsConfigError> {
        self.check()?;
        let mut o = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.connect_timeout))
            .max_reconnects(None)
            .retry_on_initial_connect()
            .event_callback(|ev| async move {
                match ev {
                    async_nats::Event::Connected => tracing::info!("nats: connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("nats: disconnected, reconnecting")
                    }
                    other => tracing::warn!("nats: {other}"),
                }
            });
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            o = o.user_and_password(u.clone(), p.read("password")?);
        }
        if let Some(t) = &self.token {
            o = o.token(t.read("token")?);
        }
        if let Some(s) = &self.nkey_seed {
            let seed = s.read("nkey_seed")?;
            if !seed.starts_with('S') {
                return Err(err(
                    "nkey_seed",
                    format!("{} does not hold an NKey seed (`S...`)", s.describe()),
                ));
            }
            o = o.nkey(seed);
        }
        if let Some(c) = &self.creds {
            let text = c.read("creds")?;
            o = o.credentials(&text).map_err(|e| {
                err(
                    "creds",
                    format!("{} is not a NATS credentials file: {e}", c.describe()),
                )
            })?;
        }
        if let Some(t) = &self.tls {
            o = o.require_tls(true);
            if let Some(ca) = &t.ca_file {
                readable("tls.ca_file", ca)?;
                o = o.add_root_certificates(ca.clone());
            }
            if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
                readable("tls.cert_file", c)?;
                readable("tls.key_file", k)?;
                o = o.add_client_certificate(c.clone(), k.clone());
            }
        }
        Ok(o)
    }

    /// Starts a client (see [`options`](Self::options)); must run inside a
    /// tokio runtime. Returns at once: the first connection is made in the
    /// background and every request waits for it.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, NatsConfigError> {
        crate::tls::install_crypto_provider();
        self.options(name)?
            .connect(self.servers.clone())
            .await
            .map_err(|e| err("servers", format!("{}: {e}", self.servers.join(", "))))
    }
}

fn readable(key: &'static str, p: &Path) -> Result<(), NatsConfigError> {
    std::fs::File::open(p)
        .map(drop)
        .map_err(|e| err(key, format!("cannot read {}: {e}", p.display())))
}

fn de_servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() {
        return Err(de::Error::custom("servers: give at least one server URL"));
    }
    for s in &v {
        check_server(s).map_err(|e| de::Error::custom(format!("servers: {e}")))?;
    }
    Ok(v)
}

/// `nats://host:port`, `tls://host:port` or `host:port` (port optional, 4222).
pub fn check_server(s: &str) -> Result<(), String> {
    if let Some((scheme, _)) = s.split_once("://") {
        if scheme != "nats" && scheme != "tls" {
            return Err(format!(
                "`{s}`: unknown scheme `{scheme}` (expected nats:// or tls://)"
            ));
        }
    }
    if s.contains('@') {
        // Not echoed: the URL may hold a password.
        return Err(
            "a server URL with `user:password@`: put credentials in nats.user/password or nats.token, not in the URL".into(),
        );
    }
    let addr: async_nats::ServerAddr = s.parse().map_err(|e| format!("`{s}`: {e}"))?;
    if addr.host().is_empty() {
        return Err(format!("`{s}`: missing host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<NatsConnection, String> {
        let c: NatsConnection = serde_yaml_ng::from_str(y).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn minimal_and_full_blocks() {
        let c = parse("servers: [\"nats://127.0.0.1:4222\"]").unwrap();
        assert_eq!(
            c,
            NatsConnection::plain(vec!["nats://127.0.0.1:4222".into()])
        );
        let c = parse(
            "servers: [nats://a:4222, \"tls://b:4443\", c]\nuser: vigil\npassword: { env: NATS_PW }\ntls: { ca_file: /etc/ca.pem, cert_file: /c.pem, key_file: /k.pem }\nconnect_timeout: 2s\n",
        )
        .unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.password, Some(SecretSource::Env("NATS_PW".into())));
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.tls.unwrap().ca_file, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn bad_blocks_name_the_key() {
        let e = parse("servers: []").unwrap_err();
        assert!(e.contains("at least one server"), "{e}");
        let e = parse("servers: [\"http://a:1\"]").unwrap_err();
        assert!(e.contains("unknown scheme `http`"), "{e}");
        let e = parse("servers: [\"nats://a:x\"]").unwrap_err();
        assert!(e.contains("nats://a:x"), "{e}");
        let e = parse("servers: [\"nats://u:p@a:4222\"]").unwrap_err();
        assert!(e.contains("not in the URL") && !e.contains("u:p"), "{e}");
        let e = parse("servers: [a]\ntoken: { env: T }\nnkey_seed: { file: /s }").unwrap_err();
        assert!(
            e.contains("nats.auth") && e.contains("token and nkey_seed"),
            "{e}"
        );
        let e = parse("servers: [a]\npassword: { env: P }").unwrap_err();
        assert!(e.contains("nats.user"), "{e}");
        let e = parse("servers: [a]\ntls: { cert_file: /c }").unwrap_err();
        assert!(e.contains("nats.tls") && e.contains("key_file"), "{e}");
        let e = parse("servers: [a]\ntoken: { env: T, file: /t }").unwrap_err();
        assert!(e.contains("one of"), "{e}");
        let e = parse("servers: [a]\ntoken: secret-in-clear").unwrap_err();
        assert!(
            e.contains("never written") && !e.contains("secret-in-clear"),
            "{e}"
        );
        let e = parse("servers: [a]\nserver: [b]").unwrap_err();
        assert!(e.contains("unknown field `server`"), "{e}");
    }

    #[test]
    fn secrets_come_from_env_or_file_and_never_show_in_errors() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("token");
        std::fs::write(&f, "  s3cr3t-token\n").unwrap();
        assert_eq!(
            SecretSource::File(f.clone()).read("token").unwrap(),
            "s3cr3t-token"
        );
        let var = "VIGIL_TEST_NATS_SECRET_UNSET_4711";
        let e = SecretSource::Env(var.into()).read("token").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("nats.token: environment variable `{var}` is not set")
        );
        std::fs::write(&f, "\n").unwrap();
        let e = SecretSource::File(f.clone()).read("password").unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        // A file with a non-seed in nkey_seed: the error names the file, not its content.
        std::fs::write(&f, "not-a-seed-s3cr3t").unwrap();
        let mut c = NatsConnection::plain(vec!["nats://127.0.0.1:1".into()]);
        c.nkey_seed = Some(SecretSource::File(f.clone()));
        let e = c.options("t").unwrap_err().to_string();
        assert!(e.contains("NKey seed") && !e.contains("s3cr3t"), "{e}");
        c.nkey_seed = None;
        c.creds = Some(SecretSource::File(f.clone()));
        let e = c.options("t").unwrap_err().to_string();
        assert!(e.contains("nats.creds") && !e.contains("s3cr3t"), "{e}");
        // Debug output of the block shows sources only.
        assert!(!format!("{c:?}").contains("s3cr3t"));
        c.creds = None;
        c.tls = Some(NatsTls {
            ca_file: Some(d.path().join("missing.pem")),
            ..NatsTls::default()
        });
        let e = c.options("t").unwrap_err().to_string();
        assert!(
            e.contains("nats.tls.ca_file") && e.contains("missing.pem"),
            "{e}"
        );
    }
}
