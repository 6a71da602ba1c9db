//! Which event types a Falco condition can match, inferred from its
//! `evt.type` tests as Falco does, and the syscalls vigil observes.

use std::collections::BTreeSet;

use crate::event::EventType;

/// Falco syscall / event names vigil observes, and the kind they map to.
/// Empty when vigil does not observe it; `unlinkat` is vigil's unlink or,
/// with `AT_REMOVEDIR`, its rmdir. `execve` is vigil's (successful) exec; a
/// rule that only a failed exec satisfies is moved to `exec_failed` once
/// lowered (`FalcoDefs::finish`).
pub(super) fn syscall_kinds(name: &str) -> &'static [EventType] {
    use EventType as E;
    match name {
        "execve" | "execveat" => &[E::Exec],
        "open" | "openat" | "openat2" | "creat" => &[E::Open],
        "connect" => &[E::Connect],
        "accept" | "accept4" => &[E::Accept],
        "procexit" => &[E::Exit],
        "symlink" | "symlinkat" => &[E::Symlink],
        "link" | "linkat" => &[E::Link],
        "rename" | "renameat" | "renameat2" => &[E::Rename],
        "unlink" => &[E::Unlink],
        "unlinkat" => &[E::Unlink, E::Rmdir],
        "rmdir" => &[E::Rmdir],
        "mkdir" | "mkdirat" => &[E::Mkdir],
        "chmod" | "fchmod" | "fchmodat" => &[E::Chmod],
        "ptrace" => &[E::Ptrace],
        "socket" => &[E::Socket],
        "setuid" => &[E::Setuid],
        "setgid" => &[E::Setgid],
        "setns" => &[E::Setns],
        "unshare" => &[E::Unshare],
        "memfd_create" => &[E::Memfd],
        // fcntl: only its F_DUPFD / F_DUPFD_CLOEXEC calls, the ones vigil
        // records (the other commands change no fd table entry).
        "dup" | "dup2" | "dup3" | "fcntl" => &[E::Dup],
        "listen" => &[E::Listen],
        "chown" | "fchown" | "lchown" | "fchownat" => &[E::Chown],
        "mount" | "umount" | "umount2" => &[E::Mount],
        "bpf" => &[E::Bpf],
        "userfaultfd" => &[E::Userfaultfd],
        "init_module" | "finit_module" => &[E::Module],
        "truncate" => &[E::Truncate],
        _ => &[],
    }
}

/// The event types a (sub)condition can match: `neg` = every type but `set`.
/// `exact` when the condition is true exactly for those types (a pure
/// `evt.type` test), which is what makes `not` invertible.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TSet {
    pub(super) neg: bool,
    pub(super) set: BTreeSet<String>,
    pub(super) exact: bool,
}

impl TSet {
    pub(super) fn all() -> TSet {
        TSet {
            neg: true,
            set: BTreeSet::new(),
            exact: false,
        }
    }
    pub(super) fn and(self, o: TSet) -> TSet {
        let exact = self.exact && o.exact;
        match (self.neg, o.neg) {
            (false, false) => TSet {
                neg: false,
                set: self.set.intersection(&o.set).cloned().collect(),
                exact,
            },
            (false, true) => TSet {
                neg: false,
                set: self.set.difference(&o.set).cloned().collect(),
                exact,
            },
            (true, false) => o.and(TSet { exact, ..self }),
            (true, true) => TSet {
                neg: true,
                set: self.set.union(&o.set).cloned().collect(),
                exact,
            },
        }
    }
    /// `a or b` is `not (not a and not b)` on the sets.
    pub(super) fn or(self, o: TSet) -> TSet {
        self.complement().and(o.complement()).complement()
    }
    /// The complement of the set (whatever `exact` says).
    fn complement(self) -> TSet {
        TSet {
            neg: !self.neg,
            ..self
        }
    }
    pub(super) fn not(self) -> TSet {
        if self.exact {
            self.complement()
        } else {
            TSet::all()
        }
    }
}
