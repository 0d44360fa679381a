//! Control FIFO: one command per line.
//!   `resize ROWS COLS` | `1 ROWS COLS`   set the terminal size (conmon's ctl message 1)
//!   `reopen-log`       | `2`             reopen the log file (conmon's ctl message 2)
//!   `close-stdin`                        close the container's stdin
//!   `ROWS COLS`                          (conmon's winsz FIFO) set the terminal size

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Ctx, Result};
use crate::sys;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Resize(u16, u16),
    ReopenLog,
    CloseStdin,
}

pub struct Fifo {
    pub fd: OwnedFd,
    path: PathBuf,
    remove: bool,
    buf: [u8; 256],
    len: usize,
}

impl Fifo {
    /// Create the FIFO and open it read-write, so writers coming and going never make it hang up.
    pub fn create(path: &Path, remove: bool) -> Result<Fifo> {
        sys::mkfifo(path, 0o660).ctx("mkfifo", path.display())?;
        let fd = sys::open(path, libc::O_RDWR | libc::O_NONBLOCK, 0).ctx("open", path.display())?;
        Ok(Fifo {
            fd,
            path: path.to_path_buf(),
            remove,
            buf: [0; 256],
            len: 0,
        })
    }

    /// Read what is there and return the complete commands.
    pub fn read(&mut self) -> Vec<Command> {
        let mut cmds = Vec::new();
        while let Ok(n) = sys::read(self.fd.as_raw_fd(), &mut self.buf[self.len..]) {
            if n == 0 {
                break;
            }
            self.len += n;
            while let Some(i) = sys::memchr(b'\n', &self.buf[..self.len]) {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                match parse(&line) {
                    Some(c) => cmds.push(c),
                    None => crate::note::warn(&format!("control: ignoring '{}'", line.trim())),
                }
                self.buf.copy_within(i + 1..self.len, 0);
                self.len -= i + 1;
            }
            if self.len == self.buf.len() {
                crate::note::warn("control: line too long, discarded");
                self.len = 0;
            }
        }
        cmds
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // conmon leaves its FIFOs in the bundle (podman may still write to them); ours go.
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn parse(line: &str) -> Option<Command> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let size = |r: &str, c: &str| Some(Command::Resize(r.parse().ok()?, c.parse().ok()?));
    match w.as_slice() {
        ["resize", r, c] | ["1", r, c] => size(r, c),
        ["reopen-log"] | ["2"] | ["2", ..] => Some(Command::ReopenLog),
        ["close-stdin"] => Some(Command::CloseStdin),
        [r, c] => size(r, c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse("1 24 80"), Some(Command::Resize(24, 80)));
        assert_eq!(parse("resize 30 100"), Some(Command::Resize(30, 100)));
        assert_eq!(parse("2 0 0"), Some(Command::ReopenLog));
        assert_eq!(parse("close-stdin"), Some(Command::CloseStdin));
        assert_eq!(parse("40 120"), Some(Command::Resize(40, 120)));
        assert_eq!(parse("bogus"), None);
    }
}
