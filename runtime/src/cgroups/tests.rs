//! Against the host's real cgroups (root): each test makes its own
//! `/berth-test-<pid>-<name>` cgroup and removes it, even when it fails.
//! The same binary runs in the v2 microVM (`integration/microvm/run-tests.sh`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxBuilder, LinuxResources, Spec};

use super::{Cgroup, CgroupError};

const BUSYBOX: &str = "/bin/busybox";

fn path(name: &str) -> String {
    format!("/berth-test-{}-{name}", std::process::id())
}

fn spec(name: &str, resources: serde_json::Value) -> Spec {
    let r: LinuxResources = serde_json::from_value(resources).expect("resources json");
    let linux = LinuxBuilder::default()
        .cgroups_path(PathBuf::from(path(name)))
        .resources(r)
        .build()
        .expect("linux");
    let mut s = Spec::default();
    s.set_linux(Some(linux));
    s
}

/// Destroys the cgroup and kills the helper processes when the test ends.
struct Fixture {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.destroy();
    }
}

fn create(name: &str, resources: serde_json::Value) -> Fixture {
    let cg = Cgroup::create(&spec(name, resources), name, false).expect("create cgroup");
    Fixture {
        cg,
        children: Vec::new(),
    }
}

impl Fixture {
    /// Start `script` under busybox sh, held on stdin until it is in the cgroup.
    fn run(&mut self, script: &str) -> usize {
        let mut child = Command::new(BUSYBOX)
            .args(["sh", "-c", &format!("read _go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn busybox");
        self.cg
            .add_task(Pid::from_raw(child.id() as i32))
            .expect("add_task");
        if let Some(stdin) = child.stdin.as_mut() {
            stdin.write_all(b"go\n").expect("release child");
        }
        self.children.push(child);
        self.children.len() - 1
    }

    /// Wait for child `i`; its exit status and stdout+stderr.
    fn wait(&mut self, i: usize) -> (std::process::ExitStatus, String) {
        let child = &mut self.children[i];
        let status = child.wait().expect("wait");
        let mut out = String::new();
        if let Some(o) = child.stdout.as_mut() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(e) = child.stderr.as_mut() {
            let _ = e.read_to_string(&mut out);
        }
        (status, out)
    }

    /// Read a cgroup file: `v1` is (controller, file), `v2` the unified file.
    fn read(&self, v1: (&str, &str), v2: &str) -> String {
        let (dir, file) = if self.cg.is_v2() {
            (self.cg.dir(""), v2)
        } else {
            (self.cg.dir(v1.0), v1.1)
        };
        let p = dir.expect("controller mounted").join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }
}

fn dirs_exist(name: &str) -> Vec<PathBuf> {
    let rel = path(name);
    let rel = rel.trim_start_matches('/');
    let mut found = Vec::new();
    for root in ["/sys/fs/cgroup"] {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        found.extend(
            rd.flatten()
                .map(|e| e.path().join(rel))
                .filter(|p| p.exists()),
        );
        let top = PathBuf::from(root).join(rel);
        if top.exists() {
            found.push(top);
        }
    }
    found
}

#[test]
fn limits_are_written_and_destroy_removes_them() {
    let f = create(
        "limits",
        serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432},
            "pids": {"limit": 7},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        }),
    );
    assert_eq!(
        f.read(("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    assert_eq!(
        f.read(("memory", "memory.soft_limit_in_bytes"), "memory.low"),
        "33554432"
    );
    assert_eq!(f.read(("pids", "pids.max"), "pids.max"), "7");
    assert_eq!(f.read(("cpuset", "cpuset.cpus"), "cpuset.cpus"), "0");
    if f.cg.is_v2() {
        assert_eq!(f.read(("", ""), "cpu.max"), "50000 100000");
        // The shares → weight mapping of libcgroups and runc ≥ 1.3 (1024 → 100).
        assert_eq!(f.read(("", ""), "cpu.weight"), "59");
    } else {
        assert_eq!(f.read(("cpu", "cpu.shares"), ""), "512");
        assert_eq!(f.read(("cpu", "cpu.cfs_quota_us"), ""), "50000");
        assert_eq!(f.read(("cpu", "cpu.cfs_period_us"), ""), "100000");
    }
    assert!(!dirs_exist("limits").is_empty());
    f.cg.destroy().expect("destroy");
    assert_eq!(dirs_exist("limits"), Vec::<PathBuf>::new());
}

#[test]
fn bad_value_names_the_field_and_leaves_nothing() {
    let e = Cgroup::create(
        &spec("bad", serde_json::json!({"memory": {"limit": -5}})),
        "bad",
        false,
    )
    .err()
    .expect("negative limit must fail");
    assert!(
        e.to_string().starts_with("linux.resources.memory.limit: "),
        "{e}"
    );
    assert_eq!(dirs_exist("bad"), Vec::<PathBuf>::new());
}

#[test]
fn kernel_refusal_halfway_removes_the_cgroup() {
    // Passes validation, but the host has no CPU 1000: the kernel says EINVAL
    // after the directories exist.
    let e = Cgroup::create(
        &spec("half", serde_json::json!({"cpu": {"cpus": "1000"}})),
        "half",
        false,
    )
    .err()
    .expect("cpuset.cpus 1000 must fail");
    assert!(e.to_string().starts_with("linux.resources.cpu"), "{e}");
    assert_eq!(dirs_exist("half"), Vec::<PathBuf>::new());
}

#[test]
fn pids_limit_bites() {
    let mut f = create("pids", serde_json::json!({"pids": {"limit": 3}}));
    let i = f.run("for n in 1 2 3 4 5; do sleep 30 >/dev/null 2>&1 & done; echo spawned");
    let (_, out) = f.wait(i);
    assert!(out.contains("fork"), "a fork should have failed: {out:?}");
    let pids = f.cg.pids().expect("pids");
    assert!(
        !pids.is_empty() && pids.len() <= 3,
        "pids in cgroup: {pids:?}"
    );
    let s = f.cg.stats().expect("stats");
    assert_eq!(s.pids.limit, 3);
    assert!(s.pids.current >= 1);
    f.cg.destroy().expect("destroy");
    assert_eq!(dirs_exist("pids"), Vec::<PathBuf>::new());
}

#[test]
fn memory_limit_bites_and_reports_oom() {
    let mut f = create(
        "oom",
        serde_json::json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let mut events = f.cg.oom_events().expect("oom events");
    // dd fills a 64 MiB buffer: four times the limit.
    let i = f.run("dd if=/dev/zero of=/dev/null bs=64M count=1");
    let (status, out) = f.wait(i);
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(libc::SIGKILL) || !status.success(),
        "dd should have been OOM-killed: {status:?} {out}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while n == 0 && Instant::now() < deadline {
        n = events.wait(Some(Duration::from_millis(500))).expect("wait");
    }
    assert!(n > 0, "no OOM event seen");
    let s = f.cg.stats().expect("stats");
    assert_eq!(s.memory.usage.limit, 16777216);
}

#[test]
fn freeze_thaw_and_kill_all() {
    let mut f = create("freeze", serde_json::json!({}));
    let i = f.run("sleep 30");
    assert!(!f.cg.is_frozen().expect("state"));
    f.cg.freeze().expect("freeze");
    assert!(f.cg.is_frozen().expect("state"));
    f.cg.thaw().expect("thaw");
    assert!(!f.cg.is_frozen().expect("state"));
    f.cg.kill_all(Signal::SIGTERM).expect("kill_all");
    let (status, _) = f.wait(i);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn cpu_quota_throttles() {
    let mut f = create(
        "quota",
        serde_json::json!({"cpu": {"quota": 10000, "period": 100000}}),
    );
    f.run("while :; do :; done");
    std::thread::sleep(Duration::from_millis(1200));
    let s = f.cg.stats().expect("stats");
    assert!(
        s.cpu.throttling.throttled_periods > 0,
        "no throttling: {:?}",
        serde_json::to_string(&s.cpu)
    );
}

#[test]
fn device_rule_bites() {
    // Deny everything, then allow only the defaults libcgroups adds:
    // /dev/kmsg (1:11) is not among them.
    let mut f = create(
        "devices",
        serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}),
    );
    let i = f.run(": < /dev/null && echo null-ok; : < /dev/kmsg && echo kmsg-ok");
    let (_, out) = f.wait(i);
    assert!(out.contains("null-ok"), "{out}");
    assert!(!out.contains("kmsg-ok"), "/dev/kmsg opened: {out}");
}

#[test]
fn update_applies_and_check_before_update_refuses() {
    let mut f = create("update", serde_json::json!({"pids": {"limit": 10}}));
    let r: LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": 20}})).expect("json");
    f.cg.apply(&r).expect("apply");
    assert_eq!(f.read(("pids", "pids.max"), "pids.max"), "20");

    // A process holding ~8 MiB, then a 1 MiB limit with checkBeforeUpdate.
    // dd fills its 8 MiB buffer, then blocks writing to a pipe nobody reads.
    f.run("dd if=/dev/zero bs=8M count=1 | sleep 30");
    let deadline = Instant::now() + Duration::from_secs(10);
    let usage = || {
        f.read(("memory", "memory.usage_in_bytes"), "memory.current")
            .parse::<u64>()
            .unwrap_or(0)
    };
    while usage() < 4 << 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        usage() >= 4 << 20,
        "the helper never used 4 MiB: {}",
        usage()
    );
    let before = f.read(("memory", "memory.limit_in_bytes"), "memory.max");
    let r: LinuxResources = serde_json::from_value(
        serde_json::json!({"memory": {"limit": 1048576, "checkBeforeUpdate": true}}),
    )
    .expect("json");
    let e = f.cg.apply(&r).expect_err("below usage must fail");
    assert!(
        e.to_string().starts_with("linux.resources.memory.limit: "),
        "{e}"
    );
    assert_eq!(
        f.read(("memory", "memory.limit_in_bytes"), "memory.max"),
        before
    );

    let bad: LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": -3}})).expect("json");
    let e = f.cg.apply(&bad).expect_err("negative must fail");
    assert!(
        matches!(e, CgroupError::Config { ref field, .. } if field == "linux.resources.pids.limit")
    );
    assert_eq!(f.read(("pids", "pids.max"), "pids.max"), "20");
}

#[test]
fn open_finds_the_same_cgroup() {
    let mut f = create("open", serde_json::json!({}));
    f.run("sleep 30");
    let again = Cgroup::open(f.cg.record()).expect("open");
    let mut a = f.cg.pids().expect("pids");
    let mut b = again.pids().expect("pids");
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

/// The first real block device ("MAJ:MIN"), if the machine has one.
fn block_device() -> Option<String> {
    let mut devs: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    devs.sort_by_key(|e| e.file_name());
    devs.iter()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram")
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn blkio_throttle_is_written() {
    let Some(dev) = block_device() else {
        eprintln!("no block device: throttle not testable here");
        return;
    };
    let (major, minor) = dev.split_once(':').expect("MAJ:MIN");
    let f = create(
        "blkio",
        serde_json::json!({"blockIO": {"throttleWriteBpsDevice": [
            {"major": major.parse::<i64>().unwrap(), "minor": minor.parse::<i64>().unwrap(), "rate": 1048576}
        ]}}),
    );
    let got = f.read(("blkio", "blkio.throttle.write_bps_device"), "io.max");
    let want = if f.cg.is_v2() {
        format!("{dev} rbps=max wbps=1048576")
    } else {
        format!("{dev} 1048576")
    };
    assert!(got.contains(&want), "{got:?} lacks {want:?}");
}

#[test]
fn hugetlb_limit_or_clear_error() {
    let r = serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    match Cgroup::create(&spec("huge", r), "huge", false) {
        Ok(cg) => {
            let f = Fixture {
                cg,
                children: Vec::new(),
            };
            assert!(f.cg.is_v2(), "v1 here has no hugetlb hierarchy");
            assert_eq!(f.read(("", ""), "hugetlb.2MB.max"), "4194304");
        }
        Err(e) => {
            assert!(
                e.to_string()
                    .starts_with("linux.resources.hugepageLimits[0]: "),
                "{e}"
            );
            assert_eq!(dirs_exist("huge"), Vec::<PathBuf>::new());
        }
    }
}

#[test]
fn unified_on_v2_only() {
    let r = serde_json::json!({"unified": {"memory.high": "33554432"}});
    match Cgroup::create(&spec("unified", r), "unified", false) {
        Ok(cg) => {
            let f = Fixture {
                cg,
                children: Vec::new(),
            };
            assert!(f.cg.is_v2());
            assert_eq!(f.read(("", ""), "memory.high"), "33554432");
        }
        Err(e) => {
            assert!(
                e.to_string().starts_with("linux.resources.unified: "),
                "{e}"
            );
            assert_eq!(dirs_exist("unified"), Vec::<PathBuf>::new());
        }
    }
}

#[test]
fn events_watch_reports_stats_and_oom() {
    let mut f = create("events", serde_json::json!({"memory": {"limit": 16777216}}));
    let cg = &f.cg;
    let started = Instant::now();
    let mut out = Vec::new();
    // The OOM happens while watch runs: the helper waits 300 ms before dd.
    let mut child = Command::new(BUSYBOX)
        .args([
            "sh",
            "-c",
            "read _go; sleep 0.3; dd if=/dev/zero of=/dev/null bs=64M count=1",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    cg.add_task(Pid::from_raw(child.id() as i32))
        .expect("add_task");
    if let Some(stdin) = child.stdin.as_mut() {
        stdin.write_all(b"go\n").expect("release");
    }
    super::events::watch(cg, "c-events", Duration::from_millis(200), &mut out, || {
        started.elapsed() < Duration::from_secs(3)
    })
    .expect("watch");
    let _ = child.wait();
    f.children.push(child);
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "oom" && l["id"] == "c-events"),
        "{text}"
    );
    let stats: Vec<_> = lines.iter().filter(|l| l["type"] == "stats").collect();
    assert!(stats.len() >= 5, "{text}");
    assert_eq!(stats[0]["data"]["memory"]["usage"]["limit"], 16777216);
}

#[test]
fn one_mib_is_enough_for_echo() {
    // The floor the issue sets for a whole container: the process itself
    // must fit well under it, leaving the runtime's init the rest.
    let mut f = create("tiny", serde_json::json!({"memory": {"limit": 1048576}}));
    let i = f.run("echo hello-from-1MiB");
    let (status, out) = f.wait(i);
    assert!(status.success(), "{status:?} {out}");
    assert!(out.contains("hello-from-1MiB"), "{out}");
    let max = f.read(("memory", "memory.max_usage_in_bytes"), "memory.peak");
    eprintln!("peak usage of `sh -c echo` in the cgroup: {max} bytes");
}

#[test]
fn blkio_weight_is_written_or_named() {
    match Cgroup::create(
        &spec("weight", serde_json::json!({"blockIO": {"weight": 500}})),
        "weight",
        false,
    ) {
        Ok(cg) => {
            let f = Fixture {
                cg,
                children: Vec::new(),
            };
            let dir = f.cg.dir(if f.cg.is_v2() { "io" } else { "blkio" }).unwrap();
            let found = [
                "blkio.weight",
                "blkio.bfq.weight",
                "io.bfq.weight",
                "io.weight",
            ]
            .iter()
            .filter_map(|n| std::fs::read_to_string(dir.join(n)).ok())
            // io.weight gets runc's mapping: 1 + (500 - 10) * 9999 / 990.
            .any(|v| v.trim() == "500" || v.contains("default 500") || v.contains("default 4950"));
            assert!(found, "weight 500 not found in {}", dir.display());
        }
        Err(e) => {
            // No weight-capable I/O scheduler (BFQ, io.cost): the write fails.
            assert!(e.to_string().starts_with("linux.resources.blockIO"), "{e}");
            assert_eq!(dirs_exist("weight"), Vec::<PathBuf>::new());
        }
    }
}

#[test]
fn relative_and_default_paths_go_under_berth() {
    // berth's shared parent stays once made (as runc's parents do): when this test is what made
    // it, it goes again at the end (declared first, so dropped after the fixtures).
    let _parent = (!hierarchy_roots().iter().any(|r| r.join("berth").exists()))
        .then(|| RemoveEverywhere(super::placement::PARENT.into()));
    let id = format!("berth-test-{}-default", std::process::id());
    let mut s = Spec::default();
    s.set_linux(Some(LinuxBuilder::default().build().expect("linux")));
    let f = Fixture {
        cg: Cgroup::create(&s, &id, false).expect("create default"),
        children: Vec::new(),
    };
    assert_eq!(f.cg.record().path, format!("/berth/{id}"));
    let dir = f.cg.dir("pids").or_else(|| f.cg.dir("")).expect("pids dir");
    assert!(dir.ends_with(format!("berth/{id}")), "{}", dir.display());
    assert!(dir.exists());

    let rel = format!("berth-test-{}-rel/inner", std::process::id());
    let linux = LinuxBuilder::default()
        .cgroups_path(PathBuf::from(&rel))
        .build()
        .expect("linux");
    s.set_linux(Some(linux));
    let g = Fixture {
        cg: Cgroup::create(&s, "rel", false).expect("create relative"),
        children: Vec::new(),
    };
    assert_eq!(g.cg.record().path, format!("/berth/{rel}"));
    let d = g.cg.dir("pids").or_else(|| g.cg.dir("")).expect("dir");
    assert!(d.exists(), "{}", d.display());
    g.cg.destroy().expect("destroy");
    assert!(!d.exists());
    // The intermediate directory this test made, which destroy leaves like runc.
    let made = format!("berth/berth-test-{}-rel", std::process::id());
    drop(RemoveEverywhere(made.clone()));
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| rd.flatten().map(|e| e.path().join(&made)).collect())
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .filter(|p: &PathBuf| p.exists())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn systemd_without_systemd_is_a_clear_error() {
    let mut s = Spec::default();
    let linux = LinuxBuilder::default()
        .cgroups_path(PathBuf::from("system.slice:berth:test"))
        .build()
        .expect("linux");
    s.set_linux(Some(linux));
    let e = Cgroup::create(&s, "sd", true)
        .err()
        .expect("no systemd here: must fail");
    let e = e.to_string();
    assert!(e.starts_with("linux.cgroupsPath: "), "{e}");
    assert!(e.contains("--systemd-cgroup"), "{e}");
}

#[test]
fn cpu_burst_idle_realtime_and_memory_knobs() {
    let f = create(
        "knobs",
        serde_json::json!({
            "cpu": {"quota": 50000, "period": 100000, "burst": 20000, "idle": 1},
        }),
    );
    assert_eq!(
        f.read(("cpu", "cpu.cfs_burst_us"), "cpu.max.burst"),
        "20000"
    );
    assert_eq!(f.read(("cpu", "cpu.idle"), "cpu.idle"), "1");
    if f.cg.is_v2() {
        let e = Cgroup::create(
            &spec("rt", serde_json::json!({"cpu": {"realtimeRuntime": 1000}})),
            "rt",
            false,
        )
        .err()
        .expect("realtime on v2 must be refused");
        assert!(
            e.to_string()
                .starts_with("linux.resources.cpu.realtimeRuntime: "),
            "{e}"
        );
        assert_eq!(dirs_exist("rt"), Vec::<PathBuf>::new());
        return;
    }
    let g = create(
        "v1mem",
        serde_json::json!({
            "cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 1000},
            "memory": {"limit": 33554432, "swappiness": 10, "disableOOMKiller": true},
        }),
    );
    assert_eq!(g.read(("cpu", "cpu.rt_runtime_us"), ""), "1000");
    assert_eq!(g.read(("cpu", "cpu.rt_period_us"), ""), "1000000");
    assert_eq!(g.read(("memory", "memory.swappiness"), ""), "10");
    assert!(g
        .read(("memory", "memory.oom_control"), "")
        .contains("oom_kill_disable 1"));
}

#[test]
fn rdma_is_written_by_berth_or_named() {
    // No RDMA hardware here or in the microVM: v2 has the controller and the
    // kernel refuses the unknown device; this v1 host has no rdma hierarchy.
    let r = serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}});
    let e = Cgroup::create(&spec("rdma", r), "rdma", false)
        .err()
        .expect("no rdma device: must fail");
    assert!(e.to_string().starts_with("linux.resources.rdma"), "{e}");
    assert_eq!(dirs_exist("rdma"), Vec::<PathBuf>::new());
}

/// Containers created side by side under one fresh parent (berth's shared
/// `/berth`): whichever create made the parent, every child must take a
/// task. On v1 a cpuset child copied from a parent that a sibling made but
/// had not filled yet refuses tasks with ENOSPC.
#[test]
fn concurrent_creates_under_a_fresh_parent_all_take_tasks() {
    const KIDS: usize = 6;
    for round in 0..15 {
        let parent = format!("{}-r{round}", path("race"));
        // Declared first so it drops last, after the fixtures' destroys.
        let _parent = RemoveEverywhere(parent.clone());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(KIDS));
        let threads: Vec<_> = (0..KIDS)
            .map(|i| {
                let (parent, barrier) = (parent.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let linux = LinuxBuilder::default()
                        .cgroups_path(PathBuf::from(format!("{parent}/c{i}")))
                        .build()
                        .expect("linux");
                    let mut s = Spec::default();
                    s.set_linux(Some(linux));
                    barrier.wait();
                    Cgroup::create(&s, &format!("c{i}"), false)
                })
            })
            .collect();
        let mut fixtures = Vec::new();
        let mut errors = Vec::new();
        for t in threads {
            match t.join().expect("thread") {
                Ok(cg) => fixtures.push(Fixture {
                    cg,
                    children: Vec::new(),
                }),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for f in &mut fixtures {
            let i = f.run("exit 0");
            let (status, out) = f.wait(i);
            assert!(status.success(), "{out}");
        }
        assert!(errors.is_empty(), "round {round}: {errors:?}");
    }
}

/// Removes a cgroup directory this test made in every hierarchy.
struct RemoveEverywhere(String);

impl Drop for RemoveEverywhere {
    fn drop(&mut self) {
        let rel = self.0.trim_start_matches('/');
        for r in hierarchy_roots() {
            let _ = std::fs::remove_dir(r.join(rel));
        }
    }
}

/// /sys/fs/cgroup (v2) and every directory in it (the v1 hierarchies).
fn hierarchy_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.flatten().map(|e| e.path()));
    }
    roots
}
