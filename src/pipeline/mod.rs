//! The live pipeline: sensors → ring buffer → process table → engine
//! events. [`Live`] owns the loaded sensors, the reader task and the process
//! table; commands (`run`, `snoop`, `record`) pull [`LiveEvent`]s from it and
//! decide what to do with them (evaluate rules, print a table, write JSONL).
//!
//! Wiring for other parts of the daemon: `Live::set_filter` writes a new
//! kernel filter without a gap (hot reload), `Live::counters` feeds metrics.
//!
//! File identities (the inodes of the files and directories the filter's
//! path terms name, [`vigil_bpf::Identity`]) are scanned whenever a filter is
//! written and again every [`IDENTITY_RESCAN`] (files get replaced:
//! `passwd` renames a new /etc/shadow into place), on the event path.

pub mod proctable;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_bpf::{
    FilterPlan, Identity, KernelCounters, QueueDrops, RawEvent, Reader, SensorError, Sensors,
};
use vigil_engine::filter::KernelFilter;
use vigil_engine::Event;

use proctable::{ProcTable, TableStats};

/// How often the identities of watched files are scanned again.
pub const IDENTITY_RESCAN: Duration = Duration::from_secs(30);

/// Bounded sizes of the pipeline and what it records.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Capacity of the ring buffer → pipeline channel (records).
    pub queue: usize,
    /// Maximum processes in the table.
    pub max_procs: usize,
    /// Watch 32-bit (`int 0x80`) syscalls too (see `SensorOptions`).
    pub compat_syscalls: bool,
    /// Environment variables recorded in `proc.env` (config `proc_env`).
    pub proc_env: Vec<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            queue: 65_536,
            max_procs: 65_536,
            compat_syscalls: true,
            proc_env: proctable::DEFAULT_ENV
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// One engine event and whether rules may be evaluated on it (exec/exit
/// records always reach userspace for the process table; those the kernel
/// filter rejected are not rule-eligible).
#[derive(Clone, Debug)]
pub struct LiveEvent {
    pub event: Event,
    pub eligible: bool,
    /// A string was cut at its kernel-side bound.
    pub truncated: bool,
}

/// Loaded sensors + reader + process table.
pub struct Live {
    sensors: Sensors,
    reader: Option<Reader>,
    rx: mpsc::Receiver<RawEvent>,
    table: ProcTable,
    /// The live filter plan (its paths are what the identity scan stats).
    plan: FilterPlan,
    /// When the identities were last scanned.
    scanned: Instant,
}

impl Live {
    /// Start the sensors for a one-shot command (`snoop`, `record`) and send
    /// READY=1 to `$NOTIFY_SOCKET` (tests wait for it) once they are attached.
    pub fn start_ready(filter: &KernelFilter) -> Result<Live, SensorError> {
        let live = Live::start(filter, LiveOptions::default())?;
        if let Err(e) = crate::daemon::notify(&[crate::daemon::NotifyState::Ready]) {
            tracing::warn!(error = %e, "sd_notify READY failed");
        }
        Ok(live)
    }

    /// Load and attach the sensors, write `filter` (attaching the hooks of
    /// the on-demand kinds it does not drop), start the reader, then
    /// seed the process table from /proc (after attaching, so no process
    /// starts unseen in between). Must run inside a tokio runtime.
    pub fn start(filter: &KernelFilter, opts: LiveOptions) -> Result<Live, SensorError> {
        let mut sensors = Sensors::load_with(vigil_bpf::SensorOptions {
            compat_syscalls: opts.compat_syscalls,
        })?;
        let plan = sensors.set_filter(filter)?;
        sensors.set_ops(&op_kinds(filter))?;
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let reader = Reader::spawn(&sensors, tx)?;
        let mut table = ProcTable::new(opts.max_procs);
        table.set_env_names(opts.proc_env);
        let n = table.seed_from_proc();
        tracing::debug!(processes = n, hooks = ?sensors.hooks(), "sensors attached, process table seeded");
        let mut live = Live {
            sensors,
            reader: Some(reader),
            rx,
            table,
            plan,
            scanned: Instant::now(),
        };
        live.scan_identity()?;
        Ok(live)
    }

    /// Stat the watched paths again and write their identities (kernel map
    /// and the table's canonical names).
    fn scan_identity(&mut self) -> Result<(), SensorError> {
        self.scanned = Instant::now();
        let id = Identity::scan(&self.plan);
        self.sensors.set_identity(id.clone())?;
        self.table.set_identity(id);
        Ok(())
    }

    /// The next event (fork records only update the table and are skipped).
    /// `None` once the reader stopped.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        loop {
            let raw = self.rx.recv().await?;
            if let Some(ev) = self.convert(raw) {
                return Some(ev);
            }
        }
    }

    /// Like [`Live::next`] but never waits.
    pub fn try_next(&mut self) -> Option<LiveEvent> {
        loop {
            let raw = self.rx.try_recv().ok()?;
            if let Some(ev) = self.convert(raw) {
                return Some(ev);
            }
        }
    }

    fn convert(&mut self, raw: RawEvent) -> Option<LiveEvent> {
        if self.scanned.elapsed() >= IDENTITY_RESCAN {
            if let Err(e) = self.scan_identity() {
                tracing::warn!(error = %e, "rescanning watched file identities failed; the previous ones stay");
            }
        }
        let eligible = raw.passed;
        let truncated = raw.truncated;
        self.table.apply(raw).map(|event| LiveEvent {
            event,
            eligible,
            truncated,
        })
    }

    /// Write a new kernel filter (reload) without a gap.
    pub fn set_filter(&mut self, filter: &KernelFilter) -> Result<(), SensorError> {
        self.plan = self.sensors.set_filter(filter)?;
        self.sensors.set_ops(&op_kinds(filter))?;
        self.scan_identity()
    }

    pub fn counters(&self) -> Result<KernelCounters, SensorError> {
        self.sensors.counters()
    }

    pub fn queue_drops(&self) -> Option<Arc<QueueDrops>> {
        self.reader.as_ref().map(|r| r.drops.clone())
    }

    pub fn table_stats(&self) -> TableStats {
        self.table.stats()
    }

    /// The on-demand kinds the loaded rules need that this kernel cannot
    /// report (none of their syscalls exists here, e.g. `module`).
    pub fn unavailable_kinds(&self) -> Vec<vigil_bpf::OpKind> {
        self.sensors.unavailable_ops()
    }

    /// Warn, once per load, about each enabled rule that can never match on
    /// this kernel because every event type it takes is unavailable here:
    /// the rule stays loaded (the same rule files work on every host) and is
    /// inactive, with the reason. Returns those (rule, reason) pairs.
    pub fn note_inactive_rules(&self, rules: &vigil_engine::RuleSet) -> Vec<(String, String)> {
        let gone = self.unavailable_kinds();
        let mut out = Vec::new();
        for r in rules.rules().filter(|r| r.enabled) {
            let lost: Vec<_> = r
                .events
                .iter()
                .filter_map(|t| vigil_bpf::OpKind::from_event_type(*t))
                .filter(|k| gone.contains(k))
                .collect();
            if lost.is_empty() || lost.len() != r.events.len() {
                continue;
            }
            let why = lost
                .iter()
                .map(|k| {
                    format!(
                        "`{}` events need {} which this kernel does not have",
                        k.as_str(),
                        k.syscalls().join("/")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(rule = %r.name, reason = %why, "rule inactive on this kernel");
            out.push((r.name, why));
        }
        out
    }

    pub fn hooks(&self) -> Vec<String> {
        self.sensors
            .hooks()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Stop the reader after draining the ring buffer; queued events stay
    /// readable through [`Live::try_next`].
    pub async fn stop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.stop().await;
        }
    }
}

/// The one tokio runtime of a live command (2 workers: the ring-buffer
/// reader and the event loop).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vigil")
        .enable_all()
        .build()
}

/// How long a one-shot command runs: `--duration S`, or (in effect) forever.
pub fn run_time(duration_secs: Option<f64>) -> std::time::Duration {
    duration_secs
        .map(|s| std::time::Duration::from_secs_f64(s.max(0.0)))
        .unwrap_or(std::time::Duration::from_secs(u64::MAX / 4))
}

/// The on-demand kinds `filter` does not drop: their hooks are attached.
pub fn op_kinds(filter: &KernelFilter) -> Vec<vigil_bpf::OpKind> {
    vigil_engine::EventType::ALL
        .into_iter()
        .filter(|t| !matches!(filter.for_type(*t), vigil_engine::filter::TypeFilter::Drop))
        .filter_map(vigil_bpf::OpKind::from_event_type)
        .collect()
}
