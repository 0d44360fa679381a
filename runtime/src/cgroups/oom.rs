//! OOM notifications for `events`, without threads.
//!
//! - v1: an eventfd registered with `cgroup.event_control` against
//!   `memory.oom_control` (cgroup-v1/memory.rst §9); each OOM bumps its count.
//! - v2: `memory.events` raises POLLPRI when a counter changes; the
//!   `oom_kill` counter says how many processes the OOM killer killed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::CgroupError;

pub struct OomEvents {
    source: Source,
}

enum Source {
    V1 {
        efd: EventFd,
        dir: PathBuf,
        // The registration lasts while the cgroup lives; the file is kept
        // open so the fd number written to event_control stays valid.
        _oom_control: File,
    },
    V2 {
        events: File,
        path: PathBuf,
        last: u64,
    },
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> CgroupError {
    CgroupError::Manager {
        path: path.display().to_string(),
        msg: format!("{what}: {e}"),
    }
}

impl OomEvents {
    pub(crate) fn v1(memory_dir: &Path) -> Result<OomEvents, CgroupError> {
        let ctl_path = memory_dir.join("memory.oom_control");
        let oom_control = File::open(&ctl_path).map_err(|e| err(&ctl_path, "open", e))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| err(&ctl_path, "eventfd", e))?;
        let reg = memory_dir.join("cgroup.event_control");
        let line = format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd());
        std::fs::write(&reg, &line).map_err(|e| err(&reg, "write", e))?;
        Ok(OomEvents {
            source: Source::V1 {
                efd,
                dir: memory_dir.to_path_buf(),
                _oom_control: oom_control,
            },
        })
    }

    pub(crate) fn v2(dir: &Path) -> Result<OomEvents, CgroupError> {
        let path = dir.join("memory.events");
        let events = File::open(&path).map_err(|e| err(&path, "open", e))?;
        let mut me = OomEvents {
            source: Source::V2 {
                events,
                path,
                last: 0,
            },
        };
        let now = me.v2_count()?;
        if let Source::V2 { last, .. } = &mut me.source {
            *last = now;
        }
        Ok(me)
    }

    fn v2_count(&mut self) -> Result<u64, CgroupError> {
        let Source::V2 { events, path, .. } = &mut self.source else {
            return Ok(0);
        };
        let mut text = String::new();
        events
            .seek(SeekFrom::Start(0))
            .and_then(|_| events.read_to_string(&mut text))
            .map_err(|e| err(path, "read", e))?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Wait up to `timeout` (forever if `None`); returns how many OOM events
    /// happened since the last call (0 on timeout).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<u64, CgroupError> {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX),
        };
        let ready = {
            let (fd, flags) = match &self.source {
                Source::V1 { efd, .. } => (efd.as_fd(), PollFlags::POLLIN),
                Source::V2 { events, .. } => (events.as_fd(), PollFlags::POLLPRI),
            };
            let mut fds = [PollFd::new(fd, flags)];
            match poll(&mut fds, timeout) {
                Ok(n) => n > 0,
                Err(Errno::EINTR) => false,
                Err(e) => return Err(err(Path::new("oom"), "poll", e)),
            }
        };
        match &mut self.source {
            Source::V1 { efd, dir, .. } => {
                if !ready {
                    return Ok(0);
                }
                match efd.read() {
                    // The eventfd also fires when the cgroup is removed.
                    Ok(_) if !dir.exists() => Ok(0),
                    Ok(n) => Ok(n),
                    Err(Errno::EAGAIN) => Ok(0),
                    Err(e) => Err(err(Path::new("eventfd"), "read", e)),
                }
            }
            Source::V2 { .. } => {
                // Re-read even on timeout: a change between two polls is not lost.
                let now = self.v2_count()?;
                let Source::V2 { last, .. } = &mut self.source else {
                    return Ok(0);
                };
                let new = now.saturating_sub(*last);
                *last = now;
                Ok(new)
            }
        }
    }
}
