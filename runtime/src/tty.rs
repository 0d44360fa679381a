//! `process.terminal`: a pty from the container's own devpts, its slave as
//! the process's stdio and controlling terminal, its master sent to the
//! caller's console socket over SCM_RIGHTS, as runc sends it.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Open a pty in the container, hand the master to `socket`, and make the
/// slave our stdio and controlling terminal. `size` is (height, width).
pub fn setup_console(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/dev/ptmx", e))?;
    // SAFETY: fresh fd from open(2), owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: unlockpt/TIOCGPTPEER on a ptmx fd we own.
    let slave = unsafe {
        if libc::unlockpt(master.as_raw_fd()) != 0 {
            return Err(Error::sys(
                "unlockpt",
                "/dev/ptmx",
                nix::errno::Errno::last(),
            ));
        }
        // TIOCGPTPEER opens the peer through the master, never by path, so
        // a rootfs cannot redirect it.
        let fd = libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(Error::sys(
                "ioctl(TIOCGPTPEER)",
                "/dev/ptmx",
                nix::errno::Errno::last(),
            ));
        }
        OwnedFd::from_raw_fd(fd)
    };
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a valid winsize.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }
            .map_err(|e| Error::sys("ioctl(TIOCSWINSZ)", "pty", e))?;
    }
    let name = pts_name(&slave);
    send_fd(socket, master.as_raw_fd(), name.as_bytes())?;
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

fn pts_name(slave: &OwnedFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/dev/pts/ptmx".into())
}

/// Send one fd with a payload, as runc's console socket protocol expects.
pub fn send_fd(socket: &OwnedFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::sys("sendmsg", "console socket", e))?;
    Ok(())
}
