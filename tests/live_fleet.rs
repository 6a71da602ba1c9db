//! Live test of the fleet on a real `nats-server -js` (started here): two
//! `vigil run` daemons with different host names read their rules from one
//! KV bucket (`nats-kv://rules`) and publish alerts to one JetStream stream
//! (`outputs.nats`). `vigil fleet push` of a new rule makes both fire it on
//! a real exec within seconds; a push with an error is refused; a broken
//! file written to the bucket directly leaves both on the last good set with
//! a reload-failed alert and a status entry saying so; `vigil fleet status`
//! shows both converged on the latest push. Needs root, BPF, BTF and
//! nats-server; skipped otherwise, unless VIGIL_REQUIRE_LIVE=1.

mod common;
#[path = "../sinks/tests/common/nats_server.rs"]
mod nats_server;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{copy_named, live_capable, unique, Vigil};
use nats_server::{read_stream, NatsCluster, Stored};

const STREAM: &str = "VIGIL_ALERTS";

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_LOG", "warn")
        .output()
        .expect("run vigil")
}

fn rule(title: &str, comm: &str) -> String {
    format!(
        r#"
- rule: {title}
  desc: fleet test
  events: [exec]
  condition: proc.name == "{comm}"
  output: "{title} {{proc.cmdline}}"
  priority: warning
"#
    )
}

fn push(url: &str, dir: &Path) -> Output {
    vigil(&[
        "fleet",
        "push",
        dir.to_str().unwrap(),
        "--nats",
        url,
        "--bucket",
        "rules",
    ])
}

/// Runs `bin -c 'true TAG'`.
fn trigger(bin: &Path, tag: &str) {
    let st = Command::new(bin)
        .args(["-c", &format!("true {tag}")])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Polls the alert stream until `pred` holds for an alert of every host
/// (calling `poke` before each poll); the time it took, or None.
fn wait_hosts(
    rt: &tokio::runtime::Runtime,
    url: &str,
    hosts: &[&str],
    secs: u64,
    mut poke: impl FnMut(),
    pred: impl Fn(&Value) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        poke();
        std::thread::sleep(Duration::from_millis(300));
        let stored: Vec<Stored> = rt.block_on(read_stream(vec![url.to_string()], STREAM));
        if hosts.iter().all(|h| {
            stored
                .iter()
                .any(|s| s.json["hostname"] == *h && pred(&s.json))
        }) {
            return Some(start.elapsed());
        }
    }
    None
}

fn status_json(url: &str) -> Vec<Value> {
    let out = vigil(&["fleet", "status", "--nats", url, "--json"]);
    assert!(
        out.status.success(),
        "fleet status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn host_status<'a>(rows: &'a [Value], host: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["hostname"] == host)
}

#[test]
fn two_hosts_follow_pushes_reject_broken_rules_and_report_status() {
    if live_capable().is_none() {
        return;
    }
    let Some(srv) = NatsCluster::single() else {
        return;
    };
    let url = srv.urls()[0].clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (first_comm, second_comm) = (unique("flta"), unique("fltb"));
    let bins = tempfile::tempdir().unwrap();
    let first_bin = copy_named(bins.path(), "/bin/bash", &first_comm);
    let second_bin = copy_named(bins.path(), "/bin/bash", &second_comm);

    // Revision 1: one rule.
    let rev = d.path().join("rev");
    std::fs::create_dir(&rev).unwrap();
    std::fs::write(rev.join("a.yaml"), rule("Fleet first", &first_comm)).unwrap();
    let out = push(&url, &rev);
    assert!(
        out.status.success(),
        "first push: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let hosts = ["fleet-a", "fleet-b"];
    let mut daemons = Vec::new();
    for h in hosts {
        let cfg = d.path().join(format!("{h}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "hostname: {h}\nnats:\n  servers: [\"{url}\"]\nrules: [\"nats-kv://rules\"]\noutputs:\n  nats:\n    create_stream: {{}}\n"
            ),
        )
        .unwrap();
        let args: Vec<String> = ["run", "--config", cfg.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        daemons.push(Vigil::spawn(tempfile::tempdir().unwrap(), &args, &[]));
    }
    // Alerts from real execs reach the stream from both hosts, with ids.
    wait_hosts(
        &rt,
        &url,
        &hosts,
        30,
        || trigger(&first_bin, "one"),
        |a| a["rule"] == "Fleet first",
    )
    .expect("both hosts fire the first revision's rule");
    let stored = rt.block_on(read_stream(vec![url.clone()], STREAM));
    for s in &stored {
        assert_eq!(s.json["uuid"], s.msg_id.as_str());
        assert!(
            s.subject.starts_with("vigil.alerts.fleet-"),
            "{}",
            s.subject
        );
    }

    // Revision 2: a new rule, fired by both hosts within seconds of the push.
    std::fs::write(rev.join("b.yaml"), rule("Fleet second", &second_comm)).unwrap();
    let out = push(&url, &rev);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = wait_hosts(
        &rt,
        &url,
        &hosts,
        30,
        || trigger(&second_bin, "two"),
        |a| a["rule"] == "Fleet second",
    )
    .expect("both hosts fire the pushed rule");
    eprintln!("push to both hosts firing: {took:?}");
    assert!(took < Duration::from_secs(10), "within seconds: {took:?}");
    let good = status_json(&url);
    let latest = host_status(&good, "fleet-a")
        .and_then(|r| r["latest_push"].as_str())
        .expect("latest push recorded")
        .to_string();

    // A push with an error is refused and writes nothing.
    let bad = d.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("a.yaml"),
        "- rule: Broken\n  condition: proc.name ==\n",
    )
    .unwrap();
    let out = push(&url, &bad);
    assert_eq!(out.status.code(), Some(1), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.yaml") && err.contains("refused"), "{err}");
    let rows = status_json(&url);
    assert_eq!(
        host_status(&rows, "fleet-a").unwrap()["latest_push"],
        latest.as_str()
    );

    // A broken file written to the bucket directly: both hosts refuse it whole.
    rt.block_on(async {
        let c = async_nats::connect(url.as_str()).await.unwrap();
        let kv = async_nats::jetstream::new(c)
            .get_key_value("rules")
            .await
            .unwrap();
        kv.put("zz-broken.yaml", "- rule: [unclosed\n".into())
            .await
            .unwrap();
    });
    wait_hosts(
        &rt,
        &url,
        &hosts,
        15,
        || {},
        |a| a["rule"] == "vigil rule reload failed",
    )
    .expect("both hosts raise the reload-failed alert");
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = status_json(&url);
        let failed = hosts
            .iter()
            .all(|h| host_status(&rows, h).is_some_and(|r| r["last_reload"]["ok"] == false));
        if failed || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for h in hosts {
        let r = host_status(&rows, h).unwrap_or_else(|| panic!("{h} in {rows:?}"));
        assert_eq!(r["last_reload"]["ok"], false, "{r}");
        let e = r["last_reload"]["error"].as_str().unwrap_or("");
        assert!(e.contains("nats-kv://rules/zz-broken.yaml"), "{e}");
        assert_eq!(
            r["fleet_hash"],
            latest.as_str(),
            "still the last good set: {r}"
        );
        assert_eq!(r["converged"], true, "{r}");
        assert_eq!(r["rule_count"], 2, "{r}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            r["event_kinds"].as_array().is_some_and(|k| !k.is_empty()),
            "{r}"
        );
    }
    // ... and keep firing the last good rules.
    wait_hosts(
        &rt,
        &url,
        &hosts,
        15,
        || trigger(&second_bin, "after-broken"),
        |a| a["output"].as_str().unwrap_or("").contains("after-broken"),
    )
    .expect("the last good set stays in force");

    let out = vigil(&["fleet", "status", "--nats", &url]);
    let table = String::from_utf8_lossy(&out.stdout);
    for h in hosts {
        let line = table
            .lines()
            .find(|l| l.starts_with(h))
            .unwrap_or_else(|| panic!("{h} in\n{table}"));
        assert!(line.contains(" yes ") && line.contains("FAILED"), "{line}");
    }
    drop(daemons);
}
