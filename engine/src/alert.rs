//! Alerts: what a matching rule produces, and their Falco-compatible JSON
//! form (`time`, `rule`, `priority`, `output`, `output_fields`, `tags`,
//! `source`, `hostname`), which falcosidekick and SIEM parsers accept.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Rule priority, most severe first (so `Emergency < Debug` in `Ord`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Priority {
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Info,
        Priority::Debug,
    ];

    /// The name rule files use (`critical`, `info`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "emergency",
            Priority::Alert => "alert",
            Priority::Critical => "critical",
            Priority::Error => "error",
            Priority::Warning => "warning",
            Priority::Notice => "notice",
            Priority::Info => "info",
            Priority::Debug => "debug",
        }
    }

    /// Falco's spelling in JSON alerts (`Critical`, `Informational`, ...).
    pub fn falco_name(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Info => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// The syslog severity (RFC 5424: 0 emergency .. 7 debug).
    pub fn syslog_severity(self) -> u8 {
        self as u8
    }

    /// True when `self` is at least as severe as `min`.
    pub fn at_least(self, min: Priority) -> bool {
        self <= min
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}` (expected emergency, alert, critical, error, warning, notice, info or debug)")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;
    /// Accepts the rule-file names, Falco's names, and common aliases, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.to_ascii_lowercase();
        let p = match l.as_str() {
            "emergency" | "emerg" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" | "crit" => Priority::Critical,
            "error" | "err" => Priority::Error,
            "warning" | "warn" => Priority::Warning,
            "notice" => Priority::Notice,
            "info" | "informational" => Priority::Info,
            "debug" => Priority::Debug,
            _ => return Err(UnknownPriority(s.to_string())),
        };
        Ok(p)
    }
}

/// What an alert's `output_fields` carry (the config key `output_fields`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFields {
    /// Falco rules: the template's fields (as Falco writes them); vigil's
    /// rules: every field the event carries.
    #[default]
    Auto,
    /// Every field the event carries (Falco rules: the template's fields by
    /// Falco's names, then every other event field by vigil's).
    All,
    /// The output template's fields only (vigil's rules: by vigil's names).
    Template,
}

/// The `source` of the alerts vigil raises about itself ([`Alert::internal`]).
pub const INTERNAL_SOURCE: &str = "internal";

/// One raised alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Nanoseconds since the epoch (the event's time).
    pub time: i64,
    pub rule: Arc<str>,
    pub priority: Priority,
    /// The rendered output template.
    pub output: String,
    /// Every field the event carries, flat keys (`proc.name`, ...), plus any
    /// extras the pipeline adds (e.g. `vigil.count` for deduplicated alerts).
    pub output_fields: Map<String, Json>,
    pub tags: Arc<[String]>,
    /// Falco's `source`; always "syscall" for kernel events.
    pub source: &'static str,
    pub hostname: Arc<str>,
}

impl Alert {
    /// An alert vigil raises about itself (a reload that failed, alerts or
    /// events lost): rule `rule`, source `internal`, tags `vigil` and `kind`,
    /// timestamped now. The one constructor of these, so they all look alike
    /// to whoever routes on `source` or `tags`.
    pub fn internal(
        rule: &str,
        priority: Priority,
        kind: &str,
        output: String,
        output_fields: Map<String, Json>,
        hostname: Arc<str>,
    ) -> Alert {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Alert {
            time,
            rule: Arc::from(rule),
            priority,
            output,
            output_fields,
            tags: Arc::from(vec!["vigil".to_string(), kind.to_string()]),
            source: INTERNAL_SOURCE,
            hostname,
        }
    }

    /// RFC 3339 UTC time with nanoseconds, as Falco writes it.
    pub fn time_rfc3339(&self) -> String {
        rfc3339_nanos(self.time)
    }

    /// The Falco-compatible JSON object.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("time".into(), Json::String(self.time_rfc3339()));
        m.insert("rule".into(), Json::String(self.rule.to_string()));
        m.insert(
            "priority".into(),
            Json::String(self.priority.falco_name().into()),
        );
        m.insert("output".into(), Json::String(self.output.clone()));
        m.insert(
            "output_fields".into(),
            Json::Object(self.output_fields.clone()),
        );
        m.insert(
            "tags".into(),
            Json::Array(self.tags.iter().map(|t| Json::String(t.clone())).collect()),
        );
        m.insert("source".into(), Json::String(self.source.into()));
        m.insert("hostname".into(), Json::String(self.hostname.to_string()));
        Json::Object(m)
    }

    /// One JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        self.to_json().to_string()
    }

    /// The human text line: `<time> <Priority>: <output> [rule: <rule name>]`
    /// (Falco's text format, plus the rule so a reader can find it).
    pub fn to_text_line(&self) -> String {
        format!(
            "{} {}: {} [rule: {}]",
            self.time_rfc3339(),
            self.priority.falco_name(),
            self.output,
            self.rule
        )
    }

    /// Parse an alert back from its JSON form (used by tests and tools that
    /// read alert files).
    pub fn from_json(v: &Json) -> Option<Alert> {
        let o = v.as_object()?;
        Some(Alert {
            time: parse_rfc3339_nanos(o.get("time")?.as_str()?)?,
            rule: Arc::from(o.get("rule")?.as_str()?),
            priority: o.get("priority")?.as_str()?.parse().ok()?,
            output: o.get("output")?.as_str()?.to_string(),
            output_fields: o.get("output_fields")?.as_object()?.clone(),
            tags: o
                .get("tags")?
                .as_array()?
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .into(),
            source: "syscall",
            hostname: Arc::from(o.get("hostname")?.as_str()?),
        })
    }
}

/// Format ns since the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parse the format [`rfc3339_nanos`] writes (UTC `Z` only, any fraction length).
pub fn parse_rfc3339_nanos(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut tp = hms.splitn(3, ':');
    let hh: i64 = tp.next()?.parse().ok()?;
    let mm: i64 = tp.next()?.parse().ok()?;
    let ss: i64 = tp.next()?.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = format!("{frac:0<9}").parse().ok()?;
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000_000) + nanos)
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        let t = 1_795_000_000_123_456_789;
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2026-11-18T11:06:40.123456789Z");
        assert_eq!(parse_rfc3339_nanos(&s), Some(t));
        assert_eq!(
            parse_rfc3339_nanos("2026-11-18T11:06:40.5Z"),
            Some(1_795_000_000_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos("garbage"), None);
    }

    #[test]
    fn priorities() {
        assert!(Priority::Critical.at_least(Priority::Warning));
        assert!(!Priority::Info.at_least(Priority::Warning));
        assert_eq!("Informational".parse::<Priority>().unwrap(), Priority::Info);
        assert_eq!(Priority::Warning.syslog_severity(), 4);
        assert!("loud".parse::<Priority>().is_err());
    }

    #[test]
    fn json_round_trip() {
        let a = Alert {
            time: 1_795_000_000_123_456_789,
            rule: "r".into(),
            priority: Priority::Info,
            output: "o".into(),
            output_fields: Map::new(),
            tags: vec!["t".to_string()].into(),
            source: "syscall",
            hostname: "h".into(),
        };
        let j = a.to_json();
        assert_eq!(j["priority"], "Informational");
        assert_eq!(Alert::from_json(&j).unwrap(), a);
    }
}
