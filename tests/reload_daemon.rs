//! Daemon lifecycle helpers against real sockets and real signals: sd_notify to a
//! datagram socket bound by the test (path and abstract), `$NOTIFY_SOCKET`
//! handling, and SIGHUP / SIGTERM / second-SIGINT behaviour in a child process
//! (this test binary re-run with a filter, so the signals hit only the child).

use std::io::{BufRead, BufReader};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vigil::daemon;

use daemon::{DaemonSignal, NotifyState, ShutdownSignal, Signals};

fn recv_msg(sock: &UnixDatagram) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification arrives");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn notify_to_path_socket() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    daemon::notify_to(
        path.to_str().unwrap(),
        &[NotifyState::Ready, NotifyState::Status("12 rules loaded")],
    )
    .unwrap();
    assert_eq!(recv_msg(&sock), "READY=1\nSTATUS=12 rules loaded\n");
    daemon::notify_to(path.to_str().unwrap(), &[NotifyState::Stopping]).unwrap();
    assert_eq!(recv_msg(&sock), "STOPPING=1\n");
}

#[test]
fn notify_to_abstract_socket() {
    let name = format!("vigil-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    daemon::notify_to(&format!("@{name}"), &[NotifyState::Reloading]).unwrap();
    let msg = recv_msg(&sock);
    assert!(msg.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{msg:?}");
}

#[test]
fn notify_to_missing_socket_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("nobody-listens");
    let err = daemon::notify_to(path.to_str().unwrap(), &[NotifyState::Ready]).unwrap_err();
    assert!(err.to_string().contains("nobody-listens"), "{err}");
}

/// Re-runs this test binary filtered to one `#[ignore]`d child test, with `env` set.
fn child(test: &str, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("VIGIL_TEST_CHILD", "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
#[ignore = "child process of notify_reads_notify_socket_env"]
fn child_notify_env() {
    if std::env::var_os("VIGIL_TEST_CHILD").is_none() {
        return;
    }
    let sent = daemon::notify(&[NotifyState::Ready]).unwrap();
    println!("SENT={sent}");
}

#[test]
fn notify_reads_notify_socket_env() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let out = child(
        "child_notify_env",
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SENT=true"));
    assert_eq!(recv_msg(&sock), "READY=1\n");

    let out = child("child_notify_env", &[])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SENT=false"),
        "without NOTIFY_SOCKET nothing is sent"
    );
}

#[test]
#[ignore = "child process of signals_reload_then_graceful_then_forced_exit"]
fn child_signals() {
    if std::env::var_os("VIGIL_TEST_CHILD").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut signals = Signals::install().unwrap();
        println!("CHILD READY");
        loop {
            match signals.recv().await {
                DaemonSignal::Reload => println!("CHILD RELOAD"),
                DaemonSignal::Shutdown(s) => {
                    println!("CHILD GRACEFUL {s:?}");
                    break;
                }
            }
        }
        signals.exit_on_second_shutdown();
        println!("CHILD FLUSHING");
        // A flush that never ends: only the second signal gets us out.
        std::future::pending::<()>().await;
    });
}

#[test]
fn signals_reload_then_graceful_then_forced_exit() {
    let mut c = child("child_signals", &[]).spawn().unwrap();
    let pid = c.id() as libc::pid_t;
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let mut wait_for = |marker: &str| {
        for line in lines.by_ref() {
            let line = line.unwrap();
            // libtest prints "test child_signals ... " before the first line.
            if line.contains(marker) {
                return line;
            }
        }
        panic!("child ended before printing {marker:?}");
    };
    let send = |sig| {
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    };

    wait_for("CHILD READY");
    send(libc::SIGHUP);
    wait_for("CHILD RELOAD");
    send(libc::SIGHUP);
    wait_for("CHILD RELOAD");
    send(libc::SIGTERM);
    assert!(wait_for("CHILD GRACEFUL").ends_with("CHILD GRACEFUL Term"));
    wait_for("CHILD FLUSHING");
    send(libc::SIGINT);

    // Bounded wait so a broken helper cannot hang the suite.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("child did not exit on the second signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(ShutdownSignal::Int.exit_code()));
}

#[test]
#[ignore = "child process of shutdown_only_signals_leave_sighup_alone"]
fn child_shutdown_only() {
    if std::env::var_os("VIGIL_TEST_CHILD").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut signals = Signals::install_shutdown().unwrap();
        println!("CHILD READY");
        let s = signals.shutdown().await;
        println!("CHILD SHUTDOWN {s}");
    });
}

/// `Signals::install_shutdown` (snoop, record) takes SIGTERM and SIGINT but
/// leaves SIGHUP its default action: a closed terminal ends the command.
#[test]
fn shutdown_only_signals_leave_sighup_alone() {
    use std::os::unix::process::ExitStatusExt;
    for (sig, shown) in [(libc::SIGINT, "SIGINT"), (libc::SIGHUP, "")] {
        let mut c = child("child_shutdown_only", &[]).spawn().unwrap();
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        assert!(lines
            .by_ref()
            .any(|l| l.is_ok_and(|l| l.contains("CHILD READY"))));
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(c.id() as libc::pid_t, sig) }, 0);
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = c.wait().unwrap();
        if sig == libc::SIGHUP {
            assert_eq!(status.signal(), Some(libc::SIGHUP), "{rest:?}");
        } else {
            assert!(status.success(), "{status:?}");
            assert!(
                rest.iter()
                    .any(|l| l.contains(&format!("CHILD SHUTDOWN {shown}"))),
                "{rest:?}"
            );
        }
    }
}
