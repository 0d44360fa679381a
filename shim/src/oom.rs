//! OOM kills in a container's memory cgroup, from the kernel's `oom_kill`
//! counter (v1 memory.oom_control, v2 memory.events), read when the container
//! starts and again when one of its processes ends. Shared by berth-shim
//! (the exit record's `oom_killed`) and containerd-shim-berth-v2
//! (`/tasks/oom`, published before the exit so containerd's CRI plugin
//! reports OOMKilled).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub struct OomWatch {
    file: File,
    seen: u64,
}

impl OomWatch {
    /// None when the process has no memory cgroup the shim can read.
    pub fn new(pid: i32) -> Option<OomWatch> {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mut candidates: Vec<PathBuf> = Vec::new();
        for line in cg.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let path = path.trim_start_matches('/');
            if ctrls.split(',').any(|c| c == "memory") {
                candidates.push(
                    PathBuf::from("/sys/fs/cgroup/memory")
                        .join(path)
                        .join("memory.oom_control"),
                );
            } else if ctrls.is_empty() {
                // Pure v2, or the hybrid layout's unified mount.
                for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                    candidates.push(PathBuf::from(root).join(path).join("memory.events"));
                }
            }
        }
        candidates.into_iter().find_map(|p| {
            let file = File::open(p).ok()?;
            let seen = count(&file)?;
            Some(OomWatch { file, seen })
        })
    }

    /// Did the kernel OOM-kill anything in the cgroup since the last call
    /// (or since `new`)?
    pub fn killed_since(&mut self) -> bool {
        match count(&self.file) {
            Some(n) if n > self.seen => {
                self.seen = n;
                true
            }
            _ => false,
        }
    }
}

fn count(f: &File) -> Option<u64> {
    let mut buf = [0u8; 512];
    let n = f.read_at(&mut buf, 0).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}
