//! A container process in the foreground (`run`, `exec` without `-d`):
//! signals berth receives go to the process, its exit becomes berth's exit
//! code (128 + signal when killed, like a shell), and with a relayed
//! terminal the pty master is copied to and from berth's own stdio, raw,
//! following SIGWINCH.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::tty;

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The forwarded signals and SIGCHLD, blocked and read from a signalfd.
pub struct Signals {
    sfd: SignalFd,
    previous: SigSet,
}

impl Signals {
    /// Block them now. A process forked afterwards must call
    /// [`Signals::restore`] before it execs.
    pub fn block() -> Result<Signals> {
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(s);
        }
        set.add(Signal::SIGCHLD);
        let mut previous = SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&set),
            Some(&mut previous),
        )
        .map_err(|e| Error::sys("sigprocmask", "", e))?;
        let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Error::sys("signalfd", "", e))?;
        Ok(Signals { sfd, previous })
    }

    /// In a forked child: the signal mask berth was started with.
    pub fn restore(&self) -> Result<()> {
        self.previous
            .thread_set_mask()
            .map_err(|e| Error::sys("sigprocmask", "", e))
    }
}

/// Wait for `pid` (a child of berth, directly or as its subreaper),
/// forwarding signals and relaying `master` if given; its exit code.
pub fn wait(pid: Pid, signals: &Signals, master: Option<OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let mut relay = match master {
        Some(m) => Some(Relay::new(m, stdin.as_fd())?),
        None => None,
    };
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(r) = relay.as_mut() {
                r.drain();
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals.sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(r) = &relay {
            r.poll_fds(&mut fds);
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", "foreground", e)),
            Ok(_) => {}
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !revents[0].is_empty() {
            if let Some(info) = signals
                .sfd
                .read_signal()
                .map_err(|e| Error::sys("read", "signalfd", e))?
            {
                let sig = info.ssi_signo as i32;
                match Signal::try_from(sig) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) if relay.is_some() => {
                        if let Some(r) = &relay {
                            r.resize();
                        }
                    }
                    Ok(s) => {
                        let _ = nix::sys::signal::kill(pid, s);
                    }
                    Err(_) => {}
                }
            }
        }
        if let Some(r) = relay.as_mut() {
            r.service(&revents[1..]);
        }
    }
}

/// Reap every exited child; the exit code of `pid` once it is among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", "", e)),
        }
    }
}

/// Copies between berth's stdio and the pty master. Input waiting for the
/// pty is buffered, so a process that does not read cannot stall its own
/// output.
struct Relay<'a> {
    master: OwnedFd,
    stdin: BorrowedFd<'a>,
    stdin_open: bool,
    pending: Vec<u8>,
    _raw: Option<tty::RawMode<'a>>,
}

const BUF: usize = 16 * 1024;

impl<'a> Relay<'a> {
    fn new(master: OwnedFd, stdin: BorrowedFd<'a>) -> Result<Relay<'a>> {
        set_nonblocking(master.as_fd())?;
        let raw = tty::RawMode::enter(stdin)?;
        if raw.is_some() {
            // The container starts at the size of the user's terminal.
            let _ = tty::copy_size(stdin, master.as_fd());
        }
        Ok(Relay {
            master,
            stdin,
            stdin_open: true,
            pending: Vec::new(),
            _raw: raw,
        })
    }

    /// Appends, in order: master, then stdin if still read.
    fn poll_fds<'s>(&'s self, fds: &mut Vec<PollFd<'s>>) {
        let mut ev = PollFlags::POLLIN;
        if !self.pending.is_empty() {
            ev |= PollFlags::POLLOUT;
        }
        fds.push(PollFd::new(self.master.as_fd(), ev));
        if self.stdin_open && self.pending.len() < BUF {
            fds.push(PollFd::new(self.stdin, PollFlags::POLLIN));
        }
    }

    fn service(&mut self, revents: &[PollFlags]) {
        let master_ev = revents.first().copied().unwrap_or(PollFlags::empty());
        if master_ev.intersects(PollFlags::POLLIN) {
            self.copy_out();
        }
        if master_ev.contains(PollFlags::POLLOUT) {
            self.flush_input();
        }
        let stdin_ev = revents.get(1).copied().unwrap_or(PollFlags::empty());
        if stdin_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let mut buf = [0u8; BUF];
            match nix::unistd::read(self.stdin.as_raw_fd(), &mut buf) {
                Ok(0) => self.stdin_open = false,
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    self.flush_input();
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => self.stdin_open = false,
            }
        }
    }

    /// Master → stdout, as much as is there now.
    fn copy_out(&mut self) {
        let mut buf = [0u8; BUF];
        loop {
            match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                Ok(0) => return,
                Ok(n) => write_all_stdout(&buf[..n]),
                Err(Errno::EINTR) => continue,
                // EAGAIN: nothing more for now; EIO: every slave is closed.
                Err(_) => return,
            }
        }
    }

    fn flush_input(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// After the process exited: what it wrote last.
    fn drain(&mut self) {
        self.copy_out();
    }

    fn resize(&self) {
        let _ = tty::copy_size(self.stdin, self.master.as_fd());
    }
}

fn write_all_stdout(mut data: &[u8]) {
    let stdout = std::io::stdout();
    while !data.is_empty() {
        match nix::unistd::write(&stdout, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
            }
            Err(_) => return,
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags =
        fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| Error::sys("fcntl", "pty", e))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| Error::sys("fcntl", "pty", e))?;
    Ok(())
}
