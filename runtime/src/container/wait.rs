//! Waiting for a process the runtime may not be the parent of.

use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Block until the process behind `pidfd` has exited.
pub fn wait_pidfd(pidfd: &OwnedFd, pid: Pid) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(10_000u16)) {
            Ok(0) => {
                return Err(Error::Other(format!(
                    "process {pid} did not exit within 10 s"
                )))
            }
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", format!("pidfd of {pid}"), e)),
        }
    }
}
