//! What a container may leave behind on the host, and the check that nothing is.
//!
//! A container is recognised by the cgroup path of its bundle, which every test bundle also
//! carries in its process environment (`MARKER_ENV`), so processes are found even when they
//! never reached their cgroup.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bundle::Bundle;
use crate::runtime::Runtime;
use crate::tempdir::mounts_under;
use crate::{Error, Result};

pub const MARKER_ENV: &str = "BERTH_TEST_CONTAINER";

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Every directory `cgroup` (a linux.cgroupsPath) could be in: one per mounted cgroup
/// hierarchy (v1 controllers, the v2 unified mount). A plain directory where a hierarchy is
/// not mounted (e.g. /sys/fs/cgroup/unified hidden with HIDE_CGROUP2) is not a cgroup.
pub fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    let rel = cgroup.trim_start_matches('/');
    if rel.is_empty() || !rel.contains("berth") {
        return Vec::new();
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = crate::inside::mountinfo(&info)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .filter(|m| m.mount_point.starts_with(CGROUP_ROOT))
        .map(|m| Path::new(&m.mount_point).join(rel))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `cgroup_dirs` plus the plain directories a runtime may have made under CGROUP_ROOT where
/// no hierarchy is mounted: cleanup removes those too.
fn cgroup_dirs_and_strays(cgroup: &str) -> Vec<PathBuf> {
    let mut out = cgroup_dirs(cgroup);
    let rel = cgroup.trim_start_matches('/');
    if rel.is_empty() || !rel.contains("berth") {
        return out;
    }
    if let Ok(rd) = fs::read_dir(CGROUP_ROOT) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Pids of processes in `cgroup` or carrying its marker in their environment.
pub fn processes(cgroup: &str) -> Vec<i32> {
    let marker = format!("{MARKER_ENV}={cgroup}");
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let dir = e.path();
        if is_zombie(&dir) {
            continue;
        }
        let in_cgroup = fs::read_to_string(dir.join("cgroup")).is_ok_and(|c| {
            c.lines().any(|l| {
                let path = l.splitn(3, ':').nth(2).unwrap_or("");
                path == cgroup || path.starts_with(&format!("{cgroup}/"))
            })
        });
        let marked = fs::read(dir.join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()));
        if in_cgroup || marked {
            pids.push(pid);
        }
    }
    pids
}

/// A zombie is dead already: the reaper collects it.
fn is_zombie(proc_dir: &Path) -> bool {
    fs::read_to_string(proc_dir.join("stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// SIGKILLs the processes of a test container, found as in `processes`.
pub fn kill_processes(cgroup: &str) {
    for pid in processes(cgroup) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Removes the (empty) cgroup directories a runtime left for `cgroup`; only ever paths whose
/// name contains "berth", which only this suite makes.
pub fn remove_cgroups(cgroup: &str) {
    for dir in cgroup_dirs_and_strays(cgroup) {
        if dir.exists() {
            clear_plain_dir(&dir);
            for _ in 0..50 {
                if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// crun 1.8 with the unified mount hidden (HIDE_CGROUP2) makes a plain directory where it was,
/// in the host's /sys/fs/cgroup tmpfs, writes its pid into a regular `cgroup.procs` file there
/// and never removes either: hidden again under the host's cgroup2 mount, they piled up unseen.
/// Such files go, so the directory can; a real cgroup directory is left to rmdir.
fn clear_plain_dir(dir: &Path) {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    let Ok(fs_type) = statfs(dir).map(|s| s.filesystem_type()) else {
        return;
    };
    if fs_type == CGROUP_SUPER_MAGIC || fs_type == CGROUP2_SUPER_MAGIC {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        if e.file_type().is_ok_and(|t| t.is_file()) && name.to_string_lossy().starts_with("cgroup.")
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn fifos_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_fifo() {
            found.push(e.path());
        } else if ft.is_dir() && !ft.is_symlink() {
            fifos_under(&e.path(), found);
        }
    }
}

fn entries_naming(dir: &Path, id: &str, found: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().contains(id) {
            found.push(e.path());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            entries_naming(&e.path(), id, found);
        }
    }
}

/// Fails listing everything the container `id` of bundle `b` left behind: state under
/// --root, an entry in `list`, cgroup directories, mounts of the bundle in this mount
/// namespace, processes, fifos in the state root or the bundle.
pub fn check(rt: &Runtime, id: &str, b: &Bundle) -> Result {
    let mut problems = Vec::new();
    let mut named = Vec::new();
    entries_naming(&rt.root, id, &mut named);
    if !named.is_empty() {
        problems.push(format!("state left under --root: {named:?}"));
    }
    if let Ok(out) = rt.cmd(&["list", "-q"]) {
        if out.stdout.lines().any(|l| l.trim() == id) {
            problems.push(format!("`list -q` still shows {id}"));
        }
    }
    let cg = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let cg_left: Vec<_> = cgroup_dirs(&cg)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    if !cg_left.is_empty() {
        problems.push(format!("cgroup directories left: {cg_left:?}"));
    }
    let m = mounts_under(&b.dir);
    if !m.is_empty() {
        problems.push(format!("mounts left in the host namespace: {m:?}"));
    }
    let pids = processes(&cg);
    if !pids.is_empty() {
        problems.push(format!("container processes left: {pids:?}"));
    }
    // Other containers of the same test may legitimately still have their fifos.
    let mut fifos = Vec::new();
    for dir in &named {
        fifos_under(dir, &mut fifos);
    }
    fifos_under(&b.dir, &mut fifos);
    if !fifos.is_empty() {
        problems.push(format!("fifos left: {fifos:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error(format!(
            "container {id} left things behind: {}",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker itself must be able to fail: fake leftovers (a state directory naming the
    /// id, a fifo in it, a live process carrying the bundle's marker) are all reported.
    #[test]
    fn reports_state_fifo_and_process() {
        let rt = Runtime::new().expect("runtime");
        let b = rt.bundle(&["true"]).expect("bundle");
        let id = rt.new_id();
        let dir = rt.root.join(&id);
        fs::create_dir_all(&dir).expect("state dir");
        nix::unistd::mkfifo(&dir.join("exec.fifo"), nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        let cg = b.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(MARKER_ENV, &cg)
            .spawn()
            .expect("spawn sleep");
        let err = check(&rt, &id, &b).expect_err("leftovers must be reported");
        let _ = child.kill();
        let _ = child.wait();
        let msg = err.to_string();
        assert!(msg.contains("state left under --root"), "{msg}");
        assert!(msg.contains("fifos left"), "{msg}");
        assert!(msg.contains("container processes left"), "{msg}");
        fs::remove_dir_all(&dir).expect("cleanup");
        check(&rt, &id, &b).expect("nothing left after cleanup");
    }
}
