//! The kernel's first-stage filter, derived from the enabled rules (design
//! page "First-stage filter"), and its userspace model ([`KernelFilter::passes`]).
//!
//! Per event type: [`TypeFilter::Drop`] when no enabled rule takes that type,
//! [`TypeFilter::PassAll`] when some enabled rule has no usable term, else
//! [`TypeFilter::Match`] with the union of every rule's constraint. Each rule
//! contributes one sound constraint taken from a conjunctive (`&&`) top-level
//! term of its condition: `proc.name ==/in`, `proc.pname ==/in`,
//! `proc.pid ==/in`, `proc.cgroup ==/in`, `proc.unit ==/in`,
//! `container.id ==/in` (a disjunction of such terms contributes their union);
//! among several, the one with the fewest values. Exceptions never narrow the
//! filter. The filter may pass events no rule matches, never drop one a rule
//! would match.
//!
//! `cgroups` entries are tagged strings: `cgroup:<cgroup v2 path>`,
//! `unit:<systemd unit>`, `container:<container id>`.

use std::collections::BTreeSet;

use crate::event::{Event, EventType};

/// The kernel keeps comm in 16 bytes with a NUL: 15 significant bytes.
pub const COMM_LEN: usize = 15;

/// Truncate a process name the way the kernel keeps it (15 bytes, on a char boundary).
pub fn truncate_comm(s: &str) -> &str {
    if s.len() <= COMM_LEN {
        return s;
    }
    let mut end = COMM_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The derived filter, indexed by [`EventType::index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFilter {
    pub types: [TypeFilter; 6],
}

/// What the kernel does with one event type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeFilter {
    /// No enabled rule has this event type.
    Drop,
    /// Some enabled rule may match any process: send everything.
    PassAll,
    /// Send only events of processes in these sets.
    Match(FilterSets),
}

/// Sets of processes an event type is sent for (an event passes when it is in
/// any of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSets {
    /// comm values, truncated to 15 bytes.
    pub comms: BTreeSet<String>,
    /// parent comm values, truncated to 15 bytes.
    pub pcomms: BTreeSet<String>,
    pub pids: BTreeSet<i64>,
    /// Tagged terms: `cgroup:<path>`, `unit:<name>`, `container:<id>`.
    pub cgroups: BTreeSet<String>,
}

impl FilterSets {
    /// Total number of values (a rough selectivity measure: fewer is narrower).
    pub fn len(&self) -> usize {
        self.comms.len() + self.pcomms.len() + self.pids.len() + self.cgroups.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Add every value of `other`.
    pub fn union_with(&mut self, other: &FilterSets) {
        self.comms.extend(other.comms.iter().cloned());
        self.pcomms.extend(other.pcomms.iter().cloned());
        self.pids.extend(other.pids.iter().copied());
        self.cgroups.extend(other.cgroups.iter().cloned());
    }
    /// True when the event's process is in one of the sets.
    pub fn matches(&self, ev: &Event) -> bool {
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
    /// true, `Match` -> comm in comms || pcomm in pcomms || pid in pids ||
    /// a cgroup term matches (comm/pcomm compared truncated to 15 bytes).
    pub fn passes(&self, ev: &Event) -> bool {
        match &self.types[ev.kind.index()] {
            TypeFilter::Drop => false,
            TypeFilter::PassAll => true,
            TypeFilter::Match(sets) => sets.matches(ev),
        }
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
}
