//! The ring-buffer reader: a tokio task that waits on the ring buffer's
//! epoll fd ([`AsyncFd`]), consumes records, decodes them and `try_send`s
//! them into a bounded channel. A full channel is a counted drop
//! ([`QueueDrops`]), never a block.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libbpf_rs::{RingBuffer, RingBufferBuilder};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::decode::{decode, RawEvent, RawKind};
use crate::sensors::{SensorError, Sensors};

/// Userspace drops per [`RawKind`] (channel full) and undecodable records.
#[derive(Debug, Default)]
pub struct QueueDrops {
    pub per_kind: [AtomicU64; RawKind::COUNT],
    pub decode_errors: AtomicU64,
}

impl QueueDrops {
    pub fn get(&self, k: RawKind) -> u64 {
        self.per_kind[k as usize].load(Ordering::Relaxed)
    }
    pub fn total(&self) -> u64 {
        self.per_kind
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }
}

struct EpollFd(RawFd);

impl std::os::fd::AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A running reader task.
pub struct Reader {
    pub drops: Arc<QueueDrops>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Reader {
    /// Start reading `sensors`' ring buffer into `tx`. Must be called inside
    /// a tokio runtime. The ring buffer stays valid while the task runs
    /// because it holds its own handle on the map.
    pub fn spawn(sensors: &Sensors, tx: mpsc::Sender<RawEvent>) -> Result<Reader, SensorError> {
        let drops = Arc::new(QueueDrops::default());
        let d = drops.clone();
        let map =
            libbpf_rs::MapHandle::try_from(&sensors.maps.events).map_err(|e| SensorError::Map {
                map: "events",
                reason: e.to_string(),
            })?;
        let mut b = RingBufferBuilder::new();
        b.add(&map, move |data: &[u8]| {
            match decode(data) {
                Ok(ev) => {
                    let k = ev.kind;
                    if tx.try_send(ev).is_err() {
                        d.per_kind[k as usize].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    d.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "undecodable ring buffer record");
                }
            }
            0
        })
        .map_err(|e| SensorError::Map {
            map: "events",
            reason: e.to_string(),
        })?;
        let rb = b.build().map_err(|e| SensorError::Map {
            map: "events",
            reason: e.to_string(),
        })?;
        // SAFETY: the epoll fd belongs to `rb`, which lives in the task next
        // to the AsyncFd and is dropped only after it (see `run`).
        let afd =
            unsafe { AsyncFd::register_with_interest(EpollFd(rb.epoll_fd()), Interest::READABLE) }
                .map_err(|e| SensorError::Map {
                    map: "events",
                    reason: format!("registering the ring buffer with tokio: {e}"),
                })?;
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            run(rb, afd, map, &mut stop_rx).await;
        });
        Ok(Reader { drops, stop, task })
    }

    /// Drain what is in the ring buffer, then stop the task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    rb: RingBuffer<'static>,
    afd: AsyncFd<EpollFd>,
    _map: libbpf_rs::MapHandle,
    stop: &mut watch::Receiver<bool>,
) {
    // Records written before the task started.
    let _ = rb.consume();
    // High-rate records wake the reader at most once a millisecond per CPU
    // (see `rb_flags` in emit.bpf.h); this 5 ms consume delivers the tail of
    // a burst that no later record woke, bounds the latency of any missed
    // wake-up, and is one load of the producer position when the ring is
    // empty. Lifecycle records and a backlog over 512 KiB wake it at once.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missed = 0u64;
    loop {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    let _ = rb.consume();
                    break;
                }
            }
            guard = afd.readable() => {
                match guard {
                    Ok(mut g) => {
                        // Re-arm before consuming: a record written during
                        // consume() must wake us again.
                        g.clear_ready();
                        if let Err(e) = rb.consume() {
                            tracing::warn!(error = %e, "ring buffer consume failed");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "ring buffer poll failed; reader stops");
                        break;
                    }
                }
            }
            _ = tick.tick() => {
                let n = rb.consume_raw();
                if n < 0 {
                    missed += 1;
                    if missed.is_power_of_two() {
                        tracing::warn!(error = n, times = missed, "ring buffer consume failed");
                    }
                }
            }
        }
    }
    // AsyncFd must deregister before the ring buffer (which owns the epoll fd) closes.
    drop(afd);
    drop(rb);
}
