//! A process's stdio as containerd hands it over: paths of fifos it reads and
//! writes (or `file://` URIs). Without a terminal the fifos themselves become
//! the process's stdin, stdout and stderr: the shim copies nothing, holds no
//! buffer, and the container's output reaches containerd at pipe speed. With a
//! terminal, the pty master the runtime sends is relayed to and from the fifos
//! by two threads with one fixed buffer each.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};
use crate::sys;

#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// Read ends of the output fifos, held while the process lives: with a
    /// reader present a write never fails with EPIPE, so the container
    /// survives a containerd restart (it blocks once the fifo is full, as
    /// with containerd-shim-runc-v2).
    pub keep: Vec<File>,
}

/// Open what the runtime will give the process (no terminal).
pub fn open(stdin: &str, stdout: &str, stderr: &str) -> Result<Stdio> {
    let mut io = Stdio::default();
    if !stdin.is_empty() {
        io.stdin = Some(open_input(stdin, false)?);
    }
    io.stdout = open_output(stdout, &mut io.keep)?;
    io.stderr = open_output(stderr, &mut io.keep)?;
    Ok(io)
}

/// The fifo the process reads. Opened non-blocking so the open does not wait
/// for containerd's writer. `relay` (terminal) opens it read-write: the relay
/// thread must block for input rather than see end-of-file before containerd
/// has opened its end.
pub fn open_input(path: &str, relay: bool) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(relay)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::sys("open", path, e))?;
    sys::set_blocking(f.as_fd()).map_err(|e| Error::sys("fcntl", path, e))?;
    Ok(f)
}

/// The fifo (or file) the process writes.
pub fn open_output(uri: &str, keep: &mut Vec<File>) -> Result<Option<File>> {
    if uri.is_empty() {
        return Ok(None);
    }
    let path = match uri.split_once("://") {
        None => uri,
        Some(("fifo", p)) | Some(("file", p)) => p,
        Some((scheme, _)) => {
            return Err(Error::Invalid(format!(
                "stdio {uri}: {scheme}:// is not supported (fifo or file paths only)"
            )))
        }
    };
    let is_fifo = std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false);
    if !is_fifo {
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::sys("mkdir", dir.display().to_string(), e))?;
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::sys("open", path, e))?;
        return Ok(Some(f));
    }
    // Our own reader first, so the write-only open cannot block.
    let r = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::sys("open", path, e))?;
    keep.push(r);
    let w = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::sys("open", path, e))?;
    Ok(Some(w))
}

/// The socket the runtime sends the pty master over (`--console-socket`).
pub struct ConsoleSocket {
    dir: PathBuf,
    listener: UnixListener,
}

static SOCKETS: AtomicU32 = AtomicU32::new(0);

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket> {
        // Socket paths are limited to 108 bytes: a bundle path may not fit.
        let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("berth-v2-pty-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::sys("mkdir", dir.display().to_string(), e))?;
        let path = dir.join("pty.sock");
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::sys("bind", path.display().to_string(), e))?;
        Ok(ConsoleSocket { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("pty.sock")
    }

    /// The master, once the runtime has sent it (it connects and sends before
    /// its create or exec returns, so the connection is already queued).
    pub fn receive(&self) -> Result<File> {
        let what = self.path().display().to_string();
        self.listener
            .set_nonblocking(true)
            .map_err(|e| Error::sys("fcntl", what.clone(), e))?;
        let (conn, _) = self.listener.accept().map_err(|e| {
            if e.kind() == ErrorKind::WouldBlock {
                Error::Invalid(format!("{what}: the runtime sent no terminal"))
            } else {
                Error::sys("accept", what.clone(), e)
            }
        })?;
        conn.set_nonblocking(false)
            .map_err(|e| Error::sys("fcntl", what.clone(), e))?;
        let fd = sys::recv_fd(&conn).map_err(|e| Error::sys("recvmsg", what, e))?;
        Ok(File::from(fd))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use std::os::unix::fs::DirBuilderExt;

/// Relay a terminal: master to stdout, stdin to master. Each thread ends when
/// its source does (the master reads EIO once every process holding the pty
/// has exited).
pub fn relay(master: &File, stdin: Option<File>, stdout: Option<File>) -> Result<()> {
    if let Some(mut out) = stdout {
        let mut m = master
            .try_clone()
            .map_err(|e| Error::sys("dup", "pty master", e))?;
        std::thread::spawn(move || copy(&mut m, &mut out));
    }
    if let Some(mut input) = stdin {
        let mut m = master
            .try_clone()
            .map_err(|e| Error::sys("dup", "pty master", e))?;
        std::thread::spawn(move || copy(&mut input, &mut m));
    }
    Ok(())
}

fn copy(from: &mut File, to: &mut File) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}
