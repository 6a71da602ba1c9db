//! Interop with a real syslog daemon: Debian's rsyslogd, run by the test on
//! private loopback ports with its config and output in a temp dir, receives
//! vigil's RFC 5424 messages over TCP (octet counting) and UDP and writes the
//! fields it parsed. Skipped when rsyslogd is missing, unless
//! VIGIL_REQUIRE_LIVE=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use vigil_engine::Priority;
use vigil_sinks::Router;

fn rsyslogd() -> Option<PathBuf> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, dir: &Path, tcp: u16, udp: u16) -> Daemon {
    let out = dir.join("out.log");
    let conf = format!(
        r#"global(workDirectory="{d}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" port="{tcp}" address="127.0.0.1")
input(type="imudp" port="{udp}" address="127.0.0.1")
template(name="t" type="string" string="%pri%|%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
*.* action(type="omfile" file="{out}" template="t")
"#,
        d = dir.display(),
        out = out.display()
    );
    let cpath = dir.join("rsyslog.conf");
    std::fs::write(&cpath, conf).unwrap();
    let child = Command::new(bin)
        .arg("-n")
        .arg("-f")
        .arg(&cpath)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rsyslogd");
    Daemon(child)
}

#[tokio::test]
async fn rsyslogd_parses_our_rfc5424_over_tcp_and_udp() {
    let Some(bin) = rsyslogd() else {
        vigil_testkit::cannot_run("rsyslogd is not installed (apt-get install rsyslog)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp) = (free_port(), free_port());
    let _d = start(&bin, dir.path(), tcp, udp);
    // Wait until rsyslogd listens on TCP.
    eventually(|| std::net::TcpStream::connect(("127.0.0.1", tcp)).ok()).await;

    let cfg = outputs(&format!(
        "syslog: {{ address: \"tcp://127.0.0.1:{tcp}\", facility: local5 }}"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Shell spawned", Priority::Critical, 1));
    let mut multi = (*alert("Multi line", Priority::Warning, 2)).clone();
    multi.output = "first line\nsecond line".into();
    router.submit(Arc::new(multi));
    router.submit(alert("Third", Priority::Debug, 3));
    let r = router.shutdown(Duration::from_secs(10)).await;
    assert_eq!(r.sinks[0].sent, 3);

    let cfg = outputs(&format!(
        "syslog: {{ address: \"udp://127.0.0.1:{udp}\", facility: daemon }}"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Over UDP", Priority::Emergency, 4));
    router.shutdown(Duration::from_secs(10)).await;

    let out = dir.path().join("out.log");
    let lines = eventually(|| {
        let s = std::fs::read_to_string(&out).ok()?;
        // Only vigil's lines (rsyslogd may log its own start message).
        let l: Vec<String> = s
            .lines()
            .filter(|l| l.split('|').nth(4) == Some("vigil"))
            .map(str::to_string)
            .collect();
        (l.len() >= 4).then_some(l)
    })
    .await;
    let pid = std::process::id().to_string();
    let parse = |l: &str| l.splitn(9, '|').map(str::to_string).collect::<Vec<_>>();
    let find = |rule: &str| {
        lines
            .iter()
            .map(|l| parse(l))
            .find(|f| f[7].contains(&format!("rule=\"{rule}\"")))
            .unwrap_or_else(|| panic!("no line for {rule} in {lines:?}"))
    };
    let f = find("Shell spawned");
    assert_eq!(
        &f[..7],
        &["170", "local5", "crit", "testhost", "vigil", &pid, "alert"]
    );
    assert!(f[7].starts_with("[vigil@32473 "), "{f:?}");
    assert!(f[7].contains("priority=\"Critical\""), "{f:?}");
    assert!(f[7].contains("proc.name=\"bash\""), "{f:?}");
    assert_eq!(f[8], "Shell bash spawned (pid=1001 n=1)");
    // Octet counting kept the two-line output one message.
    let f = find("Multi line");
    assert_eq!(&f[1..3], &["local5", "warning"]);
    assert!(
        f[8].starts_with("first line") && f[8].contains("second line"),
        "{f:?}"
    );
    assert_eq!(&find("Third")[1..3], &["local5", "debug"]);
    let f = find("Over UDP");
    assert_eq!(&f[..3], &["24", "daemon", "emerg"]);
    assert_eq!(lines.len(), 4, "{lines:?}");
}
