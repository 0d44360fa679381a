//! Rootless: the runtime run by an unprivileged host user, the container in a
//! user namespace that maps its root to that user. Shaped like
//! `runc spec --rootless`: no network namespace, /sys bound from the host, no
//! cgroup mount, devpts without gid=5 (unmapped), no resources.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_tests::{ensure, Error, Runtime};
use serde_json::{json, Value};

use crate::common::{pass, sh_bundle};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![case!("rootless.run", rootless_run)]
}

/// An unprivileged uid that needs no passwd entry; distinct per test run.
fn unprivileged_uid() -> u32 {
    61000 + std::process::id() % 4000
}

fn rootless_config(cfg: &mut Value, uid: u32) {
    let linux = &mut cfg["linux"];
    let map = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["uidMappings"] = map.clone();
    linux["gidMappings"] = map;
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
        obj.remove("cgroupsPath");
    }
    if let Some(mounts) = cfg["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup" && m["type"] != "cgroup2");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
}

/// Let `uid` reach `path` (the test's temp dirs are private to root).
fn open_up(path: &Path) -> Result<(), Error> {
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.starts_with("/tmp") && dir != Path::new("/tmp") {
            let mut perm = fs::metadata(dir)?.permissions();
            perm.set_mode(perm.mode() | 0o711);
            fs::set_permissions(dir, perm)?;
        }
        p = dir.parent();
    }
    Ok(())
}

fn rootless_run(rt: &Runtime) -> Outcome {
    let uid = unprivileged_uid();
    let mut b = sh_bundle(
        rt,
        "cat /proc/self/uid_map; id -u; grep Cpus_allowed_list /proc/self/status; echo ok",
    )?;
    rootless_config(&mut b.config, uid);
    b.save()?;
    let state = rt.tmp().join(format!("rootless-state-{uid}"));
    fs::create_dir_all(&state)?;
    nix::unistd::chown(&state, Some(uid.into()), Some(uid.into()))
        .map_err(|e| Error(format!("chown {}: {e}", state.display())))?;
    open_up(&b.config_path())?;
    open_up(&state)?;
    let id = rt.new_id();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ])
    .arg("env")
    .arg("XDG_RUNTIME_DIR=")
    .arg(berth_tests::runtime::binary())
    .arg("--root")
    .arg(&state)
    .args(["run", "--bundle"])
    .arg(b.config_path().parent().unwrap_or(Path::new("/")))
    .arg(&id);
    let out = berth_tests::reaper::output(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "rootless run failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let map: Vec<&str> = lines
        .first()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    ensure!(
        map == ["0", &uid.to_string(), "1"],
        "uid_map inside should map 0 to {uid}: {stdout:?}"
    );
    ensure!(
        lines.get(1) == Some(&"0"),
        "process should be root inside: {stdout:?}"
    );
    // No cgroup here narrows it: the container runs on the CPUs the runtime
    // was given, whatever the runtime did with its init meanwhile.
    let own = fs::read_to_string("/proc/thread-self/status")?;
    let own = own.lines().find(|l| l.starts_with("Cpus_allowed_list"));
    ensure!(
        own.is_some() && lines.get(2).copied() == own,
        "cpu affinity inside should be the runtime's {own:?}: {stdout:?}"
    );
    let left: Vec<_> = fs::read_dir(&state)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(
        left.is_empty(),
        "state left behind in {}: {left:?}",
        state.display()
    );
    pass()
}
