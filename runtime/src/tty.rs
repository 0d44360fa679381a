//! Terminals. Container side: `process.terminal` gets a pty from the
//! container's own devpts, its slave as the process's stdio and controlling
//! terminal, its master sent to the caller's console socket over SCM_RIGHTS
//! the way runc sends it (one fd, the master's path as the payload), so
//! containerd, conmon and podman receive it unchanged.
//!
//! Runtime side, when nobody gave a console socket (`run`, `exec -t` in the
//! foreground): a socket to receive the master ourselves, and the user's
//! terminal in raw mode while berth relays it (see `container::foreground`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);

/// Where the container's pty multiplexer is; opened without following a
/// final symlink and checked to be the real thing (see [`check_ptmx`]).
const PTMX: &str = "/dev/pts/ptmx";
/// runc's limit on the payload (the fd's name) of a console message.
const MAX_NAME_LEN: usize = 4096;

/// Open a pty in the container, hand the master to `socket`, and make the
/// slave our stdio and controlling terminal. `size` is (height, width).
/// With `mount_console`, the slave is also bind-mounted on /dev/console (the
/// init of `create`/`run` does this, `exec` does not, as in runc).
pub fn setup_console(
    socket: &OwnedFd,
    size: Option<(u16, u16)>,
    mount_console: bool,
) -> Result<()> {
    let (master, slave) = open_pty()?;
    if let Some((rows, cols)) = size.filter(|(r, c)| *r > 0 && *c > 0) {
        set_size(master.as_fd(), rows, cols)?;
    }
    if mount_console {
        bind_console(&slave)?;
    }
    send_fd(socket, master.as_raw_fd(), PTMX.as_bytes())?;
    drop(master);
    nix::unistd::setsid().map_err(|e| Error::sys("setsid", "console", e))?;
    // SAFETY: TIOCSCTTY on a tty fd we own, in a new session.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys(
            "ioctl(TIOCSCTTY)",
            "console",
            nix::errno::Errno::last(),
        ));
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).map_err(|e| Error::sys("dup2", "console", e))?;
    }
    Ok(())
}

/// A new (master, slave) pair from the devpts mounted in our root.
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master = open_in_root(
        PTMX,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
    )?;
    check_ptmx(&master)?;
    // SAFETY: unlockpt on a ptmx fd we own.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(Error::sys("unlockpt", PTMX, nix::errno::Errno::last()));
    }
    // TIOCGPTPEER opens the peer through the master, never by path, so a
    // rootfs cannot redirect it.
    // SAFETY: TIOCGPTPEER on our master returns a new fd or -1.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::sys(
            "ioctl(TIOCGPTPEER)",
            PTMX,
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((master, slave))
}

/// Open `path` (absolute) inside our root: symlinks resolve as if the root
/// were `/`, magic links (/proc/1/root/...) are refused, so a rootfs
/// cannot lead us to the host's devices.
fn open_in_root(path: &str, flags: OFlag) -> Result<OwnedFd> {
    let root = open_raw(
        Path::new("/"),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    )?;
    let mut how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    if flags.contains(OFlag::O_CREAT) {
        // openat2 refuses a mode without O_CREAT.
        how = how.mode(Mode::from_bits_truncate(0o666));
    }
    let rel = path.trim_start_matches('/');
    crate::sys::openat2(&root, rel, how).map_err(|e| Error::sys("openat2", path, e))
}

/// The ptmx of a real devpts (inode 2, char device 5:2), not a file or a
/// device node the rootfs planted there.
fn check_ptmx(handle: &OwnedFd) -> Result<()> {
    let st = fstat(handle.as_raw_fd()).map_err(|e| Error::sys("fstat", PTMX, e))?;
    let fs = nix::sys::statfs::fstatfs(handle).map_err(|e| Error::sys("fstatfs", PTMX, e))?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    let ok = fs.filesystem_type() == nix::sys::statfs::DEVPTS_SUPER_MAGIC
        && st.st_ino == 2
        && is_chr
        && st.st_rdev == libc::makedev(5, 2);
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "process.terminal",
            format!("{PTMX} is not the ptmx of a devpts mount (mount devpts on /dev/pts)"),
        ))
    }
}

/// Bind the slave over /dev/console, creating the mount point if needed.
/// Neither end is reached by a path the container controls: the target is
/// resolved inside the root without following it if it is a symlink, and
/// the mount is made between the two fds (open_tree, move_mount).
fn bind_console(slave: &OwnedFd) -> Result<()> {
    const CONSOLE: &str = "/dev/console";
    let at = || {
        open_in_root(
            CONSOLE,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        )
    };
    let target = match at() {
        Ok(fd) => fd,
        Err(Error::Sys {
            source: nix::errno::Errno::ENOENT,
            ..
        }) => {
            drop(open_in_root(
                CONSOLE,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
            )?);
            at()?
        }
        Err(e) => return Err(e),
    };
    let st = fstat(target.as_raw_fd()).map_err(|e| Error::sys("fstat", CONSOLE, e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::config(
            "process.terminal",
            format!("{CONSOLE} is not a file or device (a symlink or directory in the rootfs?)"),
        ));
    }
    match bind_fds(slave, &target) {
        Err(nix::errno::Errno::ENOSYS) => {}
        r => return r.map_err(|e| Error::sys("move_mount", format!("pty on {CONSOLE}"), e)),
    }
    // Kernels before 5.2: through the fds' /proc/self/fd links.
    mount(
        Some(format!("/proc/self/fd/{}", slave.as_raw_fd()).as_str()),
        format!("/proc/self/fd/{}", target.as_raw_fd()).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::sys("mount(bind)", format!("pty on {CONSOLE}"), e))
}

/// Bind-mount the file `src` refers to onto the file `dst` refers to.
fn bind_fds(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    let empty = c"";
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: open_tree on an fd we own with an empty path; returns a new fd.
    let tree =
        unsafe { libc::syscall(libc::SYS_open_tree, src.as_raw_fd(), empty.as_ptr(), flags) };
    let tree = nix::errno::Errno::result(tree)?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    // SAFETY: move_mount between two fds we own, empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            dst.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

fn open_raw(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o666))
        .map_err(|e| Error::sys("open", path.display(), e))?;
    // SAFETY: fresh fd from open(2), owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Send one fd with a payload, as runc's console socket protocol expects.
pub fn send_fd(socket: &OwnedFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    crate::sys::send_fd(socket, fd, payload).map_err(|e| Error::sys("sendmsg", "console socket", e))
}

/// Receive the one fd of a console message (runc's RecvFile): the fd and
/// its name. Extra fds someone sent along are closed.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<(OwnedFd, String)> {
    let mut name = vec![0u8; MAX_NAME_LEN];
    let (n, fds) = crate::sys::recv_fds(socket, &mut name)
        .map_err(|e| Error::sys("recvmsg", "console socket", e))?;
    let mut fds = fds.into_iter();
    let fd = fds
        .next()
        .ok_or_else(|| Error::Other("console socket: message carried no file descriptor".into()))?;
    name.truncate(n);
    Ok((fd, String::from_utf8_lossy(&name).into_owned()))
}

/// A listening console socket in a private temporary directory, for a
/// command that takes a path (`create`) when berth itself wants the master.
pub struct ConsoleListener {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    pub fn new() -> Result<ConsoleListener> {
        let template = std::env::temp_dir().join("berth-console-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template)
            .map_err(|e| Error::sys("mkdtemp", template.display(), e))?;
        let path = dir.join("sock");
        match UnixListener::bind(&path) {
            Ok(listener) => Ok(ConsoleListener {
                dir,
                path,
                listener,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(Error::io("bind", path, e))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the container sent. Call only once the container is
    /// created: its connection and message are queued by then.
    pub fn receive(&self) -> Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| Error::io("accept", &self.path, e))?;
        recv_fd(conn.as_fd()).map(|(fd, _)| fd)
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Is `fd` a terminal?
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    termios::tcgetattr(fd).is_ok()
}

/// Set the window size of a pty (through its master).
pub fn set_size(master: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize.
    unsafe { set_winsize(master.as_raw_fd(), &ws) }
        .map_err(|e| Error::sys("ioctl(TIOCSWINSZ)", "pty", e))?;
    Ok(())
}

/// The window size of the terminal `fd` as (rows, columns), if it is one.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into memory we own.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Give `master` the window size of the terminal `from` (SIGWINCH).
pub fn copy_size(from: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    match size_of(from) {
        Some((rows, cols)) => set_size(master, rows, cols),
        None => Ok(()),
    }
}

/// The user's terminal in raw mode until dropped, so keystrokes (^C, ^D,
/// arrows) reach the container's terminal, which does its own line
/// discipline.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// `None` when `fd` is not a terminal.
    pub fn enter(fd: BorrowedFd<'a>) -> Result<Option<RawMode<'a>>> {
        let Ok(saved) = termios::tcgetattr(fd) else {
            return Ok(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)
            .map_err(|e| Error::sys("tcsetattr", "stdin", e))?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_message_round_trips() {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(&a, w.as_raw_fd(), PTMX.as_bytes()).unwrap();
        drop(w);
        let (got, name) = recv_fd(b.as_fd()).unwrap();
        assert_eq!(name, PTMX);
        // The received fd is the pipe's write end: bytes reach the read end.
        nix::unistd::write(&got, b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap(), 1);
        assert_eq!(&buf, b"x");
    }

    #[test]
    fn message_without_fd_is_an_error() {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        nix::unistd::write(&a, b"no fd").unwrap();
        assert!(recv_fd(b.as_fd()).is_err());
    }
}
