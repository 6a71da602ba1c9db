//! Which event types a Falco condition can match, inferred from its
//! `evt.type` tests as Falco does, and the syscalls vigil observes.

use std::collections::BTreeSet;

use crate::event::EventType;

/// Falco syscall / event names vigil observes, and the kind they map to.
pub(super) fn syscall_kind(name: &str) -> Option<EventType> {
    Some(match name {
        "execve" | "execveat" => EventType::Exec,
        "open" | "openat" | "openat2" | "creat" => EventType::Open,
        "connect" => EventType::Connect,
        "accept" | "accept4" => EventType::Accept,
        "procexit" => EventType::Exit,
        _ => return None,
    })
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
    pub(super) fn or(self, o: TSet) -> TSet {
        let exact = self.exact && o.exact;
        match (self.neg, o.neg) {
            (false, false) => TSet {
                neg: false,
                set: self.set.union(&o.set).cloned().collect(),
                exact,
            },
            (false, true) => TSet {
                neg: true,
                set: o.set.difference(&self.set).cloned().collect(),
                exact,
            },
            (true, false) => o.or(TSet { exact, ..self }),
            (true, true) => TSet {
                neg: true,
                set: self.set.intersection(&o.set).cloned().collect(),
                exact,
            },
        }
    }
    pub(super) fn not(self) -> TSet {
        if self.exact {
            TSet {
                neg: !self.neg,
                ..self
            }
        } else {
            TSet::all()
        }
    }
}
