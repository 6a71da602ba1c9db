//! serde helpers every sink's config uses: durations (the engine's one
//! grammar, [`vigil_engine::duration`]), priorities, bounded integers and
//! strings checked by a function. Errors are raised inside the visitor so
//! serde_yaml_ng reports the key's full path and line.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use vigil_engine::Priority;

pub use vigil_engine::duration::parse_duration;

/// Default `queue_size` of every sink.
pub fn default_queue_size() -> usize {
    10_000
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

/// A duration written as `5s` / `250ms` / `1m30s` / seconds.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// [`de_duration`] for an optional key.
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// A string value checked (and converted) by `f`.
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

/// A string converted by `f`; `what` names the expected value in errors.
pub fn de_str_with<'de, D, T>(
    d: D,
    what: &'static str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(StrVisitor(f, what))
}

/// `min_priority`: any name [`Priority`] parses.
pub fn de_opt_priority<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Priority>, D::Error> {
    de_str_with(d, "a priority name", |s| {
        s.parse::<Priority>().map(Some).map_err(|e| e.to_string())
    })
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

/// An integer in `1..=max`.
pub fn de_bounded<'de, D: Deserializer<'de>>(d: D, max: u64) -> Result<usize, D::Error> {
    d.deserialize_u64(BoundedVisitor(max))
}

/// A size or count (`queue_size`, `max_message_size`, ...): 1 to 10^8.
pub fn de_queue_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 100_000_000)
}
