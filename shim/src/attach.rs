//! Attach socket (SOCK_SEQPACKET, conmon's protocol): every packet to a client is one byte of
//! stream (2 stdout, 3 stderr) followed by up to 8 KiB of output; packets from a client are
//! container stdin. Sends never block: a client whose socket buffer is full misses that output
//! (counted), so a reader that stops reading slows neither the container nor the log.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Ctx, Result};
use crate::logs::Stream;
use crate::sys;

/// conmon's STDIO_BUF_SIZE: podman reads packets of at most this much payload.
const PACKET: usize = 8192;
const MAX_CLIENTS: usize = 64;

pub struct Client {
    pub fd: OwnedFd,
    pub dropped: u64,
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
            clients: Vec::new(),
        })
    }

    pub fn accept(&mut self) {
        while let Ok(fd) = sys::accept(self.listener.as_raw_fd()) {
            if self.clients.len() >= MAX_CLIENTS {
                crate::note::warn("attach: too many clients, refusing one");
                continue;
            }
            self.clients.push(Client { fd, dropped: 0 });
        }
    }

    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let tag = stream.attach_tag();
        self.clients.retain_mut(|c| {
            for piece in data.chunks(PACKET) {
                match sys::send_packet(c.fd.as_raw_fd(), tag, piece) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        c.dropped += piece.len() as u64;
                    }
                    Err(_) => return false,
                }
            }
            true
        });
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
