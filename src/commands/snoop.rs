//! `vigil snoop TYPE [--comm NAME] [--pid PID]`: BCC-style live tables of
//! one event type (execsnoop, opensnoop, tcpconnect, tcpaccept, tcpretrans,
//! exitsnoop columns), filtered in the kernel by the same first-stage filter
//! the rules use.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use vigil_engine::filter::{FilterSets, KernelFilter, TypeFilter};
use vigil_engine::{Detail, Event, EventType};

use crate::pipeline::Live;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// exec, open, connect, accept, retransmit or exit.
    #[arg(value_name = "TYPE")]
    pub kind: EventType,
    /// Only processes with this name (comm). Repeatable.
    #[arg(long)]
    pub comm: Vec<String>,
    /// Only this process id. Repeatable (with --comm: either matches).
    #[arg(long)]
    pub pid: Vec<i64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop after this many rows.
    #[arg(long)]
    pub count: Option<u64>,
}

/// The kernel filter for a snoop: only `kind`, narrowed by --comm/--pid.
pub fn snoop_filter(kind: EventType, comms: &[String], pids: &[i64]) -> KernelFilter {
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    f.types[kind.index()] = if comms.is_empty() && pids.is_empty() {
        TypeFilter::PassAll
    } else {
        TypeFilter::Match(FilterSets {
            comms: comms.iter().cloned().collect(),
            pids: pids.iter().copied().collect(),
            ..Default::default()
        })
    };
    f
}

pub fn header(kind: EventType) -> String {
    match kind {
        EventType::Exec => format!(
            "{:<8} {:<16} {:>7} {:>7} {:>5} ARGS",
            "TIME(s)", "PCOMM", "PID", "PPID", "UID"
        ),
        EventType::Open => format!(
            "{:<8} {:>7} {:<16} {:>4} {:>3} {:<24} PATH",
            "TIME(s)", "PID", "COMM", "FD", "ERR", "FLAGS"
        ),
        EventType::Connect => format!(
            "{:<8} {:>7} {:<16} {:<5} {:<39} {:>5} {:<39} {:>5} {:>4}",
            "TIME(s)", "PID", "COMM", "PROTO", "SADDR", "SPORT", "DADDR", "DPORT", "RET"
        ),
        EventType::Accept => format!(
            "{:<8} {:>7} {:<16} {:<2} {:<39} {:>5} {:<39} {:>5}",
            "TIME(s)", "PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT"
        ),
        EventType::Retransmit => format!(
            "{:<8} {:>7} {:<16} {:<2} {:<45} {:<2} {:<45} STATE",
            "TIME(s)", "PID", "COMM", "IP", "LADDR:LPORT", "T>", "RADDR:RPORT"
        ),
        EventType::Exit => format!(
            "{:<8} {:<16} {:>7} {:>7} {:>7} {:>8} EXIT",
            "TIME(s)", "PCOMM", "PID", "PPID", "TID", "AGE(s)"
        ),
        _ => format!(
            "{:<8} {:>7} {:<16} {:>5} DETAILS",
            "TIME(s)", "PID", "COMM", "RET"
        ),
    }
}

fn ip_ver(family: &str) -> &'static str {
    match family {
        "inet" => "4",
        "inet6" => "6",
        "unix" => "U",
        _ => "?",
    }
}

pub fn row(ev: &Event, t0: i64) -> String {
    let secs = (ev.time - t0) as f64 / 1e9;
    let p = &ev.proc;
    match &ev.detail {
        // on-demand kinds: their own fields, from the catalogue
        Detail::Op(_) => {
            let details: Vec<String> = vigil_engine::fields::FIELDS
                .iter()
                .filter(|d| !d.events.contains(EventType::Exec) && d.events.contains(ev.kind))
                .filter_map(|d| Some(format!("{}={}", d.name, ev.get(d.id)?.render())))
                .collect();
            format!(
                "{secs:<8.3} {:>7} {:<16} {:>5} {}",
                p.pid,
                p.name,
                ev.ret,
                details.join(" ")
            )
        }
        Detail::None => format!(
            "{secs:<8.3} {:<16} {:>7} {:>7} {:>5} {}",
            p.name, p.pid, p.ppid, p.uid, p.cmdline
        ),
        Detail::File(f) => {
            let (fd, err) = if ev.ret >= 0 {
                (ev.ret, 0)
            } else {
                (-1, -ev.ret)
            };
            let flags = vigil_engine::event::open_flag_names(f.flags).join("|");
            format!(
                "{secs:<8.3} {:>7} {:<16} {fd:>4} {err:>3} {flags:<24} {}",
                p.pid, p.name, f.path
            )
        }
        Detail::Net(n) if ev.kind == EventType::Accept => format!(
            "{secs:<8.3} {:>7} {:<16} {:<2} {:<39} {:>5} {:<39} {:>5}",
            p.pid,
            p.name,
            ip_ver(&n.family),
            n.daddr,
            n.dport,
            n.saddr,
            n.sport
        ),
        Detail::Net(n) => format!(
            "{secs:<8.3} {:>7} {:<16} {:<5} {:<39} {:>5} {:<39} {:>5} {:>4}",
            p.pid,
            p.name,
            if n.proto.is_empty() {
                &n.family
            } else {
                &n.proto
            },
            n.saddr,
            n.sport,
            n.daddr,
            n.dport,
            ev.ret
        ),
        Detail::Retransmit { net: n, state } => format!(
            "{secs:<8.3} {:>7} {:<16} {:<2} {:<45} {:<2} {:<45} {state}",
            p.pid,
            p.name,
            ip_ver(&n.family),
            format!("{}:{}", n.saddr, n.sport),
            "R>",
            format!("{}:{}", n.daddr, n.dport)
        ),
        Detail::Exit { code, signal } => {
            let age = ev.proc_duration() as f64 / 1e9;
            let how = if *signal != 0 {
                format!("signal {signal}")
            } else {
                format!("code {code}")
            };
            format!(
                "{secs:<8.3} {:<16} {:>7} {:>7} {:>7} {age:>8.2} {how}",
                p.name, p.pid, p.ppid, ev.tid
            )
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match snoop(args) {
        // `vigil snoop ... | head` closing the pipe is a normal end
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

fn snoop(args: Args) -> anyhow::Result<ExitCode> {
    let rt = crate::pipeline::runtime().context("starting the tokio runtime")?;
    rt.block_on(async move {
        let filter = snoop_filter(args.kind, &args.comm, &args.pid);
        let mut shutdown = crate::pipeline::Shutdown::install()?;
        let mut live = Live::start_ready(&filter)?;
        let deadline = tokio::time::sleep(crate::pipeline::run_time(args.duration));
        tokio::pin!(deadline);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", header(args.kind))?;
        out.flush()?;
        let t0 = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
        let mut rows = 0u64;
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = &mut deadline => break,
                ev = live.next() => {
                    let Some(le) = ev else { break };
                    if !le.eligible || le.event.kind != args.kind {
                        continue;
                    }
                    writeln!(out, "{}", row(&le.event, t0))?;
                    out.flush()?;
                    rows += 1;
                    if args.count.is_some_and(|c| rows >= c) {
                        break;
                    }
                }
            }
        }
        live.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vigil_engine::{FileInfo, Process};

    #[test]
    fn filter_narrows_only_the_snooped_type() {
        let f = snoop_filter(EventType::Open, &["cat".into()], &[]);
        assert_eq!(f.types[EventType::Exec.index()], TypeFilter::Drop);
        match &f.types[EventType::Open.index()] {
            TypeFilter::Match(s) => assert!(s.comms.contains("cat")),
            other => panic!("{other:?}"),
        }
        let f = snoop_filter(EventType::Connect, &[], &[]);
        assert_eq!(f.types[EventType::Connect.index()], TypeFilter::PassAll);
    }

    #[test]
    fn open_row_shows_fd_err_and_path() {
        let mut ev = Event::new(EventType::Open);
        ev.time = 2_500_000_000;
        ev.ret = -13;
        ev.proc = Arc::new(Process {
            pid: 42,
            name: "cat".into(),
            ..Default::default()
        });
        ev.detail = Detail::File(FileInfo {
            path: "/etc/shadow".into(),
            path_raw: "/etc/shadow".into(),
            flags: 0,
            ..Default::default()
        });
        let r = row(&ev, 0);
        assert!(r.starts_with("2.500"));
        assert!(r.contains(" 42 cat"));
        assert!(r.contains("  -1  13 O_RDONLY"));
        assert!(r.ends_with("/etc/shadow"));
    }
}
