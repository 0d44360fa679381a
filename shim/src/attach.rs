//! Attach socket (SOCK_SEQPACKET, conmon's protocol): every packet to a client is one byte of
//! stream (2 stdout, 3 stderr) followed by up to 8 KiB of output; packets from a client are
//! container stdin. Sends never block: what a client's socket does not take at once waits in a
//! small per-client queue (QUEUE bytes); beyond that the client misses output (counted), so a
//! reader that stops reading slows neither the container nor the log.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Ctx, Result};
use crate::logs::Stream;
use crate::mem::Region;
use crate::sys;

/// conmon's STDIO_BUF_SIZE: podman reads packets of at most this much payload.
const PACKET: usize = 8192;
const MAX_CLIENTS: usize = 16;
/// Per-client backlog: absorbs bursts of small packets (the kernel queues only a few hundred).
const QUEUE: usize = 64 * 1024;

pub struct Client {
    pub fd: OwnedFd,
    pub dropped: u64,
    /// The client may still send stdin (it has not shut down its writing side).
    pub input_open: bool,
    /// Frames `[tag, len_lo, len_hi, data...]` not yet taken by the socket: the first
    /// `queued` bytes of a mapping that exists only while the client lags (a mapping, not the
    /// heap, so that its pages really leave the shim when the client has caught up).
    queue: Option<Region>,
    queued: usize,
}

impl Client {
    fn new(fd: OwnedFd) -> Client {
        Client {
            fd,
            dropped: 0,
            input_open: true,
            queue: None,
            queued: 0,
        }
    }

    pub fn has_backlog(&self) -> bool {
        self.queued > 0
    }

    fn enqueue(&mut self, tag: u8, piece: &[u8]) {
        if self.queued + 3 + piece.len() > QUEUE {
            self.dropped += piece.len() as u64;
            return;
        }
        if self.queue.is_none() {
            match Region::new(QUEUE) {
                Ok(r) => self.queue = Some(r),
                Err(_) => {
                    self.dropped += piece.len() as u64;
                    return;
                }
            }
        }
        let Some(q) = self.queue.as_mut() else { return };
        let at = self.queued;
        let buf = &mut q.as_mut_slice()[at..at + 3 + piece.len()];
        buf[0] = tag;
        buf[1..3].copy_from_slice(&(piece.len() as u16).to_le_bytes());
        buf[3..].copy_from_slice(piece);
        self.queued += 3 + piece.len();
    }

    /// Send queued frames; false if the client is gone.
    pub fn flush(&mut self) -> bool {
        let Some(q) = self.queue.as_mut() else {
            return true;
        };
        let mut off = 0;
        while off < self.queued {
            let b = q.as_slice();
            let tag = b[off];
            let len = u16::from_le_bytes([b[off + 1], b[off + 2]]) as usize;
            match sys::send_packet(self.fd.as_raw_fd(), tag, &b[off + 3..off + 3 + len]) {
                Ok(()) => off += 3 + len,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        q.as_mut_slice().copy_within(off..self.queued, 0);
        self.queued -= off;
        if self.queued == 0 {
            // Give the backlog's memory back once the client has caught up.
            self.queue = None;
        }
        true
    }
}

pub struct Attach {
    pub listener: OwnedFd,
    pub path: PathBuf,
    pub clients: Vec<Client>,
}

impl Attach {
    /// Bind `dir/name`; through /proc/self/fd so long directory paths do not hit the 108-byte
    /// limit of sun_path.
    pub fn listen(dir: &Path, name: &str) -> Result<Attach> {
        let dfd = sys::open(dir, libc::O_PATH | libc::O_DIRECTORY, 0).ctx("open", dir.display())?;
        let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", dfd.as_raw_fd()));
        let path = dir.join(name);
        let listener =
            sys::unix_listen(&short, libc::SOCK_SEQPACKET, 0o700).ctx("bind", path.display())?;
        Ok(Attach {
            listener,
            path,
            clients: Vec::with_capacity(MAX_CLIENTS),
        })
    }

    pub fn accept(&mut self) {
        while let Ok(fd) = sys::accept(self.listener.as_raw_fd()) {
            if self.clients.len() >= MAX_CLIENTS {
                crate::note::warn("attach: too many clients, refusing one");
                continue;
            }
            self.clients.push(Client::new(fd));
        }
    }

    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let tag = stream.attach_tag();
        self.clients.retain_mut(|c| {
            for piece in data.chunks(PACKET) {
                if c.has_backlog() {
                    c.enqueue(tag, piece);
                    continue;
                }
                match sys::send_packet(c.fd.as_raw_fd(), tag, piece) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => c.enqueue(tag, piece),
                    Err(_) => return false,
                }
            }
            true
        });
    }

    /// The client's socket has room again.
    pub fn writable(&mut self, fd: RawFd) {
        self.clients
            .retain_mut(|c| c.fd.as_raw_fd() != fd || c.flush());
    }

    /// The client shut down its sending side; it still receives output.
    pub fn input_closed(&mut self, fd: RawFd) {
        for c in self.clients.iter_mut().filter(|c| c.fd.as_raw_fd() == fd) {
            c.input_open = false;
        }
    }

    pub fn remove(&mut self, fd: RawFd) {
        self.clients.retain(|c| c.fd.as_raw_fd() != fd);
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
