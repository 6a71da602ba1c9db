//! The one duration grammar of vigil, shared by rule files (`window:` of a
//! sequence rule) and the config file (timeouts, windows, backoffs, the
//! `--duration` flag): a bare number of seconds (`90`), or one or more
//! `<number><unit>` terms added up (`500ms`, `1m30s`, `1.5h`), the number an
//! integer or a decimal, the unit one of
//!
//! | unit        | meaning      |
//! |-------------|--------------|
//! | `ns`        | nanoseconds  |
//! | `us`        | microseconds |
//! | `ms`        | milliseconds |
//! | `s`, `sec`  | seconds      |
//! | `m`, `min`  | minutes      |
//! | `h`         | hours        |
//! | `d`         | days         |
//!
//! Spaces around the whole value are ignored; a value above 10^9 seconds
//! (~31 years) is out of range. Where zero is meaningless (a rule window) the
//! caller rejects it.

use std::time::Duration;

/// Why a duration did not parse; the text quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}`: {what}")]
pub struct DurationError {
    pub value: String,
    pub what: String,
}

/// Largest accepted duration, in seconds.
const MAX_SECS: u128 = 1_000_000_000;

const UNITS: &str = "ns, us, ms, s, m, h, d";

/// Parses a duration in the grammar of the module docs.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = |what: String| DurationError {
        value: s.to_string(),
        what,
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err("empty duration".into()));
    }
    if let Ok(secs) = t.parse::<u64>() {
        if u128::from(secs) > MAX_SECS {
            return Err(err("out of range".into()));
        }
        return Ok(Duration::from_secs(secs));
    }
    let mut nanos: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err(format!("missing unit ({UNITS})")))?;
        if num_end == 0 {
            return Err(err("expected a number".into()));
        }
        let (int, frac) = rest[..num_end]
            .split_once('.')
            .unwrap_or((&rest[..num_end], ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
            return Err(err("bad number".into()));
        }
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let unit = &after[..unit_end];
        let mult: u128 = match unit {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(err(format!("unknown unit `{unit}` ({UNITS})"))),
        };
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err("out of range".into()))?
        };
        let frac_n: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err("bad number".into()))?
        };
        let scale = 10u128.pow(frac.len() as u32);
        nanos = int
            .checked_mul(mult)
            .and_then(|n| n.checked_add(frac_n * mult / scale))
            .and_then(|n| n.checked_add(nanos))
            .filter(|n| *n <= MAX_SECS * 1_000_000_000)
            .ok_or_else(|| err("out of range".into()))?;
        rest = &after[unit_end..];
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn config_forms() {
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d("5sec"), Duration::from_secs(5));
        assert_eq!(d("2min"), Duration::from_secs(120));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("1d"), Duration::from_secs(86_400));
        assert_eq!(d(" 7 "), Duration::from_secs(7));
        assert_eq!(d("0s"), Duration::ZERO);
    }

    #[test]
    fn rule_forms() {
        assert_eq!(d("100us"), Duration::from_micros(100));
        assert_eq!(d("10ns"), Duration::from_nanos(10));
        assert_eq!(d("1s500ms"), Duration::from_millis(1500));
        assert_eq!(d("0.000000001s"), Duration::from_nanos(1));
    }

    #[test]
    fn errors_name_the_value_and_what() {
        for (bad, what) in [
            ("", "empty"),
            ("s", "expected a number"),
            ("5 parsecs", "unknown unit"),
            ("5x", "unknown unit `x`"),
            ("10", ""),
            ("1.2.3s", "bad number"),
            ("1000000001", "out of range"),
            ("99999999999999999999d", "out of range"),
            ("40000d", "out of range"),
        ] {
            match parse_duration(bad) {
                Ok(_) if bad == "10" => {}
                Ok(v) => panic!("{bad} parsed as {v:?}"),
                Err(e) => {
                    let t = e.to_string();
                    assert!(t.contains(what) && t.contains(&format!("`{bad}`")), "{t}");
                }
            }
        }
    }
}
