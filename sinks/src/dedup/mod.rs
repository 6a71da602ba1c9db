//! Deduplication / rate limiting. Alerts of one rule with the same values of
//! the `by` fields within a window form one key. The first alert of a key goes
//! out at once; later ones within the window are suppressed and counted. When
//! the window closes (checked by the router's ticker, or when the next alert
//! of the key arrives), one summary alert goes out: a copy of the last
//! suppressed alert with `vigil.count` (alerts it stands for),
//! `vigil.first_time` and `vigil.window_s` in `output_fields` and
//! "(repeated N times ...)" appended to `output`. Nothing is lost, only
//! folded. The key table is capped (`max_keys`); over the cap alerts pass
//! undeduplicated and are counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use vigil_engine::template::COUNT_FIELD;
use vigil_engine::Alert;

pub mod config;

use config::DedupConfig;

/// Dedup counters, as returned by [`crate::Router::dedup_stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Keys currently tracked (bounded by `dedup.max_keys`).
    pub keys: usize,
    /// Alerts folded into a summary.
    pub suppressed: u64,
    /// Summary alerts emitted (carrying `vigil.count`).
    pub summaries: u64,
    /// Alerts passed through undeduplicated because the key table was full.
    pub over_capacity: u64,
}

/// One part of a dedup key, resolved from its name once, when the config
/// is read: the alert's own fields by type, anything else an output field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyPart {
    /// `rule`: already in every key.
    Rule,
    Priority,
    Hostname,
    Output,
    Field(String),
}

impl KeyPart {
    fn of(name: &str) -> KeyPart {
        match name {
            "rule" => KeyPart::Rule,
            "priority" => KeyPart::Priority,
            "hostname" => KeyPart::Hostname,
            "output" => KeyPart::Output,
            f => KeyPart::Field(f.to_string()),
        }
    }

    fn push(&self, a: &Alert, k: &mut String) {
        match self {
            KeyPart::Rule => {}
            KeyPart::Priority => k.push_str(a.priority.as_str()),
            KeyPart::Hostname => k.push_str(&a.hostname),
            KeyPart::Output => k.push_str(&a.output),
            KeyPart::Field(f) => match a.output_fields.get(f) {
                Some(Json::String(s)) => k.push_str(s),
                Some(v) => k.push_str(&v.to_string()),
                None => {}
            },
        }
    }
}

struct Policy {
    window: Duration,
    by: Vec<KeyPart>,
}

impl Policy {
    fn new(window: Duration, by: &[String]) -> Policy {
        Policy {
            window,
            by: by.iter().map(|f| KeyPart::of(f)).collect(),
        }
    }
}

struct Entry {
    opened: Instant,
    window: Duration,
    suppressed: u64,
    first_time: i64,
    last: Arc<Alert>,
}

/// The dedup state. Not thread-safe by itself; the router wraps it in a mutex.
pub struct Dedup {
    default: Policy,
    rules: HashMap<String, Policy>,
    max_keys: usize,
    map: HashMap<String, Entry>,
    stats: DedupStats,
}

impl Dedup {
    pub fn new(cfg: &DedupConfig) -> Dedup {
        let rules = cfg
            .rules
            .iter()
            .map(|(name, r)| {
                (
                    name.clone(),
                    Policy::new(
                        r.window.unwrap_or(cfg.window),
                        r.by.as_deref().unwrap_or(&cfg.by),
                    ),
                )
            })
            .collect();
        Dedup {
            default: Policy::new(cfg.window, &cfg.by),
            rules,
            max_keys: cfg.max_keys,
            map: HashMap::new(),
            stats: DedupStats::default(),
        }
    }

    fn key(p: &Policy, a: &Alert) -> String {
        let mut k = String::with_capacity(64);
        k.push_str(&a.rule);
        for part in &p.by {
            k.push('\u{1f}');
            part.push(a, &mut k);
        }
        k
    }

    /// Admits one alert: returns what to send now (a summary of an expired
    /// window of the same key, then the alert itself, either may be absent).
    pub fn admit(&mut self, a: Arc<Alert>, now: Instant) -> [Option<Arc<Alert>>; 2] {
        let p = self.rules.get(&*a.rule).unwrap_or(&self.default);
        if p.window.is_zero() {
            return [None, Some(a)];
        }
        let window = p.window;
        let key = Dedup::key(p, &a);
        if let Some(e) = self.map.get_mut(&key) {
            if now < e.opened + e.window {
                e.suppressed += 1;
                e.last = a;
                self.stats.suppressed += 1;
                return [None, None];
            }
            let summary = summarize(e);
            if summary.is_some() {
                self.stats.summaries += 1;
            }
            *e = Entry {
                opened: now,
                window,
                suppressed: 0,
                first_time: a.time,
                last: a.clone(),
            };
            return [summary, Some(a)];
        }
        if self.map.len() >= self.max_keys {
            self.stats.over_capacity += 1;
            return [None, Some(a)];
        }
        self.map.insert(
            key,
            Entry {
                opened: now,
                window,
                suppressed: 0,
                first_time: a.time,
                last: a.clone(),
            },
        );
        self.stats.keys = self.map.len();
        [None, Some(a)]
    }

    /// Closes every window that has ended; returns their summaries.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<Alert>> {
        let mut out = Vec::new();
        self.map.retain(|_, e| {
            if now < e.opened + e.window {
                return true;
            }
            if let Some(s) = summarize(e) {
                out.push(s);
            }
            false
        });
        self.stats.summaries += out.len() as u64;
        self.stats.keys = self.map.len();
        out
    }

    /// Closes every window now (shutdown).
    pub fn drain(&mut self) -> Vec<Arc<Alert>> {
        let out: Vec<_> = self.map.values().filter_map(summarize).collect();
        self.map.clear();
        self.stats.summaries += out.len() as u64;
        self.stats.keys = 0;
        out
    }

    pub fn stats(&self) -> DedupStats {
        let mut s = self.stats.clone();
        s.keys = self.map.len();
        s
    }
}

fn summarize(e: &Entry) -> Option<Arc<Alert>> {
    if e.suppressed == 0 {
        return None;
    }
    let mut a = (*e.last).clone();
    a.output_fields
        .insert(COUNT_FIELD.into(), Json::from(e.suppressed));
    a.output_fields
        .insert("vigil.first_time".into(), Json::from(e.first_time));
    a.output_fields
        .insert("vigil.window_s".into(), Json::from(e.window.as_secs_f64()));
    a.output = format!(
        "{} (repeated {} more times within {}s)",
        a.output,
        e.suppressed,
        e.window.as_secs_f64()
    );
    Some(Arc::new(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::DedupRuleConfig;
    use serde_json::Map;
    use vigil_engine::Priority;

    fn alert(rule: &str, name: &str, t: i64) -> Arc<Alert> {
        let mut f = Map::new();
        f.insert("proc.name".into(), Json::from(name));
        Arc::new(Alert {
            time: t,
            rule: Arc::from(rule),
            priority: Priority::Warning,
            output: format!("{name} did it"),
            output_fields: f,
            tags: Arc::from(Vec::<String>::new()),
            source: "syscall",
            hostname: Arc::from("h"),
        })
    }

    fn cfg() -> DedupConfig {
        DedupConfig {
            window: Duration::from_secs(10),
            by: vec!["proc.name".into()],
            max_keys: 3,
            ..DedupConfig::default()
        }
    }

    #[test]
    fn first_passes_rest_fold_into_one_summary() {
        let mut d = Dedup::new(&cfg());
        let t0 = Instant::now();
        let [s, a] = d.admit(alert("r", "bash", 1), t0);
        assert!(s.is_none() && a.is_some());
        for i in 0..5 {
            let r = d.admit(alert("r", "bash", 2 + i), t0 + Duration::from_secs(1));
            assert!(r.iter().all(Option::is_none));
        }
        // different key passes
        let [_, other] = d.admit(alert("r", "sh", 3), t0 + Duration::from_secs(1));
        assert!(other.is_some());
        assert!(d.expire(t0 + Duration::from_secs(5)).is_empty());
        let out = d.expire(t0 + Duration::from_secs(11));
        assert_eq!(
            out.len(),
            1,
            "only the key with suppressed alerts summarises"
        );
        assert_eq!(out[0].output_fields["vigil.count"], 5);
        assert_eq!(out[0].output_fields["vigil.first_time"], 1);
        assert!(out[0].output.contains("repeated 5 more times"));
        assert_eq!(d.stats().suppressed, 5);
        assert_eq!(d.stats().keys, 0);
    }

    #[test]
    fn late_alert_flushes_previous_window() {
        let mut d = Dedup::new(&cfg());
        let t0 = Instant::now();
        d.admit(alert("r", "bash", 1), t0);
        d.admit(alert("r", "bash", 2), t0);
        let [s, a] = d.admit(alert("r", "bash", 3), t0 + Duration::from_secs(20));
        assert_eq!(s.unwrap().output_fields["vigil.count"], 1);
        assert_eq!(a.unwrap().time, 3);
    }

    #[test]
    fn per_rule_override_and_cap() {
        let mut c = cfg();
        c.rules.insert(
            "loud".into(),
            DedupRuleConfig {
                window: Some(Duration::ZERO),
                by: None,
            },
        );
        let mut d = Dedup::new(&c);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(d.admit(alert("loud", "x", 1), t0)[1].is_some());
        }
        for n in ["a", "b", "c", "d", "e"] {
            assert!(d.admit(alert("r", n, 1), t0)[1].is_some());
        }
        assert_eq!(d.stats().keys, 3);
        assert_eq!(d.stats().over_capacity, 2);
        d.admit(alert("r", "a", 1), t0);
        assert_eq!(d.drain().len(), 1);
    }

    #[test]
    fn key_parts_read_the_alert_fields_they_name() {
        let mut c = cfg();
        c.by = vec!["priority".into(), "rule".into()];
        let mut d = Dedup::new(&c);
        let t0 = Instant::now();
        let mut crit = (*alert("r", "bash", 1)).clone();
        crit.priority = Priority::Critical;
        assert!(d.admit(alert("r", "bash", 1), t0)[1].is_some());
        assert!(
            d.admit(alert("r", "sh", 2), t0)[1].is_none(),
            "same priority and rule: one key"
        );
        assert!(
            d.admit(Arc::new(crit), t0)[1].is_some(),
            "another priority: another key"
        );
        assert_eq!(d.stats().keys, 2);
    }
}
