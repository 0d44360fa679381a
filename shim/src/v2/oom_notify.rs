//! Wake-ups when the kernel OOM-kills in a container's memory cgroup, so
//! `/tasks/oom` goes out as it happens, also when the container's init
//! survives (a child was killed), as containerd-shim-runc-v2 does. v1: an
//! eventfd registered on memory.oom_control through cgroup.event_control
//! (signalled on every OOM, and when the cgroup is removed); v2: inotify on
//! memory.events. What was killed is still read from the counter
//! (oom::OomWatch): the wake-up only says when to look.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use crate::sys;

pub struct Notifier {
    fd: File,
    /// memory.oom_control (v1), kept open while registered.
    _control: Option<File>,
    /// The cgroup directory: once it is gone, so is the container.
    dir: PathBuf,
}

impl Notifier {
    pub fn new(pid: u32) -> Option<Notifier> {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        for line in cg.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let path = path.trim_start_matches('/');
            if ctrls.split(',').any(|c| c == "memory") {
                let dir = PathBuf::from("/sys/fs/cgroup/memory").join(path);
                if let Some(n) = Self::v1(dir) {
                    return Some(n);
                }
            } else if ctrls.is_empty() {
                let dir = PathBuf::from("/sys/fs/cgroup").join(path);
                if let Ok(fd) = sys::inotify_modify(&dir.join("memory.events")) {
                    return Some(Notifier {
                        fd: File::from(fd),
                        _control: None,
                        dir,
                    });
                }
            }
        }
        None
    }

    fn v1(dir: PathBuf) -> Option<Notifier> {
        let efd = File::from(sys::eventfd().ok()?);
        let control = File::open(dir.join("memory.oom_control")).ok()?;
        let mut ec = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))
            .ok()?;
        ec.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
            .ok()?;
        Some(Notifier {
            fd: efd,
            _control: Some(control),
            dir,
        })
    }

    /// Wait up to `timeout_ms` for a wake-up; false once the cgroup is gone.
    pub fn wait(&mut self, timeout_ms: i32) -> bool {
        match sys::poll_in(self.fd.as_fd(), timeout_ms) {
            Ok(true) => {
                // Drain: an eventfd counter or a batch of inotify events.
                let mut buf = [0u8; 4096];
                let _ = self.fd.read(&mut buf);
            }
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
        self.dir.exists()
    }
}
