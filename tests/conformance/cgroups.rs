//! Resource control (runtime-spec "Control groups", runc's update/pause/resume/ps/events):
//! each limit bites inside the container, the verbs work and refuse wrong states, and
//! nothing is left behind.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use berth_tests::runtime::is_berth;
use berth_tests::{ensure, ensure_eq, Bundle, Error, Runtime};
use serde_json::{json, Value};

use crate::common::{
    allow_mknod, check_berth_error, check_device_probe, pass, sh_bundle, unsupported, DEVICE_PROBE,
    SHORT,
};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("cgroups.memory", cgroup_memory_limit_oom_kills),
        case!("cgroups.memory", cgroup_one_mib_runs_echo),
        case!("cgroups.pids", cgroup_pids_limit_fork_fails),
        case!("cgroups.devices", cgroup_device_rule_open_fails),
        case!("cgroups.cpu", cgroup_cpu_quota_throttles),
        case!("cgroups.bad-input", cgroup_bad_value_leaves_nothing),
        case!("cgroups.delete", cgroup_delete_removes_cgroup),
        case!("cli.update", cgroup_update_changes_limits),
        case!("cli.pause", cgroup_pause_resume),
        case!("cli.ps", cgroup_ps_lists_processes),
        case!("cli.events", cgroup_events_report_oom),
        case!("cli.update", cgroup_wrong_states_refused),
    ]
}

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn cgroups_path(b: &Bundle) -> String {
    b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The host file of the bundle's cgroup: `v1` = (controller, file), `v2` the unified file.
fn cg_file(b: &Bundle, v1: (&str, &str), v2: &str) -> PathBuf {
    let cg = cgroups_path(b);
    let rel = cg.trim_start_matches('/');
    if is_v2() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2)
    } else {
        Path::new("/sys/fs/cgroup").join(v1.0).join(rel).join(v1.1)
    }
}

fn read_cg(b: &Bundle, v1: (&str, &str), v2: &str) -> Result<String, Error> {
    let p = cg_file(b, v1, v2);
    fs::read_to_string(&p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error(format!("read {}: {e}", p.display())))
}

/// A `sh -c script` bundle with `resources` (plus a deny-all device rule).
fn limited(rt: &Runtime, script: &str, mut resources: Value) -> Result<Bundle, Error> {
    let mut b = sh_bundle(rt, script)?;
    if resources.get("devices").is_none() {
        resources["devices"] = json!([{"allow": false, "access": "rwm"}]);
    }
    b.config["linux"]["resources"] = resources;
    b.save()?;
    Ok(b)
}

fn cgroup_memory_limit_oom_kills(rt: &Runtime) -> Outcome {
    // dd fills a 64 MiB buffer in a 16 MiB cgroup without swap.
    let b = limited(
        rt,
        "dd if=/dev/zero of=/dev/null bs=64M count=1 && echo survived; exit $?",
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    )?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    ensure!(!out.stdout.contains("survived"), "dd was not killed: {out}");
    ensure_eq!(out.code, 137, "exit code of the OOM-killed dd");
    rt.delete(&id)?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_one_mib_runs_echo(rt: &Runtime) -> Outcome {
    let b = limited(rt, "echo tiny-ok", json!({"memory": {"limit": 1048576}}))?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    if !out.success() && !is_berth() {
        return unsupported(format!("a 1 MiB memory limit: {}", out.stderr.trim()));
    }
    ensure!(out.success(), "1 MiB container failed: {out}");
    ensure!(out.stdout.contains("tiny-ok"), "no output: {out}");
    rt.delete(&id)?;
    pass()
}

fn cgroup_pids_limit_fork_fails(rt: &Runtime) -> Outcome {
    let b = limited(
        rt,
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo looped",
        json!({"pids": {"limit": 4}}),
    )?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    let all = format!("{}{}", out.stdout, out.stderr);
    ensure!(
        all.contains("fork"),
        "no fork failed under pids.limit 4: {out}"
    );
    rt.delete(&id)?;
    pass()
}

fn cgroup_device_rule_open_fails(rt: &Runtime) -> Outcome {
    let mut b = limited(rt, DEVICE_PROBE, json!({}))?;
    allow_mknod(&mut b)?;
    let id = rt.new_id();
    check_device_probe(&rt.run(&id, &b)?.ok()?)?;
    rt.delete(&id)?;
    pass()
}

fn cgroup_cpu_quota_throttles(rt: &Runtime) -> Outcome {
    let b = limited(
        rt,
        "while :; do :; done",
        json!({"cpu": {"quota": 10000, "period": 100000}}),
    )?;
    let id = rt.start_new(&b)?;
    thread::sleep(Duration::from_millis(1200));
    let stat = read_cg(&b, ("cpu", "cpu.stat"), "cpu.stat")?;
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ensure!(throttled > 0, "not throttled at 10% quota: {stat}");
    let out = rt.cmd(&["events", "--stats", &id])?.ok()?;
    let ev: Value = serde_json::from_str(out.stdout.trim())?;
    ensure_eq!(ev["type"], json!("stats"), "event type");
    ensure_eq!(ev["id"], json!(id), "event id");
    ensure!(
        ev["data"]["cpu"]["throttling"]["throttledPeriods"].as_u64() > Some(0),
        "events --stats shows no throttling: {ev}"
    );
    rt.kill(&id, "KILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_bad_value_leaves_nothing(rt: &Runtime) -> Outcome {
    // (resources, field berth must name, refused by runc 1.1 too); the last one only the
    // kernel can refuse, after the cgroup exists.
    let bad = [
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit",
            true,
        ),
        (
            json!({"devices": [{"allow": true, "type": "x", "access": "rwm"}]}),
            "linux.resources.devices[0].type",
            false,
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
            "linux.resources.devices[0].access",
            false,
        ),
        (
            json!({"cpu": {"cpus": "0-999"}}),
            "linux.resources.cpu",
            true,
        ),
    ];
    for (resources, field, everywhere) in bad {
        if !everywhere && !is_berth() {
            continue;
        }
        let b = limited(rt, "true", resources)?;
        let id = rt.new_id();
        let out = rt.create(&id, &b)?.failed()?;
        check_berth_error(&out.stderr, field)?;
        rt.assert_no_leftovers(&id, &b)?;
    }
    pass()
}

fn cgroup_delete_removes_cgroup(rt: &Runtime) -> Outcome {
    let b = limited(
        rt,
        "sleep 1000 & exec sleep 1000",
        json!({"pids": {"limit": 10}}),
    )?;
    let id = rt.start_new(&b)?;
    ensure!(
        cg_file(&b, ("pids", "pids.max"), "pids.max").exists(),
        "no cgroup made for the container"
    );
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_update_changes_limits(rt: &Runtime) -> Outcome {
    let b = limited(rt, "exec sleep 1000", json!({"pids": {"limit": 10}}))?;
    let id = rt.start_new(&b)?;
    rt.cmd(&[
        "update",
        "--pids-limit",
        "7",
        "--memory",
        "64m",
        "--memory-swap",
        "-1",
        &id,
    ])?
    .ok()?;
    ensure_eq!(
        read_cg(&b, ("pids", "pids.max"), "pids.max")?,
        "7",
        "pids.max"
    );
    ensure_eq!(
        read_cg(&b, ("memory", "memory.limit_in_bytes"), "memory.max")?,
        "67108864",
        "memory limit"
    );
    let file = rt.tmp().join(format!("{id}-resources.json"));
    fs::write(
        &file,
        r#"{"pids":{"limit":5},"cpu":{"quota":20000,"period":100000}}"#,
    )?;
    rt.cmd(&["update", "--resources", &file.display().to_string(), &id])?
        .ok()?;
    ensure_eq!(
        read_cg(&b, ("pids", "pids.max"), "pids.max")?,
        "5",
        "pids.max"
    );
    let (got, want) = if is_v2() {
        (read_cg(&b, ("", ""), "cpu.max")?, "20000 100000")
    } else {
        (read_cg(&b, ("cpu", "cpu.cfs_quota_us"), "")?, "20000")
    };
    ensure_eq!(got, want, "cpu quota");
    // `--resources -` reads stdin.
    let mut cmd = Command::new(&rt.bin);
    cmd.arg("--root")
        .arg(&rt.root)
        .args(["update", "--resources", "-", &id])
        .stdin(fs::File::open({
            fs::write(&file, r#"{"pids":{"limit":4}}"#)?;
            &file
        })?);
    let out = berth_tests::reaper::output(&mut cmd)?;
    ensure!(out.status.success(), "update --resources -: {out:?}");
    ensure_eq!(
        read_cg(&b, ("pids", "pids.max"), "pids.max")?,
        "4",
        "pids.max"
    );
    // A bad value: berth refuses it with the field named and changes nothing
    // (runc 1.1 takes a negative pids limit as "max").
    if is_berth() {
        let bad = rt.cmd(&["update", "--pids-limit", "-3", &id])?.failed()?;
        check_berth_error(&bad.stderr, "linux.resources.pids.limit")?;
        let after = read_cg(&b, ("pids", "pids.max"), "pids.max")?;
        ensure_eq!(after, "4", "pids.max after a refused update");
    }
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_pause_resume(rt: &Runtime) -> Outcome {
    let b = limited(rt, "exec sleep 1000", json!({}))?;
    let id = rt.start_new(&b)?;
    rt.cmd(&["pause", &id])?.ok()?;
    ensure_eq!(rt.status(&id)?, "paused", "status after pause");
    let (file, frozen) = if is_v2() {
        (cg_file(&b, ("", ""), "cgroup.freeze"), "1")
    } else {
        (cg_file(&b, ("freezer", "freezer.state"), ""), "FROZEN")
    };
    let state = fs::read_to_string(&file)?;
    ensure_eq!(state.trim(), frozen, "freezer state");
    rt.cmd(&["resume", &id])?.ok()?;
    ensure_eq!(rt.status(&id)?, "running", "status after resume");
    // A paused container can still be deleted by force.
    rt.cmd(&["pause", &id])?.ok()?;
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_ps_lists_processes(rt: &Runtime) -> Outcome {
    let b = limited(rt, "sleep 1000 & exec sleep 1001", json!({}))?;
    let id = rt.start_new(&b)?;
    let pid = rt.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = rt.cmd(&["ps", "-f", "json", &id])?.ok()?;
    let pids: Vec<i64> = serde_json::from_str(out.stdout.trim())?;
    ensure!(
        pids.contains(&pid),
        "ps -f json {pids:?} lacks the init {pid}"
    );
    ensure_eq!(pids.len(), 2, "processes in the container");
    let table = rt.cmd(&["ps", &id])?.ok()?;
    ensure!(table.stdout.contains("PID"), "no header: {table}");
    ensure!(table.stdout.contains("sleep 1001"), "init missing: {table}");
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_events_report_oom(rt: &Runtime) -> Outcome {
    let b = limited(
        rt,
        "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 2",
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    )?;
    let id = rt.start_new(&b)?;
    let mut cmd = Command::new(&rt.bin);
    cmd.arg("--root")
        .arg(&rt.root)
        .args(["events", "--interval", "1s", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = berth_tests::reaper::spawn(&mut cmd)?;
    let mut lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let deadline = Instant::now() + Duration::from_secs(20);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let oom = line.contains(r#""type":"oom""#);
            lines.push(line);
            if oom || Instant::now() > deadline {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    berth_tests::reaper::release(child.id());
    ensure!(
        lines.iter().any(|l| l.contains(r#""type":"oom""#)),
        "no oom event: {lines:?}"
    );
    let first: Value = serde_json::from_str(lines.first().map_or("null", |l| l))?;
    ensure_eq!(first["id"], json!(id), "event id");
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn cgroup_wrong_states_refused(rt: &Runtime) -> Outcome {
    let b = limited(rt, "true", json!({}))?;
    let id = rt.start_new(&b)?;
    rt.wait_status(&id, "stopped", SHORT)?;
    let out = rt.cmd(&["pause", &id])?.failed()?;
    ensure!(
        !out.stderr.trim().is_empty(),
        "pause of a stopped container: no error"
    );
    check_berth_error(&out.stderr, "stopped")?;
    let out = rt.cmd(&["resume", &id])?.failed()?;
    check_berth_error(&out.stderr, "stopped")?;
    rt.delete(&id)?.ok()?;
    let out = rt.cmd(&["update", "--pids-limit", "3", &id])?.failed()?;
    ensure!(
        !out.stderr.trim().is_empty(),
        "update of a deleted container: no error"
    );
    check_berth_error(&out.stderr, &id)?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
