//! vigil's kernel side: the eBPF programs (`src/bpf/vigil.bpf.c`, compiled by
//! `build.rs` and embedded), their loader ([`Sensors`]), the first-stage
//! filter maps ([`Sensors::set_filter`]), per-type kernel counters, and the
//! ring-buffer reader that decodes records into [`RawEvent`]s on a bounded
//! tokio channel. Turning raw events into engine events (process table,
//! path resolution) happens in the binary's pipeline.

pub mod decode;
pub mod filter;
pub mod identity;
pub mod reader;
pub mod sensors;
pub mod time;
pub mod tracefs;

pub use decode::{DecodeError, OpKind, RawBody, RawEvent, RawKind, RawOp};
pub use filter::FilterPlan;
pub use identity::Identity;
pub use reader::{QueueDrops, Reader};
pub use sensors::{KernelCounters, SensorError, SensorOptions, Sensors, TypeCounters};
