//! `vigil snoop TYPE [OPTIONS]`: BCC-style live tables of
//! one event type (execsnoop, opensnoop, tcpconnect, tcpaccept, tcpretrans,
//! exitsnoop columns), filtered in the kernel by the same first-stage filter
//! the rules use (--comm/--pid) and in userspace (uid, ports, family, failed
//! opens). Each type is a subcommand with its own options and column legend
//! (`vigil snoop exec --help`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use vigil_engine::filter::{FilterSets, KernelFilter, TypeFilter};
use vigil_engine::{Detail, Event, EventType};

use vigil::pipeline::Live;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub kind: Kind,
}

/// Options every snoop takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Common {
    /// Only processes with this name (comm), filtered in the kernel. Repeatable.
    #[arg(long)]
    pub comm: Vec<String>,
    /// Only this process id, filtered in the kernel. Repeatable (with --comm: either matches).
    #[arg(long)]
    pub pid: Vec<i64>,
    /// Only processes of this user id.
    #[arg(short = 'u', long = "uid", value_name = "UID")]
    pub uid: Option<i64>,
    /// TIME column as wall-clock HH:MM:SS (UTC) instead of seconds since start.
    #[arg(short = 'T', long = "time")]
    pub wall_time: bool,
    /// TIME(s) column: seconds since the snoop started (the default; BCC's -t).
    #[arg(short = 't', long = "timestamp", conflicts_with = "wall_time")]
    pub timestamp: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop after this many rows.
    #[arg(long)]
    pub count: Option<u64>,
}

/// Address-family and port options of the network snoops.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetOpts {
    /// IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Only this port (the remote port of a connect, the local port of an
    /// accept). Repeatable.
    #[arg(short = 'P', long = "port", value_name = "PORT")]
    pub port: Vec<i64>,
}

const EXEC_LEGEND: &str = "Columns (execsnoop):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PCOMM    process name (comm) after the exec
  PID      process id;  PPID  parent process id;  UID  real user id
  RET      exec result: 0, or with -x -errno of an exec the kernel refused
           (-2 ENOENT, -13 EACCES, -8 ENOEXEC, ...)
  ARGS     argv, each argument with spaces or quotes double-quoted; for a
           failed exec the file it asked for (absolute), as argv is not kept";
const OPEN_LEGEND: &str = "Columns (opensnoop):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PID      process id;  COMM  process name
  FD       file descriptor returned, -1 on failure
  ERR      errno of a failed open (13 EACCES, 2 ENOENT, ...), 0 on success
  FLAGS    (-e) open flags, O_RDONLY|O_CLOEXEC...
  PATH     the path as resolved by vigil (absolute, normalised)";
const CONNECT_LEGEND: &str = "Columns (tcpconnect):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PID      process id;  COMM  process name;  IP  4 or 6 (U: unix socket)
  PROTO    tcp, udp (or the family for other sockets)
  SADDR SPORT  local address and port;  DADDR DPORT  remote address and port
  RET      connect(2) result (0, or -errno; -115 EINPROGRESS for non-blocking)
Address columns are as wide as an IPv4 address (with -6, an IPv6 one); a
longer address widens its own row.";
const ACCEPT_LEGEND: &str = "Columns (tcpaccept):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PID      process id;  COMM  process name;  IP  4 or 6
  RADDR RPORT  remote (peer) address and port;  LADDR LPORT  local address and port
Address columns are as wide as an IPv4 address (with -6, an IPv6 one); a
longer address widens its own row.";
const RETRANS_LEGEND: &str = "Columns (tcpretrans):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PID      process id at the time of the retransmit (often 0: softirq)
  COMM     process name;  IP  4 or 6
  LADDR:LPORT T> RADDR:RPORT  the connection, R> marks a retransmit
  STATE    TCP state of the socket";
const EXIT_LEGEND: &str = "Columns (exitsnoop):
  TIME(s)  seconds since the snoop started (-T: wall-clock HH:MM:SS, UTC)
  PCOMM    process name;  PID  PPID  TID  process, parent and thread ids
  AGE(s)   how long the process ran
  EXIT     `code N` for exit(N), `signal N` when a signal killed it";

/// The event type to watch, each with its own options and column legend.
#[derive(clap::Subcommand, Debug)]
pub enum Kind {
    /// Process executions (like BCC's execsnoop).
    #[command(after_help = EXEC_LEGEND)]
    Exec {
        #[command(flatten)]
        common: Common,
        /// Include failed execs (RET is -errno; hooks execve/execveat's exits).
        #[arg(short = 'x', long = "fails")]
        fails: bool,
    },
    /// File opens (like BCC's opensnoop).
    #[command(after_help = OPEN_LEGEND)]
    Open {
        #[command(flatten)]
        common: Common,
        /// Only failed opens.
        #[arg(short = 'x', long = "failed")]
        failed: bool,
        /// Only processes whose name contains NAME (userspace; --comm is exact, in the kernel).
        #[arg(short = 'n', long = "name", value_name = "NAME")]
        name: Option<String>,
        /// Extended output: the FLAGS column.
        #[arg(short = 'e', long = "extended")]
        extended: bool,
    },
    /// Outbound connects (like BCC's tcpconnect).
    #[command(after_help = CONNECT_LEGEND)]
    Connect {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        net: NetOpts,
    },
    /// Accepted connections (like BCC's tcpaccept).
    #[command(after_help = ACCEPT_LEGEND)]
    Accept {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        net: NetOpts,
    },
    /// TCP retransmissions (like BCC's tcpretrans).
    #[command(after_help = RETRANS_LEGEND)]
    Retransmit {
        #[command(flatten)]
        common: Common,
    },
    /// Process exits (like BCC's exitsnoop).
    #[command(after_help = EXIT_LEGEND)]
    Exit {
        #[command(flatten)]
        common: Common,
    },
}

/// What to show, settled from the subcommand's options.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub kind: Option<EventType>,
    pub common: Common,
    pub failed: bool,
    /// exec: failed execs too (`exec_failed` events).
    pub exec_fails: bool,
    pub name: Option<String>,
    pub extended: bool,
    pub net: NetOpts,
}

impl Kind {
    pub fn view(&self) -> View {
        let (kind, common) = match self {
            Kind::Exec { common, .. } => (EventType::Exec, common),
            Kind::Open { common, .. } => (EventType::Open, common),
            Kind::Connect { common, .. } => (EventType::Connect, common),
            Kind::Accept { common, .. } => (EventType::Accept, common),
            Kind::Retransmit { common } => (EventType::Retransmit, common),
            Kind::Exit { common } => (EventType::Exit, common),
        };
        let mut v = View {
            kind: Some(kind),
            common: common.clone(),
            ..View::default()
        };
        match self {
            Kind::Open {
                failed,
                name,
                extended,
                ..
            } => {
                v.failed = *failed;
                v.name = name.clone();
                v.extended = *extended;
            }
            Kind::Connect { net, .. } | Kind::Accept { net, .. } => v.net = net.clone(),
            Kind::Exec { fails, .. } => v.exec_fails = *fails,
            _ => {}
        }
        v
    }
}

impl View {
    fn kind(&self) -> EventType {
        self.kind.unwrap_or(EventType::Exec)
    }

    /// The userspace filters (the kernel already applied --comm/--pid).
    pub fn keeps(&self, ev: &Event) -> bool {
        let failed_exec = self.exec_fails && ev.kind == EventType::ExecFailed;
        if ev.kind != self.kind() && !failed_exec {
            return false;
        }
        if self.common.uid.is_some_and(|u| ev.proc.uid != u) {
            return false;
        }
        if self.failed && ev.ret >= 0 {
            return false;
        }
        if let Some(n) = &self.name {
            if !ev.proc.name.contains(n.as_str()) {
                return false;
            }
        }
        if let Detail::Net(n) = &ev.detail {
            if (self.net.ipv4 && n.family != "inet") || (self.net.ipv6 && n.family != "inet6") {
                return false;
            }
            let port = if ev.kind == EventType::Accept {
                n.sport
            } else {
                n.dport
            };
            if !self.net.port.is_empty() && !self.net.port.contains(&port) {
                return false;
            }
        }
        true
    }

    /// Width of the address columns: an IPv4 address, or an IPv6 one with -6.
    fn addr_w(&self) -> usize {
        if self.net.ipv6 {
            39
        } else {
            15
        }
    }

    fn time_head(&self) -> &'static str {
        if self.common.wall_time {
            "TIME"
        } else {
            "TIME(s)"
        }
    }
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

pub fn header(v: &View) -> String {
    let t = v.time_head();
    let w = v.addr_w();
    match v.kind() {
        EventType::Exec => format!(
            "{t:<8} {:<16} {:>7} {:>7} {:>5} {:>3} ARGS",
            "PCOMM", "PID", "PPID", "UID", "RET"
        ),
        EventType::Open if v.extended => format!(
            "{t:<8} {:>7} {:<16} {:>4} {:>3} {:<24} PATH",
            "PID", "COMM", "FD", "ERR", "FLAGS"
        ),
        EventType::Open => format!(
            "{t:<8} {:>7} {:<16} {:>4} {:>3} PATH",
            "PID", "COMM", "FD", "ERR"
        ),
        EventType::Connect => format!(
            "{t:<8} {:>7} {:<16} {:<2} {:<5} {:<w$} {:>5} {:<w$} {:>5} {:>4}",
            "PID", "COMM", "IP", "PROTO", "SADDR", "SPORT", "DADDR", "DPORT", "RET"
        ),
        EventType::Accept => format!(
            "{t:<8} {:>7} {:<16} {:<2} {:<w$} {:>5} {:<w$} {:>5}",
            "PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT"
        ),
        EventType::Retransmit => format!(
            "{t:<8} {:>7} {:<16} {:<2} {:<w$} {:<2} {:<w$} STATE",
            "PID",
            "COMM",
            "IP",
            "LADDR:LPORT",
            "T>",
            "RADDR:RPORT",
            w = w + 6
        ),
        EventType::Exit => format!(
            "{t:<8} {:<16} {:>7} {:>7} {:>7} {:>8} EXIT",
            "PCOMM", "PID", "PPID", "TID", "AGE(s)"
        ),
        _ => format!("{t:<8} {:>7} {:<16} {:>5} DETAILS", "PID", "COMM", "RET"),
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

/// An argument as BCC's `execsnoop -q` shows it: double-quoted when it has
/// spaces, quotes or nothing at all.
fn quote_arg(a: &str) -> String {
    if a.is_empty() || a.contains([' ', '\t', '"', '\'', '\\']) {
        format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        a.to_string()
    }
}

/// The TIME cell: seconds since `t0`, or wall-clock HH:MM:SS (UTC) with -T.
fn time_cell(v: &View, time: i64, t0: i64) -> String {
    if v.common.wall_time {
        let s = time.div_euclid(1_000_000_000).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:.3}", (time - t0) as f64 / 1e9)
    }
}

pub fn row(v: &View, ev: &Event, t0: i64) -> String {
    let t = time_cell(v, ev.time, t0);
    let w = v.addr_w();
    let p = &ev.proc;
    match &ev.detail {
        // a failed exec in execsnoop's columns: the caller, -errno, the file
        Detail::Op(o) if ev.kind == EventType::ExecFailed => format!(
            "{t:<8} {:<16} {:>7} {:>7} {:>5} {:>3} {}",
            p.name,
            p.pid,
            p.ppid,
            p.uid,
            ev.ret,
            quote_arg(if o.path.is_empty() {
                &o.path_raw
            } else {
                &o.path
            })
        ),
        // on-demand kinds: their own fields, from the catalogue
        Detail::Op(_) => {
            let details: Vec<String> = vigil_engine::fields::FIELDS
                .iter()
                .filter(|d| !d.events.contains(EventType::Exec) && d.events.contains(ev.kind))
                .filter_map(|d| Some(format!("{}={}", d.name, ev.get(d.id)?.render())))
                .collect();
            format!(
                "{t:<8} {:>7} {:<16} {:>5} {}",
                p.pid,
                p.name,
                ev.ret,
                details.join(" ")
            )
        }
        Detail::None => {
            let argv0 = p.cmdline.split(' ').next().unwrap_or("");
            let mut args = vec![quote_arg(if argv0.is_empty() { &p.exe } else { argv0 })];
            args.extend(p.args.iter().map(|a| quote_arg(a)));
            format!(
                "{t:<8} {:<16} {:>7} {:>7} {:>5} {:>3} {}",
                p.name,
                p.pid,
                p.ppid,
                p.uid,
                ev.ret.min(0),
                args.join(" ")
            )
        }
        Detail::File(f) => {
            let (fd, err) = if ev.ret >= 0 {
                (ev.ret, 0)
            } else {
                (-1, -ev.ret)
            };
            if v.extended {
                let flags = vigil_engine::event::open_flag_names(f.flags).join("|");
                format!(
                    "{t:<8} {:>7} {:<16} {fd:>4} {err:>3} {flags:<24} {}",
                    p.pid, p.name, f.path
                )
            } else {
                format!(
                    "{t:<8} {:>7} {:<16} {fd:>4} {err:>3} {}",
                    p.pid, p.name, f.path
                )
            }
        }
        Detail::Net(n) if ev.kind == EventType::Accept => format!(
            "{t:<8} {:>7} {:<16} {:<2} {:<w$} {:>5} {:<w$} {:>5}",
            p.pid,
            p.name,
            ip_ver(&n.family),
            n.daddr,
            n.dport,
            n.saddr,
            n.sport
        ),
        Detail::Net(n) => format!(
            "{t:<8} {:>7} {:<16} {:<2} {:<5} {:<w$} {:>5} {:<w$} {:>5} {:>4}",
            p.pid,
            p.name,
            ip_ver(&n.family),
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
            "{t:<8} {:>7} {:<16} {:<2} {:<w$} {:<2} {:<w$} {state}",
            p.pid,
            p.name,
            ip_ver(&n.family),
            format!("{}:{}", n.saddr, n.sport),
            "R>",
            format!("{}:{}", n.daddr, n.dport),
            w = w + 6
        ),
        Detail::Exit { code, signal } => {
            let age = ev.proc_duration() as f64 / 1e9;
            let how = if *signal != 0 {
                format!("signal {signal}")
            } else {
                format!("code {code}")
            };
            format!(
                "{t:<8} {:<16} {:>7} {:>7} {:>7} {age:>8.2} {how}",
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
    let rt = vigil::pipeline::runtime().context("starting the tokio runtime")?;
    let v = args.kind.view();
    rt.block_on(async move {
        let mut filter = snoop_filter(v.kind(), &v.common.comm, &v.common.pid);
        if v.exec_fails {
            // the execve/execveat exit hooks, narrowed like the execs
            filter.types[EventType::ExecFailed.index()] =
                filter.types[EventType::Exec.index()].clone();
        }
        let mut signals = vigil::daemon::Signals::install_shutdown()?;
        let mut live = Live::start_ready(&filter)?;
        let deadline = tokio::time::sleep(vigil::pipeline::run_time(v.common.duration));
        tokio::pin!(deadline);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", header(&v))?;
        out.flush()?;
        let t0 = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
        let mut rows = 0u64;
        loop {
            tokio::select! {
                _ = signals.shutdown() => break,
                _ = &mut deadline => break,
                ev = live.next() => {
                    let Some(le) = ev else { break };
                    if !le.eligible || !v.keeps(&le.event) {
                        continue;
                    }
                    writeln!(out, "{}", row(&v, &le.event, t0))?;
                    out.flush()?;
                    rows += 1;
                    if v.common.count.is_some_and(|c| rows >= c) {
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
        let v = View {
            kind: Some(EventType::Open),
            extended: true,
            ..View::default()
        };
        let r = row(&v, &ev, 0);
        assert!(r.starts_with("2.500"));
        assert!(r.contains(" 42 cat"));
        assert!(r.contains("  -1  13 O_RDONLY"));
        assert!(r.ends_with("/etc/shadow"));
        let plain = View {
            extended: false,
            ..v.clone()
        };
        assert!(!row(&plain, &ev, 0).contains("O_RDONLY"));
        assert!(!header(&plain).contains("FLAGS") && header(&v).contains("FLAGS"));
        let failed_only = View {
            failed: true,
            ..v.clone()
        };
        assert!(failed_only.keeps(&ev));
        ev.ret = 3;
        assert!(!failed_only.keeps(&ev) && v.keeps(&ev));
    }

    fn view(args: &[&str]) -> View {
        use clap::Parser;
        let mut argv = vec!["vigil", "snoop"];
        argv.extend_from_slice(args);
        match crate::Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Snoop(a) => a.kind.view(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn headers_per_type_and_option() {
        let cases: [(&[&str], &str); 8] = [
            (&["exec"], "TIME(s)  PCOMM                PID    PPID   UID RET ARGS"),
            (&["exec", "-T"], "TIME     PCOMM                PID    PPID   UID RET ARGS"),
            (&["open"], "TIME(s)      PID COMM               FD ERR PATH"),
            (&["open", "-e"], "TIME(s)      PID COMM               FD ERR FLAGS                    PATH"),
            (&["connect"], "TIME(s)      PID COMM             IP PROTO SADDR           SPORT DADDR           DPORT  RET"),
            (&["connect", "-6"], "TIME(s)      PID COMM             IP PROTO SADDR                                   SPORT DADDR                                   DPORT  RET"),
            (&["accept", "-4"], "TIME(s)      PID COMM             IP RADDR           RPORT LADDR           LPORT"),
            (&["exit"], "TIME(s)  PCOMM                PID    PPID     TID   AGE(s) EXIT"),
        ];
        for (args, want) in cases {
            assert_eq!(header(&view(args)), want, "{args:?}");
        }
        // Lines fit a terminal without -6: the old 39-wide columns made 130+.
        assert!(header(&view(&["connect"])).len() < 100);
    }

    #[test]
    fn options_filter_rows() {
        let net = |family: &str, dport: i64, uid: i64| {
            let mut ev = Event::new(EventType::Connect);
            ev.proc = Arc::new(Process {
                uid,
                ..Default::default()
            });
            ev.detail = Detail::Net(vigil_engine::NetInfo {
                proto: "tcp".into(),
                family: family.into(),
                saddr: "10.0.0.1".into(),
                sport: 40000,
                daddr: "10.0.0.2".into(),
                dport,
            });
            ev
        };
        let v = view(&["connect", "-4", "-P", "443", "-u", "1000"]);
        assert!(v.keeps(&net("inet", 443, 1000)));
        assert!(!v.keeps(&net("inet6", 443, 1000)), "-4");
        assert!(!v.keeps(&net("inet", 80, 1000)), "-P");
        assert!(!v.keeps(&net("inet", 443, 0)), "-u");
        assert!(!v.keeps(&Event::new(EventType::Exec)), "other type");
        let r = row(&view(&["connect"]), &net("inet", 443, 0), 0);
        assert!(
            r.contains("4  tcp   10.0.0.1        40000 10.0.0.2          443    0"),
            "{r}"
        );
        let v = view(&["open", "-n", "ngin"]);
        let mut ev = Event::new(EventType::Open);
        ev.proc = Arc::new(Process {
            name: "nginx".into(),
            ..Default::default()
        });
        assert!(v.keeps(&ev));
        ev.proc = Arc::new(Process {
            name: "cat".into(),
            ..Default::default()
        });
        assert!(!v.keeps(&ev));
    }

    #[test]
    fn failed_execs_only_with_x_in_exec_columns() {
        let v = Kind::Exec {
            common: Common::default(),
            fails: false,
        }
        .view();
        let mut ev = Event::new(EventType::ExecFailed);
        ev.ret = -2;
        if let Detail::Op(o) = &mut ev.detail {
            o.path = "/tmp/no such".into();
            o.path_raw = "no such".into();
        }
        ev.proc = std::sync::Arc::new(vigil_engine::Process {
            name: "bash".into(),
            pid: 42,
            ppid: 1,
            uid: 1000,
            ..Default::default()
        });
        assert!(!v.keeps(&ev));
        let x = Kind::Exec {
            common: Common::default(),
            fails: true,
        }
        .view();
        assert!(x.keeps(&ev) && x.keeps(&Event::new(EventType::Exec)));
        assert!(!x.keeps(&Event::new(EventType::Open)));
        assert_eq!(header(&x), header(&v));
        let r = row(&x, &ev, 0);
        assert!(
            r.ends_with("bash                  42       1  1000  -2 \"/tmp/no such\""),
            "{r}"
        );
    }

    #[test]
    fn exec_args_are_quoted() {
        assert_eq!(quote_arg("plain"), "plain");
        assert_eq!(quote_arg("two words"), "\"two words\"");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
        let mut ev = Event::new(EventType::Exec);
        ev.time = 61_000_000_000;
        ev.proc = Arc::new(Process {
            pid: 7,
            ppid: 1,
            uid: 1000,
            name: "bash".into(),
            cmdline: "/bin/bash -c true snoop arg".into(),
            args: vec!["-c".into(), "true snoop arg".into()],
            ..Default::default()
        });
        let r = row(&view(&["exec"]), &ev, 0);
        assert!(
            r.ends_with("1000   0 /bin/bash -c \"true snoop arg\""),
            "{r}"
        );
        assert!(row(&view(&["exec", "-T"]), &ev, 0).starts_with("00:01:01 "));
    }

    #[test]
    fn each_type_has_its_own_help_with_a_legend() {
        use clap::CommandFactory;
        let mut cmd = crate::Cli::command();
        let snoop = cmd.find_subcommand_mut("snoop").unwrap();
        for (t, legend, opt) in [
            ("exec", "Columns (execsnoop)", "--uid"),
            ("open", "Columns (opensnoop)", "--extended"),
            ("connect", "Columns (tcpconnect)", "--port"),
            ("accept", "Columns (tcpaccept)", "--ipv6"),
            ("retransmit", "Columns (tcpretrans)", "--comm"),
            ("exit", "Columns (exitsnoop)", "--count"),
        ] {
            let help = snoop
                .find_subcommand_mut(t)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains(legend) && help.contains(opt), "{t}: {help}");
        }
    }
}
