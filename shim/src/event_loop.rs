//! The poll loop: signals, container output, attach clients, control FIFOs and stdin, until
//! the container has exited and its output is drained.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::attach::Attach;
use crate::control::{Command, Fifo};
use crate::error::{Ctx, Result};
use crate::logs::{Log, Stream};
use crate::sys::{self, Status};
use crate::{note, timefmt};

/// Container stdin waiting for the pipe to take it (from one attach packet or FIFO read).
pub const STDIN_BUF: usize = 32 * 1024;
/// After the container is gone, stop draining once its pipes stay quiet this long (a process
/// that escaped the container may hold them open forever).
const DRAIN_QUIET_MS: i32 = 200;
/// Coalescing: while output keeps coming (the previous read of it was less than STREAMING_US
/// ago), leave the pipes alone for HOLD_US after reading them. Writers then fill the pipe
/// (1 MiB) instead of waking the shim for every 4 KiB they write, and the shim takes it in
/// 64 KiB reads and ~100 KiB log writes: about a tenth of the system calls and wake-ups of
/// reading as soon as anything is there. Output is delayed by at most HOLD_US; the first
/// output after a quiet spell is read at once. Never used for a pty (its buffer is a few KiB)
/// or when the pipes could not be made MIN_COALESCE_PIPE large.
const HOLD_US: u64 = 1000;
const STREAMING_US: u64 = 10_000;
pub const MIN_COALESCE_PIPE: usize = 1 << 20;
/// Reads of one stream per wake-up: the pipe's worth, so one busy stream cannot starve the
/// other or the control sockets for long.
const MAX_READS: usize = 16;

/// The container's side of the shim: output to read, input to write, the pty for resizes.
pub struct Io {
    pub out: Option<OwnedFd>,
    pub err: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub tty: Option<RawFd>,
    /// Keeps the pty master open for resizes after stdout reached EOF.
    pub _master: Option<OwnedFd>,
}

#[derive(Clone, Copy)]
enum Slot {
    Signal,
    Out,
    Err,
    Listener,
    Control(usize),
    StdinFifo,
    StdinWrite,
    Client(RawFd),
}

pub struct Loop {
    pub pid: i32,
    pub io: Io,
    pub log: Option<Log>,
    pub attach: Option<Attach>,
    pub fifos: Vec<Fifo>,
    pub stdin_fifo: Option<OwnedFd>,
    pub pending: Vec<u8>,
    pub buf: Vec<u8>,
    pub status: Option<Status>,
    pub finished_at: String,
    pub close_stdin_on_detach: bool,
    /// Output pipes are big enough to let output pile up for HOLD_US (see there).
    pub coalesce: bool,
    /// Monotonic µs: do not poll the output pipes before this.
    pub hold_until: u64,
    /// Monotonic µs of the last read that returned output.
    pub last_output: u64,
}

fn pfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl Loop {
    pub fn run(&mut self, sigfd: RawFd) -> Result<()> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(16);
        let mut slots: Vec<Slot> = Vec::with_capacity(16);
        sys::trim_code_pages();
        // The container may have exited before SIGCHLD was being watched.
        self.reap();
        if let Some(a) = self.attach.as_mut() {
            a.accept();
        }
        loop {
            if self.status.is_some() && self.io.out.is_none() && self.io.err.is_none() {
                return Ok(());
            }
            // Whatever was read goes to the file before the shim waits again.
            if let Some(l) = self.log.as_mut() {
                l.flush();
            }
            let now = sys::monotonic_us();
            let held = now < self.hold_until;
            fds.clear();
            slots.clear();
            let mut add = |fd: RawFd, ev: i16, s: Slot| {
                fds.push(pfd(fd, ev));
                slots.push(s);
            };
            add(sigfd, libc::POLLIN, Slot::Signal);
            // Accept before reading output: a client that connected before the output was
            // produced must see it.
            if let Some(a) = &self.attach {
                add(a.listener.as_raw_fd(), libc::POLLIN, Slot::Listener);
            }
            if !held {
                if let Some(fd) = &self.io.out {
                    add(fd.as_raw_fd(), libc::POLLIN, Slot::Out);
                }
                if let Some(fd) = &self.io.err {
                    add(fd.as_raw_fd(), libc::POLLIN, Slot::Err);
                }
            }
            for (i, f) in self.fifos.iter().enumerate() {
                add(f.fd.as_raw_fd(), libc::POLLIN, Slot::Control(i));
            }
            let want_input = self.io.stdin.is_some() && self.pending.is_empty();
            if let Some(fd) = &self.stdin_fifo {
                if want_input {
                    add(fd.as_raw_fd(), libc::POLLIN, Slot::StdinFifo);
                }
            }
            if let (Some(fd), false) = (&self.io.stdin, self.pending.is_empty()) {
                add(fd.as_raw_fd(), libc::POLLOUT, Slot::StdinWrite);
            }
            if let Some(a) = &self.attach {
                for c in &a.clients {
                    let mut ev = if want_input && c.input_open {
                        libc::POLLIN
                    } else {
                        0
                    };
                    if c.has_backlog() {
                        ev |= libc::POLLOUT;
                    }
                    add(c.fd.as_raw_fd(), ev, Slot::Client(c.fd.as_raw_fd()));
                }
            }
            let timeout = if held {
                (self.hold_until - now).div_ceil(1000) as i32
            } else if self.status.is_some() {
                DRAIN_QUIET_MS
            } else {
                -1
            };
            let n = sys::poll(&mut fds, timeout).ctx("poll", "")?;
            if n == 0 && self.status.is_some() && !held {
                return Ok(());
            }
            for (p, s) in fds.iter().zip(slots.iter()) {
                if p.revents != 0 {
                    self.handle(*s, p.revents, sigfd);
                }
            }
        }
    }

    fn handle(&mut self, slot: Slot, revents: i16, sigfd: RawFd) {
        match slot {
            Slot::Signal => {
                while let Some(sig) = sys::read_signal(sigfd) {
                    match sig {
                        libc::SIGCHLD => self.reap(),
                        libc::SIGUSR1 => {
                            if let Some(l) = self.log.as_mut() {
                                l.reopen()
                            }
                        }
                        s if self.status.is_none() => {
                            let _ = sys::kill(self.pid, s);
                        }
                        _ => {}
                    }
                }
            }
            Slot::Out => self.pump(Stream::Stdout),
            Slot::Err => self.pump(Stream::Stderr),
            Slot::Listener => {
                if let Some(a) = self.attach.as_mut() {
                    a.accept()
                }
            }
            Slot::Control(i) => {
                for cmd in self.fifos[i].read() {
                    self.command(cmd);
                }
            }
            Slot::StdinFifo => {
                let fd = self
                    .stdin_fifo
                    .as_ref()
                    .map(|f| f.as_raw_fd())
                    .unwrap_or(-1);
                match self.read_input(fd) {
                    Some(0) => {
                        // The writer closed the FIFO: end of the container's input.
                        self.stdin_fifo = None;
                        self.io.stdin = None;
                    }
                    _ => self.flush_stdin(),
                }
            }
            Slot::StdinWrite => self.flush_stdin(),
            Slot::Client(fd) => {
                if revents & libc::POLLOUT != 0 {
                    if let Some(a) = self.attach.as_mut() {
                        a.writable(fd);
                    }
                }
                if revents & libc::POLLIN != 0 {
                    match self.read_input(fd) {
                        Some(0) => {
                            if let Some(a) = self.attach.as_mut() {
                                a.input_closed(fd);
                            }
                            if self.close_stdin_on_detach {
                                self.io.stdin = None;
                            }
                        }
                        Some(_) => self.flush_stdin(),
                        None => {}
                    }
                } else if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    if let Some(a) = self.attach.as_mut() {
                        a.remove(fd);
                    }
                }
            }
        }
    }

    fn reap(&mut self) {
        while let Ok(Some((p, st))) = sys::try_wait(-1) {
            if p == self.pid {
                self.status = Some(st);
                self.finished_at = timefmt::now_string();
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Resize(r, c) => {
                if let Some(t) = self.io.tty {
                    if let Err(e) = sys::set_winsize(t, r, c) {
                        note::warn(&format!("resize: {e}"));
                    }
                }
            }
            Command::ReopenLog => {
                if let Some(l) = self.log.as_mut() {
                    l.reopen()
                }
            }
            Command::CloseStdin => {
                if self.io.tty.is_some() {
                    // A pty has no half-close: send the terminal's end-of-file character.
                    self.pending.push(4);
                    self.flush_stdin();
                } else {
                    self.io.stdin = None;
                }
            }
        }
    }

    /// Read one chunk of container input into `pending`; Some(0) on EOF, None if nothing.
    fn read_input(&mut self, fd: RawFd) -> Option<usize> {
        self.pending.resize(STDIN_BUF, 0);
        let r = sys::read(fd, &mut self.pending);
        let n = match r {
            Ok(n) => Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(_) => Some(0),
        };
        self.pending.truncate(n.unwrap_or(0));
        n
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.io.stdin else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match sys::write(fd.as_raw_fd(), &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The container closed its stdin.
                    self.pending.clear();
                    self.io.stdin = None;
                    return;
                }
            }
        }
    }

    /// Read what the stream's pipe holds (up to MAX_READS buffers) into the log and to
    /// attach clients.
    fn pump(&mut self, stream: Stream) {
        let mut got = false;
        for _ in 0..MAX_READS {
            let slot = match stream {
                Stream::Stdout => &mut self.io.out,
                Stream::Stderr => &mut self.io.err,
            };
            let Some(fd) = slot.as_ref() else { break };
            match sys::read(fd.as_raw_fd(), &mut self.buf) {
                Ok(0) => *slot = None,
                Ok(n) => {
                    got = true;
                    let data = &self.buf[..n];
                    if let Some(l) = self.log.as_mut() {
                        l.append(stream, data);
                    }
                    if let Some(a) = self.attach.as_mut() {
                        a.broadcast(stream, data);
                    }
                    if n == self.buf.len() {
                        continue;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EIO: the pty's last slave closed. Anything else: give up on this stream.
                    if self.io.tty.is_none() {
                        note::warn(&format!("read container output: {e}"));
                    }
                    *slot = None;
                }
            }
            break;
        }
        if got && self.coalesce {
            let now = sys::monotonic_us();
            if now - self.last_output < STREAMING_US {
                self.hold_until = now + HOLD_US;
            }
            self.last_output = now;
        }
    }
}
