//! Daemon lifecycle: `vigil run` itself ([`run`], the event loop in
//! `daemon/run.rs`, its health bookkeeping in `daemon/health.rs`), systemd
//! readiness notification (`sd_notify` over `$NOTIFY_SOCKET`, no libsystemd)
//! and the one signal handler every live command uses ([`Signals`]: SIGHUP ->
//! reload, first SIGTERM/SIGINT -> graceful shutdown, second -> exit at once
//! with 128 + the signal's number).
//!
//! Wiring (in [`run`], inside the tokio runtime):
//! ```ignore
//! let mut signals = daemon::Signals::install()?;
//! daemon::notify(&[NotifyState::Ready, NotifyState::Status("watching")])?; // after sensors attach
//! loop {
//!     tokio::select! {
//!         s = signals.recv() => match s {
//!             DaemonSignal::Reload => { router.reopen_files(); watcher.trigger(); }
//!             DaemonSignal::Shutdown(_) => break,
//!         },
//!         // ... ring buffer, reload results ...
//!     }
//! }
//! daemon::notify(&[NotifyState::Stopping])?;
//! signals.exit_on_second_shutdown();  // a second SIGTERM/SIGINT skips the flush
//! router.shutdown(timeout).await;
//! ```

mod health;
mod run;

pub use run::{run, Options, RunError};

use std::os::unix::net::UnixDatagram;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{debug, warn};

/// One `KEY=VALUE` line of an sd_notify message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyState<'a> {
    /// `READY=1`: startup finished (send after every sensor is attached).
    Ready,
    /// `RELOADING=1` plus `MONOTONIC_USEC=` (what `Type=notify-reload` requires); follow with `Ready`.
    Reloading,
    /// `STOPPING=1`: graceful shutdown started.
    Stopping,
    /// `STATUS=...`: free text shown by `systemctl status` (newlines become spaces).
    Status(&'a str),
    /// `MAINPID=...`.
    MainPid(u32),
    /// `WATCHDOG=1`.
    Watchdog,
}

impl NotifyState<'_> {
    fn render(&self, out: &mut String) {
        match self {
            NotifyState::Ready => out.push_str("READY=1\n"),
            NotifyState::Reloading => {
                out.push_str("RELOADING=1\n");
                out.push_str(&format!("MONOTONIC_USEC={}\n", monotonic_usec()));
            }
            NotifyState::Stopping => out.push_str("STOPPING=1\n"),
            NotifyState::Status(s) => {
                out.push_str("STATUS=");
                out.push_str(&s.replace(['\n', '\r'], " "));
                out.push('\n');
            }
            NotifyState::MainPid(p) => out.push_str(&format!("MAINPID={p}\n")),
            NotifyState::Watchdog => out.push_str("WATCHDOG=1\n"),
        }
    }
}

/// The datagram `notify` sends for `states`.
pub fn notify_message(states: &[NotifyState]) -> String {
    let mut s = String::new();
    for st in states {
        st.render(&mut s);
    }
    s
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// Errors sending a notification.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is not a unix socket path or @abstract name")]
    BadAddress(String),
    #[error("sd_notify to {socket:?} failed: {source}")]
    Io {
        socket: String,
        #[source]
        source: std::io::Error,
    },
}

/// Sends `states` to the service manager if `$NOTIFY_SOCKET` is set. Returns `Ok(false)` when it
/// is not (not started by systemd, or `Type=` is not notify), `Ok(true)` when sent.
pub fn notify(states: &[NotifyState]) -> Result<bool, NotifyError> {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(s) if !s.is_empty() => notify_to(&s, states).map(|()| true),
        _ => {
            debug!("sd_notify: NOTIFY_SOCKET not set, nothing sent");
            Ok(false)
        }
    }
}

/// Sends `states` to the datagram socket `socket`: a filesystem path (`/run/systemd/notify`) or
/// an abstract name written `@name`.
pub fn notify_to(socket: &str, states: &[NotifyState]) -> Result<(), NotifyError> {
    let msg = notify_message(states);
    let io = |source| NotifyError::Io {
        socket: socket.to_string(),
        source,
    };
    let sock = UnixDatagram::unbound().map_err(io)?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|_| NotifyError::BadAddress(socket.to_string()))?;
        sock.send_to_addr(msg.as_bytes(), &addr).map_err(io)?;
    } else if socket.starts_with('/') {
        sock.send_to(msg.as_bytes(), socket).map_err(io)?;
    } else {
        return Err(NotifyError::BadAddress(socket.to_string()));
    }
    Ok(())
}

/// Which signal asked for shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSignal {
    Term,
    Int,
}

impl std::fmt::Display for ShutdownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShutdownSignal::Term => "SIGTERM",
            ShutdownSignal::Int => "SIGINT",
        })
    }
}

impl ShutdownSignal {
    /// Conventional exit status for dying by this signal (128 + signo).
    pub fn exit_code(self) -> i32 {
        128 + match self {
            ShutdownSignal::Term => libc::SIGTERM,
            ShutdownSignal::Int => libc::SIGINT,
        }
    }
}

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonSignal {
    /// SIGHUP: reload rules and config, reopen log files.
    Reload,
    /// SIGTERM / SIGINT: flush and stop.
    Shutdown(ShutdownSignal),
}

/// The signal streams of a live command. Installing replaces the default
/// actions of SIGTERM and SIGINT (and SIGHUP for the daemon) for the whole
/// process; install before READY=1 is sent, so an early signal is never
/// lost to the default action.
pub struct Signals {
    term: Signal,
    int: Signal,
    /// SIGHUP, for the daemon only: a one-shot command (`snoop`, `record`)
    /// keeps the default action (a closed terminal ends it).
    hup: Option<Signal>,
}

impl Signals {
    /// The daemon's handlers: SIGTERM, SIGINT and SIGHUP. Must be called
    /// inside a tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: Some(signal(SignalKind::hangup())?),
            ..Signals::install_shutdown()?
        })
    }

    /// SIGTERM and SIGINT only, for the one-shot live commands. Must be
    /// called inside a tokio runtime.
    pub fn install_shutdown() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: None,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> DaemonSignal {
        let Signals { term, int, hup } = self;
        loop {
            let hup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let got = tokio::select! {
                v = term.recv() => v.map(|()| DaemonSignal::Shutdown(ShutdownSignal::Term)),
                v = int.recv() => v.map(|()| DaemonSignal::Shutdown(ShutdownSignal::Int)),
                v = hup => v.map(|()| DaemonSignal::Reload),
            };
            match got {
                Some(s) => return s,
                // A stream ends only if the runtime's signal driver is gone; wait on the others.
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Waits for the next SIGTERM or SIGINT (a SIGHUP meanwhile is ignored).
    pub async fn shutdown(&mut self) -> ShutdownSignal {
        loop {
            match self.recv().await {
                DaemonSignal::Shutdown(s) => return s,
                DaemonSignal::Reload => debug!("SIGHUP ignored: nothing to reload"),
            }
        }
    }

    /// Call when graceful shutdown starts: spawns a task that runs `on_second` at the next
    /// SIGTERM/SIGINT (SIGHUP is ignored from now on).
    pub fn on_second_shutdown<F>(mut self, on_second: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce(ShutdownSignal) + Send + 'static,
    {
        tokio::spawn(async move { on_second(self.shutdown().await) })
    }

    /// [`Signals::on_second_shutdown`] that exits the process at once (status 128 + signo),
    /// skipping whatever flush is still running.
    pub fn exit_on_second_shutdown(self) -> tokio::task::JoinHandle<()> {
        self.on_second_shutdown(|s| {
            warn!("second {s}: exiting without finishing the flush");
            std::process::exit(s.exit_code());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_format() {
        let m = notify_message(&[
            NotifyState::Ready,
            NotifyState::Status("2 rules\nloaded"),
            NotifyState::MainPid(42),
        ]);
        assert_eq!(m, "READY=1\nSTATUS=2 rules loaded\nMAINPID=42\n");
        let r = notify_message(&[NotifyState::Reloading]);
        let mut lines = r.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("MONOTONIC_USEC line");
        assert!(usec > 0);
    }

    #[test]
    fn relative_socket_is_rejected() {
        assert!(matches!(
            notify_to("run/notify", &[NotifyState::Ready]),
            Err(NotifyError::BadAddress(_))
        ));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ShutdownSignal::Term.exit_code(), 143);
        assert_eq!(ShutdownSignal::Int.exit_code(), 130);
    }
}
