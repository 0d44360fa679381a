//! `run`: create and start in one call; in the foreground, forward signals
//! to the container, wait for it and delete it, returning its exit code
//! (128 + signal when killed, like a shell).

use std::os::fd::AsRawFd;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOpts};
use super::Global;
use crate::error::{Error, Result};

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub fn run(g: &Global, opts: &CreateOpts, detach: bool) -> Result<i32> {
    if !detach {
        // The init may be a grandchild (intermediate process): become its
        // reaper so we can wait for it.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let created = create(g, opts)?;
    let pid = Pid::from_raw(created.state.pid);
    if let Err(e) = super::start::release(&created.dir, &created.state) {
        drop(created);
        let _ = super::delete::delete(g, &opts.id, true);
        return Err(e);
    }
    super::start::poststart(&created.dir, &created.state);
    if detach {
        return Ok(0);
    }
    // Blocked only now: the init must not inherit a blocked signal mask.
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set.thread_block()
        .map_err(|e| Error::sys("sigprocmask", "", e))?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Error::sys("signalfd", "", e))?;
    // Release the lock: delete takes it again.
    drop(created);
    let code = loop {
        if let Some(code) = reap(pid)? {
            break code;
        }
        let Some(info) = sfd
            .read_signal()
            .map_err(|e| Error::sys("read", format!("signalfd {}", sfd.as_raw_fd()), e))?
        else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig != Signal::SIGCHLD as i32 {
            let _ = nix::sys::signal::kill(pid, Signal::try_from(sig).ok());
        }
    };
    super::delete::delete(g, &opts.id, true)?;
    Ok(code)
}

/// Reap every exited child; the init's exit code once it is among them.
fn reap(init: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", "", e)),
        }
    }
}
