//! The lifecycle of runtime-spec "Lifecycle" and "Operations", and the runc-style CLI.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use berth_tests::runtime::wait_file;
use berth_tests::{ensure, ensure_eq, Runtime};
use serde_json::{json, Value};

use crate::common::{out_dir, pass, sh_bundle, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "lifecycle.create-start",
            create_does_not_run_program_until_start
        ),
        case!("lifecycle.state", state_reports_spec_fields),
        case!("lifecycle.state", statuses_follow_lifecycle),
        case!("lifecycle.start", start_requires_created),
        case!("lifecycle.delete", delete_running_needs_force),
        case!("lifecycle.delete", delete_created_never_runs_program),
        case!("lifecycle.create", duplicate_id_rejected),
        case!("cli.run", run_returns_exit_code),
        case!("cli.run", run_killed_returns_128_plus_signal),
        case!("cli.run", run_detach_leaves_container_running),
        case!("cli.kill", kill_accepts_signal_forms),
        case!("cli.kill", kill_all_reaches_every_process),
        case!("cli.list", list_formats),
        case!("cli.pid-file", pid_file_holds_init_pid),
    ]
}

fn create_does_not_run_program_until_start(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "touch /out/started; exec sleep 1000")?;
    let out = out_dir(&mut b)?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    thread::sleep(Duration::from_millis(300));
    ensure!(
        !out.join("started").exists(),
        "the user program ran before `start`"
    );
    ensure_eq!(rt.status(&id)?, "created", "status after create");
    rt.start(&id)?.ok()?;
    ensure!(
        wait_file(&out.join("started"), SHORT),
        "the user program did not run after `start`"
    );
    rt.kill(&id, "KILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn canonical(p: &Path) -> String {
    fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn state_reports_spec_fields(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "exec sleep 1000")?;
    b.config["annotations"] = json!({"org.berth.test": "value-1"});
    b.save()?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    let s = rt.state(&id)?;
    ensure!(s["ociVersion"].is_string(), "ociVersion missing: {s}");
    ensure_eq!(s["id"], json!(id), "id");
    ensure_eq!(s["status"], json!("created"), "status");
    let pid = s["pid"].as_i64().unwrap_or(0);
    ensure!(pid > 0, "pid of a created container must be > 0: {s}");
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "state pid {pid} is not a live process"
    );
    let bundle = s["bundle"].as_str().unwrap_or_default();
    ensure_eq!(canonical(Path::new(bundle)), canonical(&b.dir), "bundle");
    ensure_eq!(
        s["annotations"]["org.berth.test"],
        json!("value-1"),
        "annotations in state: {s}"
    );
    rt.delete_force(&id)?.ok()?;
    pass()
}

fn statuses_follow_lifecycle(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    ensure_eq!(rt.status(&id)?, "created", "after create");
    rt.start(&id)?.ok()?;
    ensure_eq!(rt.status(&id)?, "running", "after start");
    rt.kill(&id, "KILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    let s = rt.state(&id)?;
    ensure!(
        s["pid"].as_i64().unwrap_or(0) <= 0 || !Path::new(&format!("/proc/{}", s["pid"])).exists(),
        "a stopped container's pid must not be a live process: {s}"
    );
    rt.delete(&id)?.ok()?;
    ensure!(
        !rt.cmd(&["state", &id])?.success(),
        "`state` of a deleted container must fail"
    );
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn start_requires_created(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let unknown = rt.new_id();
    rt.start(&unknown)?.failed()?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    rt.start(&id)?.ok()?;
    rt.start(&id)?.failed()?;
    ensure_eq!(
        rt.status(&id)?,
        "running",
        "a second start must not disturb it"
    );
    rt.kill(&id, "KILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.start(&id)?.failed()?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn delete_running_needs_force(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let id = rt.start_new(&b)?;
    rt.delete(&id)?.failed()?;
    ensure_eq!(rt.status(&id)?, "running", "after a refused delete");
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn delete_created_never_runs_program(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "touch /out/started; exec sleep 1000")?;
    let out = out_dir(&mut b)?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    rt.delete(&id)?.ok()?;
    thread::sleep(Duration::from_millis(200));
    ensure!(
        !out.join("started").exists(),
        "deleting a created container ran its program"
    );
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn duplicate_id_rejected(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let b2 = sh_bundle(rt, "exec sleep 1000")?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    let pid = rt.state(&id)?["pid"].clone();
    rt.create(&id, &b2)?.failed()?;
    let s = rt.state(&id)?;
    ensure_eq!(
        s["status"],
        json!("created"),
        "first container after the duplicate"
    );
    ensure_eq!(s["pid"], pid, "first container's pid after the duplicate");
    rt.assert_no_leftovers(&format!("{id}-none"), &b2)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn run_returns_exit_code(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "echo out; exit 7")?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    ensure_eq!(out.code, 7, "exit code of `run` ({out})");
    ensure_eq!(out.stdout.trim(), "out", "container stdout through `run`");
    rt.assert_no_leftovers(&id, &b)?;
    let b0 = sh_bundle(rt, "true")?;
    let id0 = rt.new_id();
    ensure_eq!(rt.run(&id0, &b0)?.code, 0, "exit code of `run true`");
    // An init that leaves children behind: they die with its pid namespace, and `run`
    // still removes everything (no process, no cgroup) before it returns.
    let b1 = sh_bundle(rt, "sleep 1000 & sleep 1000 & exit 4")?;
    let id1 = rt.new_id();
    ensure_eq!(
        rt.run(&id1, &b1)?.code,
        4,
        "exit code of `run` leaving children"
    );
    rt.assert_no_leftovers(&id1, &b1)?;
    pass()
}

fn run_killed_returns_128_plus_signal(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["sleep", "1000"])?;
    let id = rt.new_id();
    let out = thread::scope(|s| {
        let runner = s.spawn(|| rt.run(&id, &b));
        let mut killed = false;
        for _ in 0..500 {
            if rt
                .cmd(&["state", &id])
                .is_ok_and(|o| o.stdout.contains("running"))
            {
                killed = rt.kill(&id, "KILL").is_ok_and(|o| o.success());
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        (killed, runner.join())
    });
    let (killed, joined) = out;
    ensure!(killed, "could not kill the container started by `run`");
    let Ok(out) = joined else {
        berth_tests::fail!("run thread panicked")
    };
    let out = out?;
    ensure_eq!(
        out.code,
        128 + 9,
        "exit code of `run` killed by SIGKILL ({out})"
    );
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn run_detach_leaves_container_running(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let id = rt.new_id();
    rt.run_with(&id, &b, &["--detach"])?.ok()?;
    ensure_eq!(rt.status(&id)?, "running", "after run --detach");
    rt.kill(&id, "SIGKILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn kill_accepts_signal_forms(rt: &Runtime) -> Outcome {
    let script = "for s in USR1 USR2 HUP; do trap \"echo $s >> /out/sigs\" $s; done; \
                  touch /out/ready; while true; do sleep 0.05; done";
    let mut b = sh_bundle(rt, script)?;
    let out = out_dir(&mut b)?;
    let id = rt.start_new(&b)?;
    ensure!(
        wait_file(&out.join("ready"), SHORT),
        "container never got ready"
    );
    let sigs = out.join("sigs");
    for (form, expect) in [("USR1", "USR1"), ("SIGHUP", "HUP"), ("12", "USR2")] {
        rt.kill(&id, form)?.ok()?;
        let mut seen = false;
        for _ in 0..200 {
            if fs::read_to_string(&sigs).is_ok_and(|s| s.lines().any(|l| l == expect)) {
                seen = true;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        ensure!(seen, "`kill {id} {form}` did not deliver SIG{expect}");
    }
    // the default signal is SIGTERM; pid 1 with no handler ignores it, so only check it is accepted
    rt.cmd(&["kill", &id])?.ok()?;
    rt.kill(&id, "9")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn kill_all_reaches_every_process(rt: &Runtime) -> Outcome {
    // Without a pid namespace, killing init does not take its children with it: only
    // `--all` does.
    let mut b = sh_bundle(rt, "sleep 1000 & echo $! > /out/child; exec sleep 1000")?;
    b.drop_namespace("pid");
    b.save()?;
    let out = out_dir(&mut b)?;
    let id = rt.start_new(&b)?;
    ensure!(
        wait_file(&out.join("child"), SHORT),
        "container never started its child"
    );
    let cg = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    ensure!(
        berth_tests::leftovers::processes(&cg).len() >= 2,
        "expected two container processes"
    );
    rt.cmd(&["kill", "--all", &id, "KILL"])?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = berth_tests::leftovers::processes(&cg);
        if left.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    ensure!(left.is_empty(), "`kill --all` left processes: {left:?}");
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn list_formats(rt: &Runtime) -> Outcome {
    let b1 = sh_bundle(rt, "exec sleep 1000")?;
    let b2 = sh_bundle(rt, "exec sleep 1000")?;
    let id1 = rt.new_id();
    let id2 = rt.new_id();
    rt.create(&id1, &b1)?.ok()?;
    rt.create(&id2, &b2)?.ok()?;
    rt.start(&id2)?.ok()?;
    let q = rt.cmd(&["list", "-q"])?.ok()?;
    let mut ids: Vec<&str> = q.stdout.lines().map(str::trim).collect();
    ids.sort();
    let mut want = vec![id1.as_str(), id2.as_str()];
    want.sort();
    ensure_eq!(ids, want, "`list -q`");
    let j = rt.cmd(&["list", "-f", "json"])?.ok()?;
    let v: Value = serde_json::from_str(&j.stdout)?;
    let arr = v.as_array().cloned().unwrap_or_default();
    ensure_eq!(arr.len(), 2, "entries in `list -f json`: {v}");
    for (id, status) in [(&id1, "created"), (&id2, "running")] {
        let e = arr.iter().find(|e| e["id"] == json!(id));
        let Some(e) = e else {
            berth_tests::fail!("{id} missing from `list -f json`: {v}")
        };
        ensure_eq!(e["status"], json!(status), "status of {id} in list json");
        ensure!(
            e["pid"].as_i64().unwrap_or(0) > 0,
            "pid of {id} in list json: {e}"
        );
        ensure!(e["bundle"].is_string(), "bundle of {id} in list json: {e}");
    }
    let t = rt.cmd(&["list"])?.ok()?;
    let mut lines = t.stdout.lines();
    let header = lines.next().unwrap_or_default();
    ensure!(
        header.contains("ID") && header.contains("STATUS") && header.contains("PID"),
        "table header: {header:?}"
    );
    for (id, status) in [(&id1, "created"), (&id2, "running")] {
        ensure!(
            t.stdout
                .lines()
                .any(|l| l.starts_with(id.as_str()) && l.contains(status)),
            "table lacks `{id} ... {status}`: {:?}",
            t.stdout
        );
    }
    rt.delete_force(&id1)?.ok()?;
    rt.delete_force(&id2)?.ok()?;
    let empty = rt.cmd(&["list", "-q"])?.ok()?;
    ensure!(
        empty.stdout.trim().is_empty(),
        "list after delete: {:?}",
        empty.stdout
    );
    pass()
}

fn pid_file_holds_init_pid(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "exec sleep 1000")?;
    let id = rt.new_id();
    let pid_file = rt.tmp().join("init.pid");
    let pf = pid_file.display().to_string();
    rt.create_with(&id, &b, &["--pid-file", &pf])?.ok()?;
    let written = fs::read_to_string(&pid_file)?;
    let state_pid = rt.state(&id)?["pid"].as_i64().unwrap_or(-1);
    ensure_eq!(
        written.trim(),
        state_pid.to_string(),
        "--pid-file vs state pid"
    );
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
