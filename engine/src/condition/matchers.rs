//! Literal matchers compiled once at load: CIDR networks, size-limited
//! regexes, path globs, and open-flag membership on the raw bits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use regex_automata::meta::Regex;

use super::{REGEX_NEST_LIMIT, REGEX_NFA_LIMIT};

/// A parsed CIDR network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad CIDR `{s}`: `{a}` is not an IP address"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad CIDR `{s}`: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, addr: &str) -> bool {
        let Ok(a) = addr.trim().parse::<IpAddr>() else {
            return false;
        };
        match (a.to_canonical(), self.addr) {
            (IpAddr::V4(x), IpAddr::V4(n)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(x) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(x), IpAddr::V6(n)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(x) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

/// Build a regex with vigil's size limits.
pub fn build_regex(pattern: &str) -> Result<Regex, String> {
    build_regex_at(pattern).map_err(|(msg, _)| msg)
}

/// [`build_regex`] that also gives, for a syntax error, the byte offset in
/// `pattern` where regex-automata's parser stopped. The message is the
/// parser's own (`unclosed group`, `unclosed character class`, ...) with the
/// column in the pattern.
pub(crate) fn build_regex_at(pattern: &str) -> Result<Regex, (String, Option<usize>)> {
    Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().nest_limit(REGEX_NEST_LIMIT))
        .configure(
            Regex::config()
                .nfa_size_limit(Some(REGEX_NFA_LIMIT))
                .onepass_size_limit(Some(REGEX_NFA_LIMIT))
                .hybrid_cache_capacity(2 * REGEX_NFA_LIMIT)
                .dfa_size_limit(Some(REGEX_NFA_LIMIT)),
        )
        .build(pattern)
        .map_err(|e| {
            let syntax = e.syntax_error().map(|se| match se {
                regex_syntax::Error::Parse(p) => (p.kind().to_string(), p.span().start),
                regex_syntax::Error::Translate(t) => (t.kind().to_string(), t.span().start),
                other => (other.to_string(), regex_syntax::ast::Position::new(0, 1, 1)),
            });
            match syntax {
                Some((kind, pos)) => (
                    format!(
                        "bad regex `{pattern}`: {kind} at column {} of the pattern",
                        pattern[..pos.offset.min(pattern.len())].chars().count() + 1
                    ),
                    Some(pos.offset),
                ),
                None => (format!("bad regex `{pattern}`: {e}"), None),
            }
        })
}

/// Build a path glob (`*` does not cross `/`).
pub fn build_glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad glob `{pattern}`: {e}"))
}

/// True when `open_flag_names(flags)` contains `name`, without building the list.
pub fn flag_present(flags: u32, name: &str) -> bool {
    if name == "O_RDONLY" {
        return flags & 0o3 == 0;
    }
    let Some(&(bit, _)) = crate::event::OPEN_FLAGS.iter().find(|(_, n)| *n == name) else {
        return false;
    };
    if flags & bit != bit {
        return false;
    }
    // As open_flag_names: O_SYNC includes O_DSYNC's bit, O_TMPFILE O_DIRECTORY's.
    !((name == "O_DSYNC" && flags & 0o4010000 == 0o4010000)
        || (name == "O_DIRECTORY" && flags & 0o20200000 == 0o20200000))
}

/// Literal patterns compiled at load, shared with the Rhai helper functions.
#[derive(Default, Debug)]
pub struct Patterns {
    pub regex: HashMap<String, Arc<Regex>>,
    pub glob: HashMap<String, Arc<globset::GlobMatcher>>,
    pub cidr: HashMap<String, Arc<Cidr>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3") && !c.contains("11.0.0.1") && !c.contains("bogus"));
        assert!(c.contains("::ffff:10.0.0.1"));
        let c6 = Cidr::parse("fd00::/8").unwrap();
        assert!(c6.contains("fd12::1") && !c6.contains("fe80::1") && !c6.contains("10.0.0.1"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4"));
    }

    #[test]
    fn flag_bits_agree_with_flag_names() {
        let bits: Vec<u32> = crate::event::OPEN_FLAGS.iter().map(|(b, _)| *b).collect();
        let mut names: Vec<&str> = crate::event::OPEN_FLAGS.iter().map(|(_, n)| *n).collect();
        names.push("O_RDONLY");
        names.push("O_BOGUS");
        // every single flag, every pair, plus the access modes
        let mut combos = vec![0u32, 1, 2, 3];
        for (i, a) in bits.iter().enumerate() {
            for b in &bits[i..] {
                for acc in 0..3 {
                    combos.push(a | b | acc);
                }
            }
        }
        for f in combos {
            let list = crate::event::open_flag_names(f);
            for n in &names {
                assert_eq!(
                    flag_present(f, n),
                    list.iter().any(|x| x == n),
                    "{n} in {f:o}"
                );
            }
        }
    }

    #[test]
    fn hostile_regex_is_refused() {
        assert!(build_regex(r"\w{1000}{1000}").is_err());
        assert!(build_regex("(").is_err());
        assert_eq!(
            build_regex_at("curl (-o|--output").unwrap_err(),
            (
                "bad regex `curl (-o|--output`: unclosed group at column 6 of the pattern".into(),
                Some(5)
            )
        );
        assert_eq!(
            build_regex("a[b").unwrap_err(),
            "bad regex `a[b`: unclosed character class at column 2 of the pattern"
        );
        let r = build_regex("sh$").unwrap();
        assert!(r.is_match("/bin/bash") && !r.is_match("shell"));
    }
}
