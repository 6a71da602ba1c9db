//! The loss notices of one sink ("vigil alerts dropped", the daemon's
//! "vigil events lost"): they bypass the queue. The newest pending notice
//! per rule waits in a slot (a newer one replaces an older undelivered one,
//! so notices carry cumulative totals) and the worker delivers it before
//! the next queued alert: a full queue or `min_priority` never drops a
//! notice. One the sink gave up on is kept aside and put back in its slot
//! (unless a newer one is there) by the router's ticker and after the
//! sink's next successful delivery, at most every [`NOTICE_RETRY_EVERY`]:
//! notices repeat until one is delivered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::encode::Encoded;

/// Minimum time between two re-tries of a notice a sink gave up on.
pub const NOTICE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// The loss notices of one sink: the newest pending per rule, and those the
/// sink gave up on, waiting to be tried again.
#[derive(Default)]
pub(super) struct Notices {
    state: Mutex<NoticeState>,
    pub(super) wake: tokio::sync::Notify,
}

#[derive(Default)]
struct NoticeState {
    pending: BTreeMap<Arc<str>, Arc<Encoded>>,
    given_up: BTreeMap<Arc<str>, Arc<Encoded>>,
    last_retry: Option<Instant>,
}

impl Notices {
    fn lock(&self) -> std::sync::MutexGuard<'_, NoticeState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Puts `a` in its rule's slot; true if the slot was empty (false: it
    /// replaced an undelivered older notice, which it supersedes).
    pub(super) fn put(&self, a: Arc<Encoded>) -> bool {
        let fresh = {
            let mut st = self.lock();
            st.given_up.remove(&a.rule);
            st.pending.insert(a.rule.clone(), a).is_none()
        };
        self.wake.notify_one();
        fresh
    }

    /// Takes every pending notice.
    pub(super) fn take(&self) -> Vec<Arc<Encoded>> {
        std::mem::take(&mut self.lock().pending)
            .into_values()
            .collect()
    }

    /// Keeps notices the sink gave up on, unless a newer one is pending.
    pub(super) fn give_back(&self, notices: Vec<Arc<Encoded>>) {
        let mut st = self.lock();
        for a in notices {
            if !st.pending.contains_key(&a.rule) {
                st.given_up.insert(a.rule.clone(), a);
            }
        }
    }

    /// Moves the given-up notices back to pending, at most every
    /// [`NOTICE_RETRY_EVERY`]. Returns how many became pending.
    pub(super) fn retry_given_up(&self) -> u64 {
        let mut st = self.lock();
        if st.given_up.is_empty()
            || st
                .last_retry
                .is_some_and(|t| t.elapsed() < NOTICE_RETRY_EVERY)
        {
            return 0;
        }
        st.last_retry = Some(Instant::now());
        let mut n = 0;
        for (rule, a) in std::mem::take(&mut st.given_up) {
            if let std::collections::btree_map::Entry::Vacant(e) = st.pending.entry(rule) {
                e.insert(a);
                n += 1;
            }
        }
        drop(st);
        if n > 0 {
            self.wake.notify_one();
        }
        n
    }

    /// Takes everything (shutdown): (pending, given up).
    pub(super) fn drain(&self) -> (u64, u64) {
        let mut st = self.lock();
        let p = std::mem::take(&mut st.pending).len() as u64;
        let g = std::mem::take(&mut st.given_up).len() as u64;
        (p, g)
    }
}
