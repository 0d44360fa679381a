//! OOM-kill detection from the container's memory cgroup counters (v1 memory.oom_control,
//! v2 memory.events): the `oom_kill` count is read when the container starts and when it ends.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::sys;

pub struct OomWatch {
    fd: OwnedFd,
    base: u64,
}

impl OomWatch {
    /// None when the container has no memory cgroup we can read.
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
                candidates.push(
                    PathBuf::from("/sys/fs/cgroup")
                        .join(path)
                        .join("memory.events"),
                );
                candidates.push(
                    PathBuf::from("/sys/fs/cgroup/unified")
                        .join(path)
                        .join("memory.events"),
                );
            }
        }
        for c in candidates {
            if let Ok(fd) = sys::open(&c, libc::O_RDONLY, 0) {
                if let Some(base) = read_count(&fd) {
                    return Some(OomWatch { fd, base });
                }
            }
        }
        None
    }

    pub fn killed(&self) -> bool {
        read_count(&self.fd).is_some_and(|n| n > self.base)
    }
}

fn read_count(fd: &OwnedFd) -> Option<u64> {
    let mut buf = [0u8; 512];
    let n = sys::pread_small(fd.as_raw_fd(), &mut buf).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}
