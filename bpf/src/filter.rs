//! The first-stage filter as the kernel stores it: [`FilterPlan`] turns the
//! engine's [`KernelFilter`] into a per-type mode array and `comm` / parent
//! `comm` / pid → event-type-bit maps (layouts in `src/bpf/vigil.h`).
//!
//! cgroup terms (`cgroup:`, `unit:`, `container:`) make their event type
//! pass-all: a cgroup created after the filter is written would have no map
//! entry, so mapping terms to cgroup ids could drop events a rule matches.
//! Passing more than needed is sound; userspace evaluates the rule anyway.

use std::collections::BTreeMap;

use vigil_engine::filter::{truncate_comm, KernelFilter, TypeFilter};

pub const MODE_DROP: u8 = 0;
pub const MODE_PASS_ALL: u8 = 1;
pub const MODE_MATCH: u8 = 2;

pub const HAS_COMM: u8 = 1;
pub const HAS_PCOMM: u8 = 2;
pub const HAS_PID: u8 = 4;

/// Kernel comm key bytes: at most 15 bytes, NUL padded to 16.
pub fn comm_bytes(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let t = truncate_comm(name).as_bytes();
    out[..t.len()].copy_from_slice(t);
    out
}

/// What [`crate::Sensors::set_filter`] writes for one generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterPlan {
    /// Mode per event type (index = `EventType::index()`).
    pub modes: [u8; 6],
    /// comm → bit mask of event types.
    pub comms: BTreeMap<[u8; 16], u8>,
    /// parent comm → bit mask.
    pub pcomms: BTreeMap<[u8; 16], u8>,
    /// tgid → bit mask.
    pub pids: BTreeMap<u32, u8>,
}

impl FilterPlan {
    pub fn from_filter(f: &KernelFilter) -> FilterPlan {
        let mut plan = FilterPlan::default();
        for (i, tf) in f.types.iter().enumerate() {
            let bit = 1u8 << i;
            plan.modes[i] = match tf {
                TypeFilter::Drop => MODE_DROP,
                TypeFilter::PassAll => MODE_PASS_ALL,
                TypeFilter::Match(sets) if !sets.cgroups.is_empty() => MODE_PASS_ALL,
                TypeFilter::Match(sets) => {
                    for c in &sets.comms {
                        *plan.comms.entry(comm_bytes(c)).or_default() |= bit;
                    }
                    for c in &sets.pcomms {
                        *plan.pcomms.entry(comm_bytes(c)).or_default() |= bit;
                    }
                    for &p in &sets.pids {
                        // a pid outside u32 can match no real process
                        if let Ok(p) = u32::try_from(p) {
                            *plan.pids.entry(p).or_default() |= bit;
                        }
                    }
                    MODE_MATCH
                }
            };
        }
        plan
    }

    /// The `has` byte: which maps hold entries.
    pub fn has(&self) -> u8 {
        let mut h = 0;
        if !self.comms.is_empty() {
            h |= HAS_COMM;
        }
        if !self.pcomms.is_empty() {
            h |= HAS_PCOMM;
        }
        if !self.pids.is_empty() {
            h |= HAS_PID;
        }
        h
    }

    /// The kernel decision for a process, as the BPF program computes it.
    pub fn passes(&self, type_index: usize, comm: &str, pcomm: &str, tgid: u32) -> bool {
        let bit = 1u8 << type_index;
        match self.modes.get(type_index) {
            Some(&MODE_PASS_ALL) => true,
            Some(&MODE_MATCH) => {
                self.comms
                    .get(&comm_bytes(comm))
                    .is_some_and(|m| m & bit != 0)
                    || self
                        .pcomms
                        .get(&comm_bytes(pcomm))
                        .is_some_and(|m| m & bit != 0)
                    || self.pids.get(&tgid).is_some_and(|m| m & bit != 0)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::filter::FilterSets;

    fn sets(comms: &[&str], pcomms: &[&str], pids: &[i64], cg: &[&str]) -> FilterSets {
        FilterSets {
            comms: comms.iter().map(|s| s.to_string()).collect(),
            pcomms: pcomms.iter().map(|s| s.to_string()).collect(),
            pids: pids.iter().copied().collect(),
            cgroups: cg.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plan_matches_userspace_model() {
        let f = KernelFilter {
            types: [
                TypeFilter::Match(sets(&[], &["nginx"], &[], &[])),
                TypeFilter::Match(sets(&["a-very-long-process-name"], &[], &[42, -1], &[])),
                TypeFilter::PassAll,
                TypeFilter::Drop,
                TypeFilter::Match(sets(&["x"], &[], &[], &["unit:foo.service"])),
                TypeFilter::Drop,
            ],
        };
        let p = FilterPlan::from_filter(&f);
        assert_eq!(p.modes, [2, 2, 1, 0, 1, 0]);
        assert_eq!(p.has(), HAS_COMM | HAS_PCOMM | HAS_PID);
        // exec: only via parent nginx
        assert!(p.passes(0, "sh", "nginx", 1));
        assert!(!p.passes(0, "nginx", "bash", 1));
        // open: comm truncated to 15 bytes like the kernel, or pid 42
        assert!(p.passes(1, "a-very-long-pro", "", 1));
        assert!(p.passes(1, "cat", "", 42));
        assert!(!p.passes(1, "cat", "", 43));
        assert!(!p.pids.contains_key(&u32::MAX));
        assert!(p.passes(2, "anything", "", 0));
        assert!(!p.passes(3, "nginx", "nginx", 42));
        // cgroup terms widen to pass-all; no map entries for that type
        assert!(p.passes(4, "zzz", "", 0));
        assert!(!p.comms.contains_key(&comm_bytes("x")));
    }

    #[test]
    fn comm_key_is_padded() {
        let k = comm_bytes("bash");
        assert_eq!(&k[..5], b"bash\0");
        assert_eq!(comm_bytes("0123456789abcdefgh")[15], 0);
    }
}
