//! Container tests for resource control: each limit bites, the cgroup verbs
//! work and refuse wrong states. Runtime-agnostic: `RUNTIME=/usr/sbin/runc`
//! runs them against runc (berth-only checks say so).

#[path = "cgroups_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{is_runc, is_v2, ok, text, Container};

fn deny_all() -> Value {
    json!([{"allow": false, "access": "rwm"}])
}

#[test]
fn memory_limit_oom_kills() {
    let c = Container::new(
        "oom",
        "dd if=/dev/zero of=/dev/null bs=64M count=1 && echo survived; exit $?",
        json!({"devices": deny_all(), "memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let out = c.run();
    assert!(
        !text(&out.stdout).contains("survived"),
        "{}",
        text(&out.stdout)
    );
    // dd was OOM-killed: the script exits with its status, 128 + SIGKILL.
    assert!(
        out.status.code() == Some(137) || out.status.signal() == Some(9),
        "{:?} {}",
        out.status,
        text(&out.stderr)
    );
}

#[test]
fn pids_limit_fork_fails() {
    let c = Container::new(
        "pids",
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done",
        json!({"devices": deny_all(), "pids": {"limit": 4}}),
    );
    let out = c.run();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("fork"), "no fork failure: {all}");
}

#[test]
fn device_rule_open_fails() {
    let c = Container::new(
        "dev",
        "mknod /tmp/null c 1 3 && echo x > /tmp/null && echo null-ok; \
         mknod /tmp/kmsg c 1 11 && head -c 1 /tmp/kmsg && echo kmsg-ok; true",
        json!({"devices": deny_all()}),
    );
    let out = c.run();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("null-ok"), "{all}");
    assert!(!all.contains("kmsg-ok"), "{all}");
    assert!(all.contains("Operation not permitted"), "{all}");
}

#[test]
fn cpu_quota_throttles() {
    let c = Container::new(
        "quota",
        "while :; do :; done",
        json!({"devices": deny_all(), "cpu": {"quota": 10000, "period": 100000}}),
    );
    c.start();
    std::thread::sleep(Duration::from_millis(1200));
    let stat = c.read_cgroup(("cpu", "cpu.stat"), "cpu.stat");
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "cpu.stat: {stat}");
    let out = c.rt(&["events", "--stats", &c.id]);
    ok(&out, "events --stats");
    let ev: Value = serde_json::from_slice(&out.stdout).expect("events json");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], c.id.as_str());
    assert!(ev["data"]["cpu"]["throttling"]["throttledPeriods"].as_u64() > Some(0));
    ok(&c.rt(&["kill", &c.id, "KILL"]), "kill");
}

#[test]
fn update_changes_limits() {
    let c = Container::new(
        "update",
        "sleep 100",
        json!({"devices": deny_all(), "pids": {"limit": 10}}),
    );
    c.start();
    ok(
        &c.rt(&[
            "update",
            "--pids-limit",
            "7",
            "--memory",
            "64m",
            "--memory-swap",
            "-1",
            &c.id,
        ]),
        "update flags",
    );
    assert_eq!(c.read_cgroup(("pids", "pids.max"), "pids.max"), "7");
    assert_eq!(
        c.read_cgroup(("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    let mut child = c
        .cmd(&["update", "--resources", "-", &c.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn update");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"pids":{"limit":5},"cpu":{"quota":20000,"period":100000}}"#)
        .expect("write resources");
    ok(
        &child.wait_with_output().expect("wait"),
        "update --resources -",
    );
    assert_eq!(c.read_cgroup(("pids", "pids.max"), "pids.max"), "5");
    if is_v2() {
        assert_eq!(c.read_cgroup(("", ""), "cpu.max"), "20000 100000");
    } else {
        assert_eq!(c.read_cgroup(("cpu", "cpu.cfs_quota_us"), ""), "20000");
    }
}

#[test]
fn pause_resume_and_ps() {
    let c = Container::new("pause", "sleep 100", json!({"devices": deny_all()}));
    c.start();
    let pid = c.state()["pid"].as_i64().expect("pid");
    let out = c.rt(&["ps", "-f", "json", &c.id]);
    ok(&out, "ps -f json");
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("ps json");
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    ok(&c.rt(&["pause", &c.id]), "pause");
    assert_eq!(c.status(), "paused");
    let (file, frozen) = if is_v2() {
        (c.cgroup_file(("", ""), "cgroup.freeze"), "1")
    } else {
        (c.cgroup_file(("freezer", "freezer.state"), ""), "FROZEN")
    };
    assert_eq!(
        std::fs::read_to_string(&file).expect("freezer").trim(),
        frozen
    );
    ok(&c.rt(&["resume", &c.id]), "resume");
    assert_eq!(c.status(), "running");
    let out = c.rt(&["ps", &c.id]);
    ok(&out, "ps");
    assert!(text(&out.stdout).contains("sleep"), "{}", text(&out.stdout));
}

#[test]
fn events_report_oom() {
    let c = Container::new(
        "events",
        "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100",
        json!({"devices": deny_all(), "memory": {"limit": 16777216, "swap": 16777216}}),
    );
    c.start();
    let mut ev = c
        .cmd(&["events", "--interval", "1s", &c.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events");
    let stdout = ev.stdout.take().expect("stdout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let oom = v["type"] == "oom";
        seen.push(line);
        if oom || Instant::now() > deadline {
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(
        seen.iter().any(|l| l.contains(r#""type":"oom""#)),
        "no oom event in {seen:?}"
    );
}

#[test]
fn wrong_states_are_refused() {
    let c = Container::new("states", "true", json!({"devices": deny_all()}));
    c.start();
    c.wait_status("stopped");
    let out = c.rt(&["pause", &c.id]);
    assert!(
        !out.status.success(),
        "pausing a stopped container succeeded"
    );
    assert!(!text(&out.stderr).trim().is_empty());
    ok(&c.rt(&["delete", &c.id]), "delete");
    let out = c.rt(&["update", "--pids-limit", "3", &c.id]);
    assert!(
        !out.status.success(),
        "updating a deleted container succeeded"
    );
    assert!(!text(&out.stderr).trim().is_empty());
    assert_eq!(c.cgroup_leftovers(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn bad_value_fails_create_and_leaves_nothing() {
    let c = Container::new(
        "bad",
        "true",
        json!({"devices": deny_all(), "memory": {"limit": -5}}),
    );
    let out = c.create();
    assert!(
        !out.status.success(),
        "create with memory.limit -5 succeeded"
    );
    if !is_runc() {
        let err = text(&out.stderr);
        assert!(err.contains("linux.resources.memory.limit"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(c.cgroup_leftovers(), Vec::<std::path::PathBuf>::new());
    assert!(!c.state_leftover(), "state directory left behind");
}

#[test]
fn delete_removes_the_cgroup() {
    let c = Container::new("delete", "sleep 100", json!({"devices": deny_all()}));
    c.start();
    assert!(!c.cgroup_leftovers().is_empty());
    ok(&c.rt(&["delete", "--force", &c.id]), "delete --force");
    assert_eq!(c.cgroup_leftovers(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn one_mib_memory_runs_echo() {
    if is_runc() {
        // runc needs about 4 MiB of its own in the container's cgroup.
        return;
    }
    let c = Container::new(
        "tiny",
        "echo tiny-ok",
        json!({"devices": deny_all(), "memory": {"limit": 1048576}}),
    );
    let out = c.run();
    ok(&out, "run with 1 MiB");
    assert!(text(&out.stdout).contains("tiny-ok"));
}
