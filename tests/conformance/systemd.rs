//! `--systemd-cgroup`: `linux.cgroupsPath` `slice:prefix:name` makes a transient systemd
//! scope `prefix-name.scope` in `slice` (runc's systemd driver). Checked where systemd is
//! PID 1 (integration/microvm/systemd-vm.sh boots one): the container sees itself in the
//! scope, systemd knows the unit with the limits as properties, the limits bite, the verbs
//! work, and delete / a failed create leave neither unit nor cgroup. Without systemd, only
//! `cgroup_systemd_absent_is_refused` runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::runtime::{is_berth, wait_file, Output, COMMAND_TIMEOUT};
use berth_tests::{ensure, ensure_eq, Bundle, Error, Runtime};
use serde_json::{json, Value};

use crate::common::{
    allow_mknod, check_berth_error, check_device_probe, out_dir, pass, sh_bundle, unsupported,
    DEVICE_PROBE, SHORT,
};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("cgroups.systemd", systemd_scope_placement_and_limits),
        case!("cgroups.systemd", systemd_custom_slice),
        case!("cgroups.systemd", systemd_pids_limit_fork_fails),
        case!("cgroups.systemd", systemd_memory_limit_oom_kills),
        case!("cgroups.systemd", systemd_device_rule_open_fails),
        case!("cgroups.systemd", systemd_ps_and_stats),
        case!("cgroups.systemd", systemd_delete_removes_unit),
        case!("cgroups.systemd", systemd_failed_create_leaves_no_unit),
        case!("cgroups.systemd", systemd_pause_resume),
        case!("cgroups.systemd", systemd_update_sets_properties),
        case!("cgroups.systemd", systemd_bad_path_refused),
        case!("cgroups.systemd", cgroup_systemd_absent_is_refused),
    ]
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// Runs the runtime as `RUNTIME --systemd-cgroup --root ROOT ARGS`.
fn sd(rt: &Runtime, args: &[&str]) -> Result<Output, Error> {
    let mut full = vec![
        "--systemd-cgroup".to_string(),
        "--root".into(),
        rt.root.display().to_string(),
    ];
    full.extend(args.iter().map(|a| a.to_string()));
    rt.exec(&full, COMMAND_TIMEOUT)
}

/// A container under `--systemd-cgroup`: its id, unit and where systemd puts its cgroup.
/// Dropping it stops the unit (and the test's own slice), also after a failure.
struct Scoped {
    id: String,
    unit: String,
    /// e.g. `/system.slice/berth-ID.scope`
    cgroup: String,
    /// A slice the test made and must remove (not system.slice).
    own_slice: Option<String>,
}

impl Scoped {
    fn new(rt: &Runtime, slice: &str) -> Scoped {
        let id = rt.new_id();
        let unit = format!("berth-{id}.scope");
        let cgroup = format!("{}/{unit}", expand_slice(slice));
        Scoped {
            id,
            unit,
            cgroup,
            own_slice: (slice != "system.slice").then(|| slice.to_owned()),
        }
    }

    fn cgroups_path(&self) -> String {
        let slice = self
            .own_slice
            .clone()
            .unwrap_or_else(|| "system.slice".into());
        format!("{slice}:berth:{}", self.id)
    }

    fn dir(&self) -> PathBuf {
        Path::new(CGROUP_ROOT).join(self.cgroup.trim_start_matches('/'))
    }

    fn read(&self, file: &str) -> Result<String, Error> {
        let p = self.dir().join(file);
        fs::read_to_string(&p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| Error(format!("read {}: {e}", p.display())))
    }

    /// One property of the unit as `systemctl show` prints it.
    fn prop(&self, name: &str) -> Result<String, Error> {
        unit_prop(&self.unit, name)
    }

    /// The case ends: unit, cgroup and everything else the container had are gone.
    fn gone(&self, rt: &Runtime, b: &Bundle) -> Outcome {
        self.ensure_gone()?;
        rt.assert_no_leftovers(&self.id, b)?;
        pass()
    }

    /// The unit is unknown to systemd (or stopped and on its way out) and its cgroup is gone.
    fn ensure_gone(&self) -> Result<(), Error> {
        // systemd removes a stopped scope's cgroup asynchronously; give it a moment.
        let deadline = Instant::now() + SHORT;
        loop {
            let active = self.prop("ActiveState")?;
            let load = self.prop("LoadState")?;
            let gone = (load == "not-found" || active == "inactive") && !self.dir().exists();
            if gone {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error(format!(
                    "unit {} still LoadState={load} ActiveState={active}, cgroup {} exists: {}",
                    self.unit,
                    self.dir().display(),
                    self.dir().exists()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        let _ = systemctl(&["stop", &self.unit]);
        if let Some(slice) = &self.own_slice {
            let _ = systemctl(&["stop", slice]);
            // The implicit parent slice (`a.slice` of `a-b.slice`), once nothing else is in it.
            if let Some((parent, _)) = slice.rsplit_once('-') {
                let parent = format!("{parent}.slice");
                let dir = Path::new(CGROUP_ROOT).join(&parent);
                let busy = fs::read_dir(&dir)
                    .map(|d| d.flatten().any(|e| e.path().is_dir()))
                    .unwrap_or(false);
                if !busy {
                    let _ = systemctl(&["stop", &parent]);
                }
            }
        }
    }
}

/// `a-b.slice` → `/a.slice/a-b.slice` (systemd.slice(5)).
fn expand_slice(slice: &str) -> String {
    let stem = slice.trim_end_matches(".slice");
    let mut out = String::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push_str(&format!("/{acc}.slice"));
    }
    out
}

fn systemctl(args: &[&str]) -> Result<String, Error> {
    // coreutils' timeout: a wedged systemd fails the case instead of hanging the suite.
    let secs = COMMAND_TIMEOUT.as_secs().to_string();
    let out = berth_tests::reaper::output(
        Command::new("timeout")
            .args([secs.as_str(), "systemctl"])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| Error(format!("systemctl {}: {e}", args.join(" "))))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn unit_prop(unit: &str, name: &str) -> Result<String, Error> {
    systemctl(&["show", "-p", name, "--value", unit])
}

/// A `sh -c script` bundle placed in `s`'s scope, with `resources` and an /out directory.
fn scoped_bundle(
    rt: &Runtime,
    s: &Scoped,
    script: &str,
    resources: Value,
) -> Result<(Bundle, PathBuf), Error> {
    let mut b = sh_bundle(rt, script)?;
    b.config["linux"]["cgroupsPath"] = json!(s.cgroups_path());
    b.config["linux"]["resources"] = resources;
    let out = out_dir(&mut b)?;
    b.save()?;
    Ok((b, out))
}

fn create_start(rt: &Runtime, s: &Scoped, b: &Bundle) -> Result<(), Error> {
    let dir = b.dir.display().to_string();
    sd(rt, &["create", "--bundle", &dir, &s.id])?.ok()?;
    sd(rt, &["start", &s.id])?.ok()?;
    Ok(())
}

fn status(rt: &Runtime, id: &str) -> Result<String, Error> {
    let out = sd(rt, &["state", id])?.ok()?;
    let v: Value = serde_json::from_str(&out.stdout)?;
    Ok(v["status"].as_str().unwrap_or_default().to_owned())
}

fn wait_status(rt: &Runtime, id: &str, want: &str) -> Result<(), Error> {
    let deadline = Instant::now() + SHORT;
    loop {
        let got = status(rt, id)?;
        if got == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{id} still {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The container's script for `inside_cgroup`: its /proc/self/cgroup, renamed into
/// place once written so that no half-written file is read, then it stays.
const REPORT_CGROUP: &str =
    "cat /proc/self/cgroup > /out/cgroup.tmp && mv /out/cgroup.tmp /out/cgroup; exec sleep 1000";

/// The cgroup a process in the container reports for itself (cgroup v2 line `0::PATH`).
fn inside_cgroup(out: &Path) -> Result<String, Error> {
    let f = out.join("cgroup");
    ensure!(wait_file(&f, SHORT), "the container wrote no /out/cgroup");
    let text = fs::read_to_string(&f)?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
        .ok_or_else(|| Error(format!("no cgroup v2 line in /proc/self/cgroup: {text:?}")))
}

fn need_systemd() -> Option<Outcome> {
    (!systemd_running()).then(|| unsupported("systemd is not running here (PID 1)"))
}

fn systemd_scope_placement_and_limits(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, out) = scoped_bundle(
        rt,
        &s,
        REPORT_CGROUP,
        json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 32},
            "cpu": {"quota": 50000, "period": 100000},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
        }),
    )?;
    create_start(rt, &s, &b)?;
    ensure_eq!(
        inside_cgroup(&out)?,
        s.cgroup,
        "/proc/self/cgroup in the container"
    );
    ensure_eq!(s.prop("ActiveState")?, "active", "{} ActiveState", s.unit);
    ensure_eq!(s.prop("ControlGroup")?, s.cgroup, "{} ControlGroup", s.unit);
    ensure_eq!(s.prop("Slice")?, "system.slice", "{} Slice", s.unit);
    ensure_eq!(s.prop("MemoryMax")?, "67108864", "{} MemoryMax", s.unit);
    ensure_eq!(s.prop("TasksMax")?, "32", "{} TasksMax", s.unit);
    ensure_eq!(
        s.prop("CPUQuotaPerSecUSec")?,
        "500ms",
        "{} CPUQuotaPerSecUSec",
        s.unit
    );
    ensure_eq!(s.read("memory.max")?, "67108864", "memory.max");
    ensure_eq!(s.read("pids.max")?, "32", "pids.max");
    ensure_eq!(s.read("cpu.max")?, "50000 100000", "cpu.max");
    // systemd has no hugetlb property: the runtime writes it into the delegated scope.
    ensure_eq!(s.read("hugetlb.2MB.max")?, "4194304", "hugetlb.2MB.max");
    // Killing the init empties the scope; `delete` then removes the rest.
    sd(rt, &["kill", &s.id, "KILL"])?.ok()?;
    wait_status(rt, &s.id, "stopped")?;
    sd(rt, &["delete", &s.id])?.ok()?;
    s.gone(rt, &b)
}

fn systemd_custom_slice(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    // A nested slice: berthtest.slice/berthtest-PID.slice/berth-ID.scope.
    let slice = format!("berthtest-{}.slice", std::process::id());
    let s = Scoped::new(rt, &slice);
    let (b, out) = scoped_bundle(rt, &s, REPORT_CGROUP, json!({"pids": {"limit": 20}}))?;
    create_start(rt, &s, &b)?;
    let want = format!(
        "/berthtest.slice/berthtest-{}.slice/berth-{}.scope",
        std::process::id(),
        s.id
    );
    ensure_eq!(s.cgroup, want, "expected scope path");
    ensure_eq!(
        inside_cgroup(&out)?,
        want,
        "/proc/self/cgroup in the container"
    );
    ensure_eq!(s.prop("Slice")?, slice, "{} Slice", s.unit);
    ensure_eq!(s.prop("TasksMax")?, "20", "{} TasksMax", s.unit);
    ensure_eq!(s.read("pids.max")?, "20", "pids.max");
    sd(rt, &["delete", "--force", &s.id])?.ok()?;
    s.gone(rt, &b)
}

fn systemd_pids_limit_fork_fails(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, _) = scoped_bundle(
        rt,
        &s,
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo looped",
        json!({"pids": {"limit": 4}}),
    )?;
    let dir = b.dir.display().to_string();
    let out = sd(rt, &["run", "--bundle", &dir, &s.id])?;
    let all = format!("{}{}", out.stdout, out.stderr);
    ensure!(
        all.contains("fork"),
        "no fork failed under pids.limit 4 in a systemd scope: {out}"
    );
    // `run` deletes the container when it exits, unit included.
    s.gone(rt, &b)
}

fn systemd_memory_limit_oom_kills(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, _) = scoped_bundle(
        rt,
        &s,
        "dd if=/dev/zero of=/dev/null bs=64M count=1 && echo survived; exit $?",
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    )?;
    let dir = b.dir.display().to_string();
    let out = sd(rt, &["run", "--bundle", &dir, &s.id])?;
    ensure!(!out.stdout.contains("survived"), "dd was not killed: {out}");
    ensure_eq!(out.code, 137, "exit code of the OOM-killed dd: {out}");
    s.gone(rt, &b)
}

fn systemd_device_rule_open_fails(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (mut b, _) = scoped_bundle(
        rt,
        &s,
        DEVICE_PROBE,
        json!({"devices": [{"allow": false, "access": "rwm"}]}),
    )?;
    allow_mknod(&mut b)?;
    let dir = b.dir.display().to_string();
    check_device_probe(&sd(rt, &["run", "--bundle", &dir, &s.id])?.ok()?)?;
    s.gone(rt, &b)
}

fn systemd_ps_and_stats(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, _) = scoped_bundle(
        rt,
        &s,
        "sleep 1000 & exec sleep 1001",
        json!({"pids": {"limit": 10}}),
    )?;
    create_start(rt, &s, &b)?;
    let state: Value = serde_json::from_str(&sd(rt, &["state", &s.id])?.ok()?.stdout)?;
    let init = state["pid"].as_i64().unwrap_or(0);
    let out = sd(rt, &["ps", "-f", "json", &s.id])?.ok()?;
    let pids: Vec<i64> = serde_json::from_str(out.stdout.trim())?;
    ensure!(
        pids.contains(&init),
        "ps -f json {pids:?} lacks the init {init}"
    );
    ensure_eq!(pids.len(), 2, "processes in the scope per ps");
    let out = sd(rt, &["events", "--stats", &s.id])?.ok()?;
    let ev: Value = serde_json::from_str(out.stdout.trim())?;
    ensure_eq!(ev["type"], json!("stats"), "event type");
    ensure_eq!(
        ev["data"]["pids"]["current"],
        json!(2),
        "pids.current: {ev}"
    );
    ensure_eq!(ev["data"]["pids"]["limit"], json!(10), "pids.limit: {ev}");
    ensure!(
        ev["data"]["memory"]["usage"]["usage"].as_u64() > Some(0),
        "no memory usage in the stats: {ev}"
    );
    sd(rt, &["delete", "--force", &s.id])?.ok()?;
    s.gone(rt, &b)
}

fn systemd_delete_removes_unit(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, _) = scoped_bundle(
        rt,
        &s,
        "sleep 1000 & exec sleep 1000",
        json!({"pids": {"limit": 10}}),
    )?;
    create_start(rt, &s, &b)?;
    ensure_eq!(s.prop("ActiveState")?, "active", "{} ActiveState", s.unit);
    ensure!(s.dir().exists(), "no cgroup {}", s.dir().display());
    let procs = s.read("cgroup.procs")?;
    ensure_eq!(
        procs.lines().count(),
        2,
        "processes in the scope: {procs:?}"
    );
    sd(rt, &["delete", "--force", &s.id])?.ok()?;
    s.gone(rt, &b)
}

fn systemd_failed_create_leaves_no_unit(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    // The bind source is missing: create fails after the scope exists (runtimes join the
    // cgroup before setting up the rootfs).
    let (mut b, _) = scoped_bundle(rt, &s, "true", json!({"pids": {"limit": 10}}))?;
    let missing = rt.tmp().join(format!("missing-{}", s.id));
    b.push_mount(json!({
        "destination": "/missing", "type": "bind",
        "source": missing.display().to_string(), "options": ["rbind"]
    }));
    b.save()?;
    let dir = b.dir.display().to_string();
    sd(rt, &["create", "--bundle", &dir, &s.id])?.failed()?;
    s.gone(rt, &b)
}

fn systemd_pause_resume(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (b, _) = scoped_bundle(rt, &s, "exec sleep 1000", json!({}))?;
    create_start(rt, &s, &b)?;
    sd(rt, &["pause", &s.id])?.ok()?;
    ensure_eq!(status(rt, &s.id)?, "paused", "status after pause");
    ensure_eq!(s.read("cgroup.freeze")?, "1", "cgroup.freeze after pause");
    ensure!(
        s.read("cgroup.events")?.contains("frozen 1"),
        "cgroup.events does not say frozen: {}",
        s.read("cgroup.events")?
    );
    sd(rt, &["resume", &s.id])?.ok()?;
    ensure_eq!(status(rt, &s.id)?, "running", "status after resume");
    ensure_eq!(s.read("cgroup.freeze")?, "0", "cgroup.freeze after resume");
    // A paused container can be deleted by force, and its unit goes with it.
    sd(rt, &["pause", &s.id])?.ok()?;
    sd(rt, &["delete", "--force", &s.id])?.ok()?;
    s.gone(rt, &b)
}

fn systemd_update_sets_properties(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    let s = Scoped::new(rt, "system.slice");
    let (mut b, _) = scoped_bundle(
        rt,
        &s,
        "exec sleep 1000",
        json!({"pids": {"limit": 64}, "devices": [{"allow": false, "access": "rwm"}]}),
    )?;
    allow_mknod(&mut b)?;
    create_start(rt, &s, &b)?;
    sd(
        rt,
        &[
            "update",
            "--pids-limit",
            "20",
            "--memory",
            "64m",
            "--memory-swap",
            "-1",
            &s.id,
        ],
    )?
    .ok()?;
    ensure_eq!(s.read("pids.max")?, "20", "pids.max after update");
    ensure_eq!(s.read("memory.max")?, "67108864", "memory.max after update");
    // systemd must know the new limits too, or its next reload puts the old ones back.
    ensure_eq!(
        s.prop("TasksMax")?,
        "20",
        "{} TasksMax after update",
        s.unit
    );
    ensure_eq!(
        s.prop("MemoryMax")?,
        "67108864",
        "{} MemoryMax after update",
        s.unit
    );
    systemctl(&["daemon-reload"])?;
    ensure_eq!(s.read("pids.max")?, "20", "pids.max after daemon-reload");
    ensure_eq!(
        s.read("memory.max")?,
        "67108864",
        "memory.max after daemon-reload"
    );
    // The device rules outlive the update and systemd's reload (the eBPF program is the
    // runtime's, on a cgroup systemd delegated).
    let out = sd(
        rt,
        &[
            "exec",
            &s.id,
            "sh",
            "-c",
            "mknod /tmp/kmsg c 1 11 && echo berth-device-probe > /tmp/kmsg && echo kmsg-ok; true",
        ],
    )?;
    ensure!(
        !out.stdout.contains("kmsg-ok") && out.stderr.contains("Operation not permitted"),
        "the device rule no longer bites after update and daemon-reload: {out}"
    );
    // The new (lower) pids limit bites: with sleep as the only process, 24 more cannot all
    // start, which 64 would have allowed.
    // (It leaves room for the exec itself: runc's Go init needs several threads, and
    // under a limit of 7 it could not start at all.)
    let out = sd(
        rt,
        &[
            "exec",
            &s.id,
            "sh",
            "-c",
            "for i in $(seq 24); do sleep 5 & done 2>&1; echo looped",
        ],
    )?;
    let all = format!("{}{}", out.stdout, out.stderr);
    ensure!(all.contains("fork"), "no fork failed after update: {out}");
    sd(rt, &["delete", "--force", &s.id])?.ok()?;
    s.gone(rt, &b)
}

/// A `linux.cgroupsPath` that is not `slice:prefix:name` is refused before any unit exists.
fn systemd_bad_path_refused(rt: &Runtime) -> Outcome {
    if let Some(o) = need_systemd() {
        return o;
    }
    // (path, refused by runc 1.1 too)
    for (path, everywhere) in [("/berth-not-systemd", true), ("notaslice:berth:x", false)] {
        if !everywhere && !is_berth() {
            continue;
        }
        let id = rt.new_id();
        let mut b = sh_bundle(rt, "true")?;
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.save()?;
        let dir = b.dir.display().to_string();
        let out = sd(rt, &["create", "--bundle", &dir, &id])?.failed()?;
        check_berth_error(&out.stderr, "linux.cgroupsPath")?;
        let units = systemctl(&["list-units", "--all", "--plain", "--no-legend", "*.scope"])?;
        ensure!(
            !units.contains(&id),
            "a unit for the refused {path:?}: {units}"
        );
        rt.assert_no_leftovers(&id, &b)?;
    }
    pass()
}

/// Without systemd, `--systemd-cgroup` fails at create with the field named and nothing left.
fn cgroup_systemd_absent_is_refused(rt: &Runtime) -> Outcome {
    if systemd_running() {
        return unsupported("systemd runs here: nothing to refuse");
    }
    let id = rt.new_id();
    let mut b = sh_bundle(rt, "true")?;
    b.config["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
    b.save()?;
    let dir = b.dir.display().to_string();
    let out = sd(rt, &["run", "--bundle", &dir, &id])?.failed()?;
    ensure!(!out.stderr.trim().is_empty(), "no error: {out}");
    if is_berth() {
        check_berth_error(&out.stderr, "linux.cgroupsPath")?;
        ensure!(
            out.stderr.contains("systemd"),
            "the error does not say systemd is the problem: {out}"
        );
    }
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
