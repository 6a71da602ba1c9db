//! The kernel's first-stage filter, derived from the enabled rules (design
//! page "First-stage filter"), and its userspace model ([`KernelFilter::passes`]).
//!
//! Per event type: [`TypeFilter::Drop`] when no enabled rule takes that type,
//! [`TypeFilter::PassAll`] when some enabled rule has no usable term, else
//! [`TypeFilter::Match`] with the union of every rule's constraint. Each rule
//! contributes one sound constraint ([`constraint`]) taken from a conjunctive
//! (`&&`) top-level term of its condition: `proc.name ==/in`,
//! `proc.pname ==/in`, `proc.pid ==/in`, `proc.cgroup ==/in`, `proc.unit
//! ==/in`, `container.id ==/in`, and for open events `file.path ==/in`,
//! `file.path.starts_with(p)`, `glob(file.path, pat)` (its literal prefix),
//! `file.path.ends_with(s)` (a suffix),
//! `file.write`, `file.write` together with a path term (prefixes that pass
//! writes only), and terms that only hold for paths userspace must normalise
//! (`!file.path_raw.starts_with("/")`, `file.path_raw.contains("/../")`); a
//! disjunction of such terms contributes their union. Among several
//! conjuncts, the most selective ([`FilterSets::cost`]). Exceptions never
//! narrow the filter. The filter may pass events no rule matches, never drop
//! one a rule would match.
//!
//! Paths: the kernel sees the raw path (`file.path_raw`), not the normalised
//! `file.path`. A raw path that is not absolute, contains `//`, `/./`,
//! `/../`, ends in `/`, `/.` or `/..`, or is [`PATH_KEY_MAX`] bytes or longer
//! is *unclean* and passes whenever the type has any path term; a clean raw
//! path equals its lexical form (`file.path_lexical`) and is compared
//! against the prefixes and suffixes. Terms on `file.path_lexical` are
//! therefore exact in the kernel, and terms on `file.path` hold there too
//! unless the raw path is an alias (a symlink, a hard link, a bind mount,
//! `/proc/self/root`): for those, a *successful* open also passes by the
//! opened file's identity — it is, or is directly in a directory below, a
//! path the prefixes name ([`ident_passes`]: exact paths and `/`-ended
//! directory prefixes; the kernel keeps their inodes). Aliases of name
//! prefixes (`/etc/ssh/ssh_host_`) and of suffixes are not caught by identity.
//!
//! `cgroups` entries are tagged strings: `cgroup:<cgroup v2 path>`,
//! `unit:<systemd unit>`, `container:<container id>`.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::condition::{CmpOp, Node, Operand, StrOp};
use crate::event::{open_flags_write, Event, EventType};
pub use crate::event::{truncate_comm, COMM_LEN};
use crate::fields::Field;

/// Raw paths of this many bytes or more are not looked up in the kernel's
/// path trie (its key holds a generation byte and 255 path bytes, and a
/// 254-byte read cannot tell a 254-byte path from a longer one): they pass
/// whenever the type has a path term.
pub const PATH_KEY_MAX: usize = 254;

/// True when the kernel cannot compare this raw path with the prefixes
/// (userspace normalises it): not absolute, `//`, `/./`, `/../`, a trailing
/// `/`, `/.` or `/..`, or [`PATH_KEY_MAX`] bytes or longer.
pub fn raw_path_unclean(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'/') || b.len() >= PATH_KEY_MAX || b.last() == Some(&b'/') {
        return true;
    }
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let end = |c: u8| c == b'/' || c == 0;
    (0..b.len()).any(|i| {
        b[i] == b'/'
            && (at(i + 1) == b'/'
                || (at(i + 1) == b'.' && (end(at(i + 2)) || (at(i + 2) == b'.' && end(at(i + 3))))))
    })
}

/// The derived filter, indexed by [`EventType::index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFilter {
    pub types: [TypeFilter; EventType::COUNT],
}

/// What the kernel does with one event type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeFilter {
    /// No enabled rule has this event type.
    Drop,
    /// Some enabled rule may match any process: send everything.
    PassAll,
    /// Send only events in these sets.
    Match(FilterSets),
}

/// Sets an event type is sent for (an event passes when it is in any of
/// them). The path fields only concern open events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSets {
    /// comm values, truncated to 15 bytes.
    pub comms: BTreeSet<String>,
    /// parent comm values, truncated to 15 bytes.
    pub pcomms: BTreeSet<String>,
    pub pids: BTreeSet<i64>,
    /// Tagged terms: `cgroup:<path>`, `unit:<name>`, `container:<id>`.
    pub cgroups: BTreeSet<String>,
    /// Open: a clean raw path starting with one of these passes.
    pub path_prefixes: BTreeSet<String>,
    /// Open: a clean raw path starting with one of these passes when the
    /// open writes (`file.write`).
    pub write_prefixes: BTreeSet<String>,
    /// Open: a clean raw path ending with one of these passes.
    pub path_suffixes: BTreeSet<String>,
    /// Open: a clean raw path ending with one of these passes when the open
    /// writes.
    pub write_suffixes: BTreeSet<String>,
    /// Unclean raw paths pass (see [`raw_path_unclean`]); for other event
    /// types (no path: an empty raw path) this passes everything. For open
    /// events it is implied by any prefix or suffix (set only by terms that
    /// hold for unclean paths alone).
    pub unclean_paths: bool,
    /// Open: every open that writes passes.
    pub writes: bool,
}

impl FilterSets {
    /// Total number of values.
    pub fn len(&self) -> usize {
        self.comms.len()
            + self.pcomms.len()
            + self.pids.len()
            + self.cgroups.len()
            + self.path_prefixes.len()
            + self.write_prefixes.len()
            + self.path_suffixes.len()
            + self.write_suffixes.len()
            + usize::from(self.unclean_paths)
            + usize::from(self.writes)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rough selectivity (lower is narrower), in "events passed" terms: a
    /// process value passes every event of that process (8), a pid fewer
    /// (1); a path naming one file (2) or ending in a suffix (4) passes
    /// few opens, a directory prefix more (16); write-only terms half that;
    /// unnormalised paths 32 and every write last. So `proc.name == "nc" &&
    /// file.path.starts_with("/")` keeps the comm, while a rule for 40 busy
    /// server names reading `/etc/shadow` keeps the path.
    pub fn cost(&self) -> usize {
        let prefix = |p: &String| if p.ends_with('/') { 16 } else { 2 };
        8 * (self.comms.len() + self.pcomms.len() + self.cgroups.len())
            + self.pids.len()
            + self.path_prefixes.iter().map(prefix).sum::<usize>()
            + self
                .write_prefixes
                .iter()
                .map(|p| prefix(p) / 2)
                .sum::<usize>()
            + 4 * self.path_suffixes.len()
            + 2 * self.write_suffixes.len()
            + if self.unclean_paths { 32 } else { 0 }
            + if self.writes { 10_000 } else { 0 }
    }
    /// True when any path term is present (the kernel checks the path).
    pub fn has_paths(&self) -> bool {
        self.unclean_paths
            || !self.path_prefixes.is_empty()
            || !self.write_prefixes.is_empty()
            || !self.path_suffixes.is_empty()
            || !self.write_suffixes.is_empty()
    }
    /// Add every value of `other`.
    pub fn union_with(&mut self, other: &FilterSets) {
        self.comms.extend(other.comms.iter().cloned());
        self.pcomms.extend(other.pcomms.iter().cloned());
        self.pids.extend(other.pids.iter().copied());
        self.cgroups.extend(other.cgroups.iter().cloned());
        self.path_prefixes
            .extend(other.path_prefixes.iter().cloned());
        self.write_prefixes
            .extend(other.write_prefixes.iter().cloned());
        self.path_suffixes
            .extend(other.path_suffixes.iter().cloned());
        self.write_suffixes
            .extend(other.write_suffixes.iter().cloned());
        self.unclean_paths |= other.unclean_paths;
        self.writes |= other.writes;
    }
    /// True when the event's process is in one of the process sets.
    pub fn matches_process(&self, ev: &Event) -> bool {
        let p = &*ev.proc;
        self.comms.contains(truncate_comm(&p.name))
            || self.pcomms.contains(truncate_comm(&p.pname))
            || self.pids.contains(&p.pid)
            || (!self.cgroups.is_empty()
                && (self.cgroups.contains(&format!("cgroup:{}", p.cgroup))
                    || self.cgroups.contains(&format!("unit:{}", p.unit))
                    || self
                        .cgroups
                        .contains(&format!("container:{}", p.container_id))))
    }
    /// The kernel's decision for an event of a `Match` type: the process
    /// sets, then for open events the write flag and the raw path exactly as
    /// the kernel compares it; for other types `unclean_paths` passes all.
    pub fn matches(&self, ev: &Event) -> bool {
        if self.matches_process(ev) {
            return true;
        }
        let Some(f) = ev.file() else {
            return self.unclean_paths;
        };
        let write = open_flags_write(f.flags);
        if self.writes && write {
            return true;
        }
        if !self.has_paths() {
            return false;
        }
        let raw = &f.path_raw;
        if raw_path_unclean(raw) {
            return true;
        }
        if ev.ret >= 0 && self.ident_passes(&f.path, write) {
            return true;
        }
        self.path_prefixes
            .iter()
            .any(|p| raw.starts_with(p.as_str()))
            || (write
                && self
                    .write_prefixes
                    .iter()
                    .any(|p| raw.starts_with(p.as_str())))
            || self.path_suffixes.iter().any(|p| raw.ends_with(p.as_str()))
            || (write
                && self
                    .write_suffixes
                    .iter()
                    .any(|p| raw.ends_with(p.as_str())))
    }
    /// The kernel's identity check for a successful open whose canonical
    /// path is `path`: it is a watched file (a prefix equal to it), or lies
    /// below a watched directory (a prefix ending in `/`), with the write
    /// flag for write-only prefixes.
    pub fn ident_passes(&self, path: &str, write: bool) -> bool {
        let hit = |p: &String| p == path || (p.ends_with('/') && path.starts_with(p.as_str()));
        self.path_prefixes.iter().any(hit) || (write && self.write_prefixes.iter().any(hit))
    }
    /// Human form for `vigil explain`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.comms.is_empty() {
            parts.push(format!("comm in {:?}", self.comms));
        }
        if !self.pcomms.is_empty() {
            parts.push(format!("parent comm in {:?}", self.pcomms));
        }
        if !self.pids.is_empty() {
            parts.push(format!("pid in {:?}", self.pids));
        }
        if !self.cgroups.is_empty() {
            parts.push(format!("cgroup term in {:?}", self.cgroups));
        }
        if !self.path_prefixes.is_empty() {
            parts.push(format!("path prefix in {:?}", self.path_prefixes));
        }
        if !self.write_prefixes.is_empty() {
            parts.push(format!(
                "write with path prefix in {:?}",
                self.write_prefixes
            ));
        }
        if !self.path_suffixes.is_empty() {
            parts.push(format!("path suffix in {:?}", self.path_suffixes));
        }
        if !self.write_suffixes.is_empty() {
            parts.push(format!(
                "write with path suffix in {:?}",
                self.write_suffixes
            ));
        }
        if self.writes {
            parts.push("any write".to_string());
        }
        if self.unclean_paths || !parts.is_empty() && self.has_paths() {
            parts.push("unnormalised path (relative, `.`/`..`/`//`, long)".to_string());
        }
        parts.join(" or ")
    }
}

impl KernelFilter {
    /// A filter that passes every event type unfiltered.
    pub fn pass_all() -> KernelFilter {
        KernelFilter {
            types: std::array::from_fn(|_| TypeFilter::PassAll),
        }
    }

    /// The filter for one event type.
    pub fn for_type(&self, t: EventType) -> &TypeFilter {
        &self.types[t.index()]
    }

    /// Userspace model of the kernel check: `Drop` -> false, `PassAll` ->
    /// true, `Match` -> [`FilterSets::matches`].
    pub fn passes(&self, ev: &Event) -> bool {
        match &self.types[ev.kind.index()] {
            TypeFilter::Drop => false,
            TypeFilter::PassAll => true,
            TypeFilter::Match(sets) => sets.matches(ev),
        }
    }
}

/// A path prefix usable in the kernel: non-empty (an empty prefix is no
/// constraint) and without U+FFFD (the kernel compares raw bytes, userspace
/// shows invalid UTF-8 as U+FFFD).
fn usable_prefix(p: &str) -> bool {
    !p.is_empty() && !p.contains('\u{FFFD}')
}

/// The literal part of a glob before its first special character.
fn glob_prefix(pat: &str) -> &str {
    let end = pat
        .find(['*', '?', '[', '{', '\\', ']', '}', '!'])
        .unwrap_or(pat.len());
    &pat[..end]
}

fn prefixes(ps: impl IntoIterator<Item = String>) -> Option<FilterSets> {
    let mut s = FilterSets::default();
    for p in ps {
        if !usable_prefix(&p) {
            return None;
        }
        s.path_prefixes.insert(p);
    }
    Some(s)
}

/// A constraint made only of path terms (prefixes, unclean), which can be
/// restricted to writes.
fn is_pure_path(s: &FilterSets) -> bool {
    s.comms.is_empty()
        && s.pcomms.is_empty()
        && s.pids.is_empty()
        && s.cgroups.is_empty()
        && !s.writes
        && s.write_prefixes.is_empty()
        && s.write_suffixes.is_empty()
        && (!s.path_prefixes.is_empty() || !s.path_suffixes.is_empty())
}

/// Raw-path substrings that make a raw path unclean.
fn unclean_substring(s: &str) -> bool {
    s.contains("//") || s.contains("/./") || s.contains("/../")
}

/// The constraint a condition puts on the events it can match (for the
/// kernel filter); `None` when it has no usable term.
pub(crate) fn constraint(n: &Node) -> Option<FilterSets> {
    fn add(f: Field, o: &Operand, s: &mut FilterSets) -> bool {
        match (f, o) {
            (Field::ProcName, Operand::Str(v)) => s.comms.insert(truncate_comm(v).to_string()),
            (Field::ProcPname, Operand::Str(v)) => s.pcomms.insert(truncate_comm(v).to_string()),
            (Field::ProcPid, Operand::Int(i)) => s.pids.insert(*i),
            (Field::ProcCgroup, Operand::Str(v)) => s.cgroups.insert(format!("cgroup:{v}")),
            (Field::ProcUnit, Operand::Str(v)) => s.cgroups.insert(format!("unit:{v}")),
            (Field::ContainerId, Operand::Str(v)) => s.cgroups.insert(format!("container:{v}")),
            _ => return false,
        };
        true
    }
    // file.path_lexical is constrained exactly like file.path (the raw
    // check is lexical; the identity check only adds passes)
    let path = |f: &Field| matches!(f, Field::FilePath | Field::FilePathLexical);
    match n {
        Node::Cmp(CmpOp::Eq, Operand::Field(f), Operand::Str(v))
        | Node::Cmp(CmpOp::Eq, Operand::Str(v), Operand::Field(f))
            if path(f) =>
        {
            prefixes([v.to_string()])
        }
        Node::Cmp(CmpOp::Eq, Operand::Field(f), lit)
        | Node::Cmp(CmpOp::Eq, lit, Operand::Field(f)) => {
            let mut s = FilterSets::default();
            add(*f, lit, &mut s).then_some(s)
        }
        Node::InSet(Operand::Field(f), set) if path(f) => {
            if !set.ints.is_empty() {
                return None;
            }
            prefixes(set.strs.iter().cloned())
        }
        Node::InSet(Operand::Field(f), set) => {
            let mut s = FilterSets::default();
            let f = *f;
            if !matches!(
                f,
                Field::ProcName
                    | Field::ProcPname
                    | Field::ProcPid
                    | Field::ProcCgroup
                    | Field::ProcUnit
                    | Field::ContainerId
            ) {
                return None;
            }
            for v in &set.strs {
                add(f, &Operand::Str(Arc::from(v.as_str())), &mut s);
            }
            for i in &set.ints {
                add(f, &Operand::Int(*i), &mut s);
            }
            Some(s)
        }
        Node::Str(StrOp::StartsWith, Operand::Field(f), Operand::Str(p)) if path(f) => {
            prefixes([p.to_string()])
        }
        Node::Str(StrOp::EndsWith, Operand::Field(f), Operand::Str(p)) if path(f) => {
            let mut s = prefixes([])?;
            if !usable_prefix(p) {
                return None;
            }
            s.path_suffixes.insert(p.to_string());
            Some(s)
        }
        Node::Glob(Operand::Field(f), g) if path(f) => {
            prefixes([glob_prefix(g.glob().glob()).to_string()])
        }
        // Only unclean raw paths: relative, or containing `//`, `/./`, `/../`.
        Node::Not(inner) => match &**inner {
            Node::Str(StrOp::StartsWith, Operand::Field(Field::FilePathRaw), Operand::Str(p))
                if p.as_ref() == "/" =>
            {
                Some(FilterSets {
                    unclean_paths: true,
                    ..Default::default()
                })
            }
            _ => None,
        },
        Node::Str(StrOp::Contains, Operand::Field(Field::FilePathRaw), Operand::Str(p))
            if unclean_substring(p) =>
        {
            Some(FilterSets {
                unclean_paths: true,
                ..Default::default()
            })
        }
        Node::BoolField(Field::FileWrite) => Some(FilterSets {
            writes: true,
            ..Default::default()
        }),
        Node::Const(false) => Some(FilterSets::default()),
        Node::And(v) => {
            let cands: Vec<FilterSets> = v.iter().filter_map(constraint).collect();
            let writes = cands.iter().any(|c| {
                *c == FilterSets {
                    writes: true,
                    ..Default::default()
                }
            });
            let combined = if writes {
                cands
                    .iter()
                    .filter(|c| is_pure_path(c))
                    .min_by_key(|c| c.cost())
                    .map(|c| FilterSets {
                        write_prefixes: c.path_prefixes.clone(),
                        write_suffixes: c.path_suffixes.clone(),
                        unclean_paths: c.unclean_paths,
                        ..Default::default()
                    })
            } else {
                None
            };
            cands.into_iter().chain(combined).min_by_key(|s| s.cost())
        }
        Node::Memo(_, inner) => constraint(inner),
        Node::Or(v) => {
            let mut acc = FilterSets::default();
            for c in v {
                acc.union_with(&constraint(c)?);
            }
            Some(acc)
        }
        _ => None,
    }
}

/// What one rule contributed to the filter (for `vigil explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleContribution {
    pub rule: String,
    pub enabled: bool,
    pub events: Vec<EventType>,
    /// `Ok(sets)`: the constraint it added; `Err(reason)`: why it forces pass-all
    /// (or, for a disabled rule, that it contributes nothing).
    pub term: Result<FilterSets, String>,
    /// The top-level clause of the condition the term came from, when known.
    pub clause: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn truncation_and_passes() {
        assert_eq!(truncate_comm("0123456789abcdefgh"), "0123456789abcde");
        let mut sets = FilterSets::default();
        sets.comms.insert("0123456789abcde".into());
        let mut f = KernelFilter::pass_all();
        f.types[EventType::Exec.index()] = TypeFilter::Match(sets);
        f.types[EventType::Open.index()] = TypeFilter::Drop;
        let mut ev = Event::new(EventType::Exec);
        let mut p = (*ev.proc).clone();
        p.name = "0123456789abcdefXYZ".into();
        ev.proc = Arc::new(p);
        assert!(f.passes(&ev));
        let mut ev2 = Event::new(EventType::Exec);
        let mut p = (*ev2.proc).clone();
        p.name = "bash".into();
        p.unit = "x.service".into();
        ev2.proc = Arc::new(p);
        assert!(!f.passes(&ev2));
        assert!(!f.passes(&Event::new(EventType::Open)));
        assert!(f.passes(&Event::new(EventType::Exit)));
        if let TypeFilter::Match(s) = &mut f.types[0] {
            s.cgroups.insert("unit:x.service".into());
        }
        assert!(f.passes(&ev2));
    }

    fn open_ev(raw: &str, path: &str, flags: u32, name: &str) -> Event {
        let mut ev = Event::new(EventType::Open);
        let mut p = (*ev.proc).clone();
        p.name = name.into();
        ev.proc = Arc::new(p);
        ev.detail = crate::event::Detail::File(crate::event::FileInfo {
            path: path.into(),
            path_raw: raw.into(),
            flags,
            ..Default::default()
        });
        ev
    }

    #[test]
    fn aliases_pass_by_identity_when_the_open_succeeded() {
        let sets = FilterSets {
            path_prefixes: ["/etc/shadow".to_string(), "/etc/pam.d/".to_string()].into(),
            write_prefixes: ["/etc/".to_string()].into(),
            ..Default::default()
        };
        let mut f = KernelFilter::pass_all();
        f.types[EventType::Open.index()] = TypeFilter::Match(sets);
        // a symlink, hard link or bind mount: a clean raw path no prefix matches
        let mut ev = open_ev("/tmp/link", "/etc/shadow", 0, "cat");
        assert!(f.passes(&ev));
        ev.ret = -13; // a failed open has no identity
        assert!(!f.passes(&ev));
        assert!(f.passes(&open_ev("/mnt/b/pam.d/sshd", "/etc/pam.d/sshd", 0, "cat")));
        // write-only directories: writes only
        assert!(!f.passes(&open_ev("/mnt/b/hosts", "/etc/hosts", 0, "cat")));
        assert!(f.passes(&open_ev("/mnt/b/cron.d/x", "/etc/cron.d/x", 0o1, "cat")));
        // exact paths are files: no name-prefix aliases
        assert!(!f.passes(&open_ev("/tmp/l", "/etc/shadow.bak", 0, "cat")));
        // lexical terms constrain like file.path
        let t = term(r#"file.path_lexical.starts_with("/proc/1/") && file.path_lexical != """#)
            .unwrap();
        assert_eq!(t.path_prefixes, set(&["/proc/1/"]));
    }

    #[test]
    fn unclean_raw_paths() {
        for p in [
            "",
            "etc/shadow",
            "../x",
            "//etc",
            "/etc//x",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/.",
            "/..",
        ] {
            assert!(raw_path_unclean(p), "{p}");
        }
        assert!(raw_path_unclean("/etc/") && raw_path_unclean("/"));
        for p in ["/etc/shadow", "/a/.b", "/a/..b", "/a/b.", "/home/u/.ssh/x"] {
            assert!(!raw_path_unclean(p), "{p}");
        }
        assert!(!raw_path_unclean(&format!(
            "/{}",
            "x".repeat(PATH_KEY_MAX - 2)
        )));
        assert!(raw_path_unclean(&format!(
            "/{}",
            "x".repeat(PATH_KEY_MAX - 1)
        )));
    }

    #[test]
    fn path_model() {
        let sets = FilterSets {
            comms: ["httpd".to_string()].into(),
            path_prefixes: ["/etc/shadow".to_string()].into(),
            write_prefixes: ["/etc/".to_string()].into(),
            unclean_paths: true,
            ..Default::default()
        };
        let mut f = KernelFilter::pass_all();
        f.types[EventType::Open.index()] = TypeFilter::Match(sets);
        f.types[EventType::Exec.index()] = TypeFilter::Match(FilterSets {
            path_prefixes: ["/etc/".to_string()].into(),
            ..Default::default()
        });
        assert!(f.passes(&open_ev("/etc/shadow", "/etc/shadow", 0, "cat")));
        assert!(f.passes(&open_ev("/etc/shadow-", "/etc/shadow-", 0, "cat")));
        assert!(!f.passes(&open_ev("/etc/hosts", "/etc/hosts", 0, "cat")));
        assert!(f.passes(&open_ev("/etc/hosts", "/etc/hosts", 0o1, "cat")));
        assert!(f.passes(&open_ev("/tmp/x", "/tmp/x", 0, "httpd")));
        assert!(!f.passes(&open_ev("/tmp/x", "/tmp/x", 0o101, "cat")));
        // unclean raw paths pass whatever they normalise to
        assert!(f.passes(&open_ev("x", "/tmp/x", 0, "cat")));
        assert!(f.passes(&open_ev("/tmp/../tmp/x", "/tmp/x", 0, "cat")));
        f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
            path_suffixes: ["/.ssh/id_rsa".to_string()].into(),
            ..Default::default()
        });
        assert!(f.passes(&open_ev("/root/.ssh/id_rsa", "/root/.ssh/id_rsa", 0, "cat")));
        assert!(!f.passes(&open_ev(
            "/root/.ssh/id_rsa.pub",
            "/root/.ssh/id_rsa.pub",
            0,
            "cat"
        )));
        assert!(f.passes(&open_ev("id_rsa", "/root/.ssh/id_rsa", 0, "cat")));
        // exec has no path: a prefix term cannot match it
        assert!(!f.passes(&Event::new(EventType::Exec)));
        // writes alone
        f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
            writes: true,
            ..Default::default()
        });
        assert!(f.passes(&open_ev("/tmp/x", "/tmp/x", 0o1000, "cat")));
        assert!(!f.passes(&open_ev("x", "/tmp/x", 0, "cat")));
    }

    fn term(cond: &str) -> Option<FilterSets> {
        let src = format!(
            "- rule: r\n  events: [open]\n  condition: '{}'\n  output: o\n  priority: info\n",
            cond.replace('\'', "''")
        );
        let rs = crate::RuleSet::from_sources(&[("t.yaml".into(), src)]).unwrap();
        rs.filter_contributions().remove(0).term.ok()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn derivation() {
        let t = term(r#"file.path.starts_with("/etc/") && evt.ret >= 0"#).unwrap();
        assert_eq!(t.path_prefixes, set(&["/etc/"]));
        assert!(t.has_paths() && !t.unclean_paths && !t.writes);
        let t = term(r#"starts_with(file.path, "/a") || file.path in ["/b", "/c"] || file.path == "/d" || glob(file.path, "/e/*/f")"#).unwrap();
        assert_eq!(t.path_prefixes, set(&["/a", "/b", "/c", "/d", "/e/"]));
        let t = term(r#"file.write && file.path.starts_with("/etc/")"#).unwrap();
        assert_eq!(t.write_prefixes, set(&["/etc/"]));
        assert!(t.path_prefixes.is_empty() && !t.writes);
        let t = term(r#"file.write && regex(file.path, "x$")"#).unwrap();
        assert!(t.writes && !t.has_paths());
        // a comm term beats a path term
        let t = term(r#"file.path.starts_with("/etc/") && proc.name == "cat""#).unwrap();
        assert_eq!(t.comms, set(&["cat"]));
        assert!(!t.has_paths());
        // no usable prefix: an empty literal, or a disjunct without a term
        assert_eq!(term(r#"glob(file.path, "*/shadow")"#), None);
        assert_eq!(term(r#"file.path.starts_with("")"#), None);
        assert_eq!(
            term(r#"file.path.starts_with("/a") || file.path.contains("/b")"#),
            None
        );
        assert_eq!(term(r#"file.path_raw.contains("../")"#), None);
        let t = term(r#"file.write && (file.path.ends_with("/.ssh/authorized_keys") || file.path in ["/x"])"#).unwrap();
        assert_eq!(t.write_suffixes, set(&["/.ssh/authorized_keys"]));
        assert_eq!(t.write_prefixes, set(&["/x"]));
        assert!(t.path_suffixes.is_empty() && !t.writes);
        assert_eq!(term(r#"file.path.ends_with("")"#), None);
        let t = term(r#"(!file.path_raw.starts_with("/") || file.path_raw.contains("/../")) && regex(file.path, "x")"#).unwrap();
        assert!(t.unclean_paths && t.path_prefixes.is_empty());
        // exceptions never narrow
        let src = "- rule: r\n  events: [open]\n  condition: file.write\n  output: o\n  priority: info\n  exceptions:\n    - name: e\n      condition: proc.name == \"x\"\n";
        let rs = crate::RuleSet::from_sources(&[("t.yaml".into(), src.into())]).unwrap();
        let TypeFilter::Match(s) = rs.kernel_filter().types[EventType::Open.index()].clone() else {
            panic!("not match");
        };
        assert!(s.writes && s.comms.is_empty());
    }
}
