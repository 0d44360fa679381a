//! `start`: release the created init through its exec fifo, then run the
//! poststart hooks.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::Global;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{State, StateDir, Status};

pub fn start(g: &Global, id: &str) -> Result<()> {
    let dir = StateDir::open(&g.root, id)?;
    let state = dir.load()?;
    release(&dir, &state, None)?;
    poststart(&dir, &state);
    Ok(())
}

/// The exec fifo's read end. Non-blocking, so a dead init cannot hang us:
/// `release` polls it together with the init's pidfd.
pub fn open_fifo(dir: &StateDir) -> Result<OwnedFd> {
    let path = dir.exec_fifo();
    crate::sys::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.display(), e))
}

/// Open the fifo (unless `held` already is its read end), read the init's
/// byte, wait for EOF (execve done).
pub fn release(dir: &StateDir, state: &State, held: Option<OwnedFd>) -> Result<()> {
    if state.status != Status::Created {
        return Err(Error::WrongState {
            id: state.id.clone(),
            status: state.status.to_string(),
            op: "start",
        });
    }
    // Before the fifo is opened: that releases the init, which may have
    // exec'd, exited and been reaped by the time we looked for it after.
    let pidfd = crate::sys::pidfd_open(state.pid)
        .map_err(|e| Error::io("pidfd_open", format!("pid {}", state.pid), e))?;
    let path = dir.exec_fifo();
    let fifo = match held {
        Some(fd) => fd,
        None => open_fifo(dir)?,
    };
    let mut got_byte = false;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", "exec fifo", e)),
            Ok(_) => {}
        }
        let fifo_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        if fifo_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            let mut buf = [0u8; 16];
            match nix::unistd::read(fifo.as_raw_fd(), &mut buf) {
                Ok(0) if got_byte => break,
                // EOF without the byte: the init closed the fifo without
                // writing (it died); the pidfd below says so.
                Ok(0) => {}
                Ok(_) => {
                    got_byte = true;
                    continue;
                }
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(Error::sys("read", path.display(), e)),
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            if got_byte {
                // It exited right after exec (or while running its
                // startContainer hooks): `start` has done its job.
                break;
            }
            return Err(Error::Init(format!(
                "container {} init exited before start",
                state.id
            )));
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io("unlink", &path, e))?;
    Ok(())
}

pub fn poststart(dir: &StateDir, state: &State) {
    let Ok(Some(spec)) = dir.load_config_for(hooks::POSTSTART) else {
        return;
    };
    poststart_with(&spec, state);
}

/// `poststart` with the container's config at hand.
pub fn poststart_with(spec: &oci_spec::runtime::Spec, state: &State) {
    let mut running = state.clone();
    running.status = Status::Running;
    for e in hooks::run_best_effort(
        hooks::POSTSTART,
        hooks::of_kind(spec.hooks().as_ref(), hooks::POSTSTART),
        &running.to_oci_json(),
    ) {
        crate::log::warn(&e.to_string());
    }
}
