//! The first-stage filter as the kernel stores it: [`FilterPlan`] turns the
//! engine's [`KernelFilter`] into a per-type mode array, `comm` / parent
//! `comm` / pid → event-type-bit maps, and for open events a path-prefix →
//! flags trie plus "writes pass" / "check paths" bits (layouts in
//! `src/bpf/vigil.h`).
//!
//! Paths: the kernel copies the raw path at the syscall's exit; empty, unreadable,
//! relative, unnormalised (`//`, `/./`, `/../`, trailing `/.` `/..`) or
//! [`PATH_KEY_MAX`]-byte-or-longer paths pass; a clean one is looked up in an
//! LPM trie whose longest match carries the OR of the flags of every
//! prefix of it in the set ([`FilterPlan::passes_open`] is the same check).
//! Path terms of non-open types (they have no path) match nothing, except
//! "unclean paths", which make that type pass-all (an empty path is unclean).
//!
//! cgroup terms (`cgroup:`, `unit:`, `container:`) make their event type
//! pass-all: a cgroup created after the filter is written would have no map
//! entry, so mapping terms to cgroup ids could drop events a rule matches.
//! Passing more than needed is sound; userspace evaluates the rule anyway.

use std::collections::BTreeMap;

use vigil_engine::event::open_flags_write;
use vigil_engine::filter::{
    raw_path_unclean, truncate_comm, KernelFilter, TypeFilter, PATH_KEY_MAX,
};
use vigil_engine::EventType;

pub const MODE_DROP: u8 = 0;
pub const MODE_PASS_ALL: u8 = 1;
/// The filter slot (and record type) of the on-demand kinds (`VG_SYSOP`).
pub const SYSOP_SLOT: usize = 7;
pub const MODE_MATCH: u8 = 2;

pub const HAS_COMM: u8 = 1;
pub const HAS_PCOMM: u8 = 2;
pub const HAS_PID: u8 = 4;
pub const HAS_PATH: u8 = 16;
pub const HAS_WRITE: u8 = 32;
pub const HAS_SUFFIX: u8 = 64;
/// Open: successful opens are also checked by the opened file's identity
/// (`f_ident`, see [`crate::identity`]).
pub const HAS_IDENT: u8 = 128;

/// `f_path` value bits.
pub const PATH_ANY: u8 = 1;
pub const PATH_WRITE: u8 = 2;

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
    /// Mode of the slot the on-demand kinds share (`VG_SYSOP`, bit 7 in the
    /// comm/pid maps): the union of their filters.
    pub ops_mode: u8,
    /// comm → bit mask of event types.
    pub comms: BTreeMap<[u8; 16], u8>,
    /// parent comm → bit mask.
    pub pcomms: BTreeMap<[u8; 16], u8>,
    /// tgid → bit mask.
    pub pids: BTreeMap<u32, u8>,
    /// Open: path prefix bytes → `PATH_ANY | PATH_WRITE`, each already ORed
    /// with the flags of the set's prefixes of it (LPM returns the longest).
    pub paths: BTreeMap<Vec<u8>, u8>,
    /// Open: path suffix bytes (not reversed) → flags, each ORed with the
    /// flags of the set's suffixes of it.
    pub suffixes: BTreeMap<Vec<u8>, u8>,
    /// Open: check raw paths (`HAS_PATH`).
    pub open_paths: bool,
    /// Open: every write passes (`HAS_WRITE`).
    pub open_writes: bool,
}

/// The kernel's 16-bit hash of a NUL-padded comm (`comm_hash16` in
/// filter.bpf.h: the same multiply-xor over the two little-endian words). It
/// indexes the comm pre-check arrays that spare the hash lookup for comms no
/// rule names.
pub fn comm_hash16(comm: &[u8; 16]) -> u16 {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&comm[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let h =
        word(0).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ word(8).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (h >> 48) as u16
}

fn pre_check(set: &BTreeMap<[u8; 16], u8>) -> BTreeMap<u16, u8> {
    let mut out = BTreeMap::new();
    for (c, m) in set {
        *out.entry(comm_hash16(c)).or_insert(0) |= *m;
    }
    out
}

impl FilterPlan {
    pub fn from_filter(f: &KernelFilter) -> FilterPlan {
        let mut plan = FilterPlan::default();
        // The on-demand kinds share one slot, set by Sensors::set_ops.
        for (i, tf) in f.types.iter().enumerate().take(plan.modes.len()) {
            let bit = 1u8 << i;
            plan.modes[i] = match tf {
                TypeFilter::Drop => MODE_DROP,
                TypeFilter::PassAll => MODE_PASS_ALL,
                TypeFilter::Match(sets) if !sets.cgroups.is_empty() => MODE_PASS_ALL,
                TypeFilter::Match(sets) => {
                    if i != EventType::Open.index() {
                        // no path: only "unclean paths" (an empty path) matches
                        if sets.unclean_paths {
                            plan.modes[i] = MODE_PASS_ALL;
                            continue;
                        }
                    } else {
                        plan.open_paths = sets.has_paths();
                        plan.open_writes = sets.writes;
                        // longer prefixes can only match paths that pass anyway
                        let fits = |p: &&String| p.len() < PATH_KEY_MAX;
                        for p in sets.path_prefixes.iter().filter(fits) {
                            *plan.paths.entry(p.as_bytes().to_vec()).or_default() |= PATH_ANY;
                        }
                        for p in sets.write_prefixes.iter().filter(fits) {
                            *plan.paths.entry(p.as_bytes().to_vec()).or_default() |= PATH_WRITE;
                        }
                        for p in sets.path_suffixes.iter().filter(fits) {
                            *plan.suffixes.entry(p.as_bytes().to_vec()).or_default() |= PATH_ANY;
                        }
                        for p in sets.write_suffixes.iter().filter(fits) {
                            *plan.suffixes.entry(p.as_bytes().to_vec()).or_default() |= PATH_WRITE;
                        }
                        let own = plan.paths.clone();
                        for (k, v) in plan.paths.iter_mut() {
                            for (a, f) in &own {
                                if k.starts_with(a) {
                                    *v |= f;
                                }
                            }
                        }
                        let own = plan.suffixes.clone();
                        for (k, v) in plan.suffixes.iter_mut() {
                            for (a, f) in &own {
                                if k.ends_with(a) {
                                    *v |= f;
                                }
                            }
                        }
                    }
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
        plan.ops_mode = plan.ops_slot(f);
        plan
    }

    /// The shared on-demand slot: dropped when every on-demand kind is,
    /// passing everything when one passes everything (or needs what the
    /// slot cannot check: cgroups, paths), else matching the union of their
    /// comm / parent comm / pid sets under bit `SYSOP_SLOT`.
    fn ops_slot(&mut self, f: &KernelFilter) -> u8 {
        let bit = 1u8 << SYSOP_SLOT;
        let mut mode = MODE_DROP;
        for t in EventType::ALL.into_iter().filter(|t| t.on_demand()) {
            match f.for_type(t) {
                TypeFilter::Drop => {}
                TypeFilter::Match(sets) if sets.cgroups.is_empty() && !sets.unclean_paths => {
                    for c in &sets.comms {
                        *self.comms.entry(comm_bytes(c)).or_default() |= bit;
                    }
                    for c in &sets.pcomms {
                        *self.pcomms.entry(comm_bytes(c)).or_default() |= bit;
                    }
                    for p in sets.pids.iter().filter_map(|&p| u32::try_from(p).ok()) {
                        *self.pids.entry(p).or_default() |= bit;
                    }
                    mode = mode.max(MODE_MATCH);
                }
                _ => return MODE_PASS_ALL,
            }
        }
        mode
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
        if self.open_paths {
            h |= HAS_PATH;
        }
        if self.open_writes {
            h |= HAS_WRITE;
        }
        if !self.suffixes.is_empty() {
            h |= HAS_SUFFIX;
        }
        if !self.paths.is_empty() {
            h |= HAS_IDENT;
        }
        h
    }

    /// The `type_has` byte of one event type: which maps hold its bit (and
    /// for open, the path bits). The kernel consults only those maps.
    pub fn type_has(&self, type_index: usize) -> u8 {
        let bit = 1u8 << type_index;
        let any = |m: &BTreeMap<[u8; 16], u8>| m.values().any(|v| v & bit != 0);
        let mut h = 0;
        if any(&self.comms) {
            h |= HAS_COMM;
        }
        if any(&self.pcomms) {
            h |= HAS_PCOMM;
        }
        if self.pids.values().any(|v| v & bit != 0) {
            h |= HAS_PID;
        }
        if type_index == EventType::Open.index() {
            h |= self.has() & (HAS_PATH | HAS_WRITE | HAS_SUFFIX | HAS_IDENT);
        }
        h
    }

    /// `f_comm_pre` entries: [`comm_hash16`] of each comm → OR of the type
    /// masks of the comms hashing there.
    pub fn comm_pre(&self) -> BTreeMap<u16, u8> {
        pre_check(&self.comms)
    }

    /// `f_pcomm_pre` entries, as [`FilterPlan::comm_pre`] for parent comms.
    pub fn pcomm_pre(&self) -> BTreeMap<u16, u8> {
        pre_check(&self.pcomms)
    }

    /// `f_tail` entries: the last two bytes (`b[len-2] << 8 | b[len-1]`) a
    /// path can end with and still match a suffix (every second-to-last
    /// byte for a one-byte suffix).
    pub fn tails(&self) -> std::collections::BTreeSet<u16> {
        let mut out = std::collections::BTreeSet::new();
        for p in self.suffixes.keys() {
            match p.as_slice() {
                [.., a, b] => {
                    out.insert(u16::from(*a) << 8 | u16::from(*b));
                }
                [b] => out.extend((0..=255u16).map(|a| a << 8 | u16::from(*b))),
                [] => {}
            }
        }
        out
    }

    /// The kernel decision for an open at its syscall exit, as the BPF program
    /// computes it from the raw path bytes and the flags.
    pub fn passes_open(&self, comm: &str, pcomm: &str, tgid: u32, raw: &[u8], flags: u32) -> bool {
        let open = EventType::Open.index();
        match self.modes[open] {
            MODE_PASS_ALL => return true,
            MODE_MATCH => {}
            _ => return false,
        }
        if self.passes(open, comm, pcomm, tgid) {
            return true;
        }
        let write = open_flags_write(flags);
        if self.open_writes && write {
            return true;
        }
        if !self.open_paths {
            return false;
        }
        // the kernel reads at most PATH_KEY_MAX bytes before the NUL
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let raw = &raw[..len.min(PATH_KEY_MAX)];
        if len >= PATH_KEY_MAX || raw.first() != Some(&b'/') {
            return true;
        }
        if raw_path_unclean(&String::from_utf8_lossy(raw)) {
            return true;
        }
        let longest = self
            .paths
            .iter()
            .filter(|(p, _)| raw.starts_with(p))
            .max_by_key(|(p, _)| p.len());
        let allows = |v: Option<(&Vec<u8>, &u8)>| match v {
            Some((_, &v)) => v & PATH_ANY != 0 || (v & PATH_WRITE != 0 && write),
            None => false,
        };
        let tail = u16::from(raw[raw.len().saturating_sub(2)]) << 8 | u16::from(raw[raw.len() - 1]);
        if !self.tails().contains(&tail) {
            return allows(longest);
        }
        let longest_suffix = self
            .suffixes
            .iter()
            .filter(|(p, _)| raw.ends_with(p))
            .max_by_key(|(p, _)| p.len());
        allows(longest) || allows(longest_suffix)
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

    fn comm(s: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..s.len()].copy_from_slice(s.as_bytes());
        c
    }

    #[test]
    fn comm_pre_check_covers_every_comm_with_its_types() {
        // Mixes both words: names differing only past byte 8 hash apart.
        assert_ne!(
            comm_hash16(&comm("kworker/0:1")),
            comm_hash16(&comm("kworker/0:2"))
        );
        assert_ne!(comm_hash16(&comm("nginx")), comm_hash16(&comm("nginy")));
        let mut plan = FilterPlan::default();
        plan.comms.insert(comm("nginx"), 0b01);
        plan.comms.insert(comm("sshd"), 0b10);
        plan.pcomms.insert(comm("bash"), 0b100);
        let pre = plan.comm_pre();
        for (c, m) in &plan.comms {
            assert_eq!(pre[&comm_hash16(c)] & m, *m, "{c:?}");
        }
        assert_eq!(pre.values().fold(0, |a, m| a | m), 0b11);
        assert_eq!(plan.pcomm_pre()[&comm_hash16(&comm("bash"))], 0b100);
    }

    fn sets(comms: &[&str], pcomms: &[&str], pids: &[i64], cg: &[&str]) -> FilterSets {
        FilterSets {
            comms: comms.iter().map(|s| s.to_string()).collect(),
            pcomms: pcomms.iter().map(|s| s.to_string()).collect(),
            pids: pids.iter().copied().collect(),
            cgroups: cg.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_matches_userspace_model() {
        let first = [
            TypeFilter::Match(sets(&[], &["nginx"], &[], &[])),
            TypeFilter::Match(sets(&["a-very-long-process-name"], &[], &[42, -1], &[])),
            TypeFilter::PassAll,
            TypeFilter::Drop,
            TypeFilter::Match(sets(&["x"], &[], &[], &["unit:foo.service"])),
            TypeFilter::Drop,
        ];
        // the on-demand kinds (PassAll here) have no slot of their own
        let f = KernelFilter {
            types: std::array::from_fn(|i| first.get(i).cloned().unwrap_or(TypeFilter::PassAll)),
        };
        let p = FilterPlan::from_filter(&f);
        assert_eq!(p.modes, [2, 2, 1, 0, 1, 0]);
        assert_eq!(p.has(), HAS_COMM | HAS_PCOMM | HAS_PID);
        assert_eq!(p.type_has(0), HAS_PCOMM);
        assert_eq!(p.type_has(1), HAS_COMM | HAS_PID);
        assert_eq!(p.type_has(4), 0);
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
    fn on_demand_kinds_share_one_slot() {
        let mut f = KernelFilter {
            types: std::array::from_fn(|_| TypeFilter::Drop),
        };
        assert_eq!(FilterPlan::from_filter(&f).ops_mode, MODE_DROP);
        f.types[EventType::Ptrace.index()] = TypeFilter::Match(sets(&["gdb"], &[], &[7], &[]));
        f.types[EventType::Memfd.index()] = TypeFilter::Match(sets(&["perl"], &["sh"], &[], &[]));
        let p = FilterPlan::from_filter(&f);
        assert_eq!(p.ops_mode, MODE_MATCH);
        assert_eq!(p.comms[&comm("gdb")], 1 << SYSOP_SLOT);
        assert_eq!(p.comms[&comm("perl")], 1 << SYSOP_SLOT);
        assert_eq!(p.pids[&7], 1 << SYSOP_SLOT);
        assert_eq!(p.type_has(SYSOP_SLOT), HAS_COMM | HAS_PCOMM | HAS_PID);
        assert_eq!(p.modes, [MODE_DROP; 6]);
        f.types[EventType::Socket.index()] = TypeFilter::PassAll;
        assert_eq!(FilterPlan::from_filter(&f).ops_mode, MODE_PASS_ALL);
    }

    #[test]
    fn comm_key_is_padded() {
        let k = comm_bytes("bash");
        assert_eq!(&k[..5], b"bash\0");
        assert_eq!(comm_bytes("0123456789abcdefgh")[15], 0);
    }

    fn strs(v: &[&str]) -> std::collections::BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn open_paths_match_engine_model() {
        use std::sync::Arc;
        use vigil_engine::event::{Detail, FileInfo};
        use vigil_engine::Event;

        let long = format!("/etc/{}", "x".repeat(300));
        let sets = FilterSets {
            comms: strs(&["httpd"]),
            path_prefixes: strs(&["/etc/shadow", "/etc/pam.d/", &long]),
            path_suffixes: strs(&["/.ssh/id_rsa", "/config"]),
            write_suffixes: strs(&["/.ssh/authorized_keys", "/release_agent", "_agent"]),
            write_prefixes: strs(&["/etc/", "/var/spool/cron/"]),
            unclean_paths: true,
            ..Default::default()
        };
        let mut f = KernelFilter {
            types: std::array::from_fn(|_| TypeFilter::Drop),
        };
        f.types[EventType::Open.index()] = TypeFilter::Match(sets.clone());
        // a non-open type with only unclean paths has nothing to look at
        f.types[EventType::Exec.index()] = TypeFilter::Match(FilterSets {
            unclean_paths: true,
            ..Default::default()
        });
        let plan = FilterPlan::from_filter(&f);
        assert_eq!(plan.modes[EventType::Exec.index()], MODE_PASS_ALL);
        assert_eq!(plan.has() & (HAS_PATH | HAS_WRITE), HAS_PATH);
        // the longest match carries its ancestors' flags; the long prefix is left out
        assert_eq!(plan.paths[b"/etc/shadow".as_slice()], PATH_ANY | PATH_WRITE);
        assert_eq!(plan.paths[b"/etc/".as_slice()], PATH_WRITE);
        assert_eq!(plan.paths.len(), 4);
        assert_eq!(plan.suffixes[b"/release_agent".as_slice()], PATH_WRITE);
        assert_eq!(plan.has() & HAS_SUFFIX, HAS_SUFFIX);
        assert!(plan
            .tails()
            .contains(&(u16::from(b'n') << 8 | u16::from(b't'))));
        assert!(!plan
            .tails()
            .contains(&(u16::from(b'l') << 8 | u16::from(b'e'))));
        let long_clean = format!("/etc/{}", "y".repeat(260));
        let raws = [
            "/etc/shadow",
            "/etc/shadow.bak",
            "/etc/hosts",
            "/etc/pam.d/sshd",
            "/etc",
            "/tmp/x",
            "/var/spool/cron/root",
            "/etc/../tmp",
            "tmp/x",
            "",
            "//etc/hosts",
            "/etc/.",
            "/etc/.x",
            long_clean.as_str(),
            long.as_str(),
        ];
        for raw in raws {
            for flags in [0u32, 0o1, 0o100, 0o2000000] {
                for comm in ["cat", "httpd"] {
                    let mut ev = Event::new(EventType::Open);
                    let mut p = (*ev.proc).clone();
                    p.name = comm.into();
                    ev.proc = Arc::new(p);
                    ev.detail = Detail::File(FileInfo {
                        path: raw.into(),
                        path_raw: raw.into(),
                        flags,
                        ..Default::default()
                    });
                    assert_eq!(
                        plan.passes_open(comm, "", 1, raw.as_bytes(), flags),
                        f.passes(&ev),
                        "{raw:?} {flags:o} {comm}"
                    );
                }
            }
        }
        assert!(!plan.passes_open("cat", "", 1, b"/etc/hosts", 0));
        assert!(plan.passes_open("cat", "", 1, b"/etc/hosts", 0o1));
        assert!(plan.passes_open("cat", "", 1, b"../etc/hosts", 0));
    }
}
