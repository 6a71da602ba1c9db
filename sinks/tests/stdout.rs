//! The stdout sink writes to file descriptor 1: this test (alone in its test
//! binary, so nothing else writes there) points fd 1 at a pipe, runs a router
//! with the stdout sink in text and JSON format, and reads the lines back.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

use common::*;
use vigil_engine::{Alert, Priority};
use vigil_sinks::Router;

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

#[test]
fn stdout_text_and_json_lines() {
    let (r, w) = pipe();
    // SAFETY: plain fd juggling on fds this test owns; fd 1 is restored below.
    let saved = unsafe { libc::dup(1) };
    assert!(saved >= 0);
    assert_eq!(unsafe { libc::dup2(w, 1) }, 1);
    unsafe { libc::close(w) };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let text = Router::start(&outputs("stdout: { format: text }"), "h").unwrap();
        text.submit(alert("r", Priority::Critical, 1));
        text.shutdown(Duration::from_secs(5)).await;
        let json = Router::start(
            &outputs("stdout: { format: json, min_priority: error }"),
            "h",
        )
        .unwrap();
        json.submit(alert("r", Priority::Warning, 2));
        json.submit(alert("r", Priority::Error, 3));
        let rep = json.shutdown(Duration::from_secs(5)).await;
        assert_eq!(rep.sinks[0].sent, 1);
    });

    // Restore fd 1 (closing the pipe's last writer) and read what was written.
    assert_eq!(unsafe { libc::dup2(saved, 1) }, 1);
    unsafe { libc::close(saved) };
    let mut out = String::new();
    // SAFETY: r is the pipe's read end, owned from here on by the File.
    unsafe { std::fs::File::from_raw_fd(r) }
        .read_to_string(&mut out)
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let a1 = alert("r", Priority::Critical, 1);
    assert_eq!(lines[0], a1.to_text_line());
    assert!(lines[0].contains("Critical: Shell bash spawned (pid=1001 n=1)"));
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        Alert::from_json(&v).unwrap(),
        *alert("r", Priority::Error, 3)
    );
}
