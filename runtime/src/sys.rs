//! Thin wrappers over the syscalls nix 0.29 does not cover. Each returns a
//! typed error naming the syscall.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// open(2) returning an owned fd, so callers need no unsafe.
pub fn open<P: ?Sized + nix::NixPath>(
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags, mode)?;
    // SAFETY: open(2) just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2(2) returning an owned fd, retried on EAGAIN. With
/// RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel refuses a lookup through
/// `..` that raced a rename or a mount anywhere on the host (global
/// seqlocks) and asks the caller to try again; on a busy host, other
/// containers starting are enough. 32 tries, as libpathrs does.
pub fn openat2<P: ?Sized + nix::NixPath>(
    dirfd: impl AsFd,
    path: &P,
    how: nix::fcntl::OpenHow,
) -> nix::Result<OwnedFd> {
    let dirfd = dirfd.as_fd().as_raw_fd();
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dirfd, path, how) {
            // SAFETY: openat2 just returned this fd and nothing else owns it.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::EAGAIN) if tries < 31 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// mount_setattr(2) on the mount `fd` is open on and every mount below it
/// (AT_RECURSIVE): `set` is MOUNT_ATTR_* bits; an atime mode in `set` also
/// clears the old one. ENOSYS before Linux 5.12.
pub fn mount_setattr_recursive(fd: BorrowedFd<'_>, set: u64) -> nix::Result<()> {
    const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: if set & MOUNT_ATTR_ATIME_MASK != 0 {
            MOUNT_ATTR_ATIME_MASK
        } else {
            0
        },
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid fd, an empty C string, and a mount_attr of the size
    // passed; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// Send a payload with `fds` attached over a unix socket (SCM_RIGHTS): the
/// console socket protocol, the seccomp agent hand-off and the init's
/// cgroup join all use it.
pub fn send_fds(socket: BorrowedFd<'_>, fds: &[RawFd], payload: &[u8]) -> nix::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let cmsg = [ControlMessage::ScmRights(fds)];
    let iov = [std::io::IoSlice::new(payload)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map(drop)
}

/// `send_fds` with one fd.
pub fn send_fd(socket: &OwnedFd, fd: RawFd, payload: &[u8]) -> nix::Result<()> {
    send_fds(socket.as_fd(), &[fd], payload)
}

/// Most files one `recv_fds` takes: a v1 cgroup's hierarchies (13
/// controllers berth knows, fewer mounts when co-mounted).
pub const MAX_FDS: usize = 16;

/// Receive one message into `buf`: its length and the files it carried
/// (close-on-exec; at most `MAX_FDS`). Retries on EINTR.
pub fn recv_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => {
                let mut fds = Vec::new();
                for c in m.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(r) = c {
                        // SAFETY: the kernel installed these fds for us.
                        fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                return Ok((m.bytes, fds));
            }
        }
    }
}

/// A pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Send `sig` through a pidfd, immune to pid reuse.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// fork(2) with namespace flags: clone without a new stack, so the child
/// continues from here like fork. Returns `None` in the child.
///
/// Only sound in a single-threaded process, which the runtime is.
pub fn clone_fork(flags: libc::c_int) -> nix::Result<Option<Pid>> {
    // SAFETY: with a null stack the child runs on a copy-on-write copy of our
    // stack, exactly like fork(2); the runtime has a single thread, so no
    // lock can be held by another thread across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match Errno::result(r)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Mark every fd from `first` up as close-on-exec, so the container gets
/// only what it was meant to and the init can still use its own fds.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map(drop)
}

/// Join a new anonymous session keyring, so the container does not share
/// the host's (runc does the same unless --no-new-keyring).
pub fn join_new_session_keyring() -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks the kernel for a new anonymous keyring.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(r).map(drop)
}

/// A /proc or cgroupfs file, whole. They report size 0, and without room
/// up front std reads them 32 bytes at a time, doubling: seven reads (and
/// seven passes of the kernel's generator) for a 2 KB mountinfo, two here.
pub fn read_pseudo(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(4096);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// /proc/PID/stat), which tells a live init from a reused pid. `None` when
/// the process is gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = read_pseudo(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // rest starts at field 3 (state); starttime is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

/// Tests that mount: a mount namespace of this thread's own, with every
/// mount private, so nothing they do reaches the host's mounts.
#[cfg(test)]
pub(crate) fn enter_private_mount_ns() -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Mounts churning elsewhere (here in a private namespace of another
    /// thread) make a RESOLVE_IN_ROOT lookup through `..` fail with EAGAIN
    /// now and then; the wrapper must hide that.
    #[test]
    fn openat2_survives_concurrent_mounts() {
        let base = std::env::temp_dir().join(format!("berth-openat2-{}", std::process::id()));
        let target = base.join("a/b");
        std::fs::create_dir_all(&target).unwrap();
        let churn_dir = base.join("churn");
        std::fs::create_dir_all(&churn_dir).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            let dir = churn_dir.clone();
            std::thread::spawn(move || {
                use nix::mount::{mount, umount, MsFlags};
                // Private to this thread: nothing of the host's changes.
                enter_private_mount_ns().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    mount(
                        Some("tmpfs"),
                        &dir,
                        Some("tmpfs"),
                        MsFlags::empty(),
                        None::<&str>,
                    )
                    .unwrap();
                    umount(&dir).unwrap();
                }
            })
        };
        let root = open(
            &base,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let mut raw_eagain = 0;
        let mut failures = Vec::new();
        for _ in 0..20_000 {
            if let Err(Errno::EAGAIN) =
                nix::fcntl::openat2(root.as_raw_fd(), "a/b/../b/../../a/b", how).map(|fd| {
                    // SAFETY: fresh fd, closed right away.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) })
                })
            {
                raw_eagain += 1;
            }
            if let Err(e) = openat2(root.as_fd(), "a/b/../b/../../a/b", how) {
                failures.push(e);
            }
        }
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
        let _ = std::fs::remove_dir_all(&base);
        eprintln!("bare openat2 saw EAGAIN {raw_eagain} times in 20000");
        assert!(failures.is_empty(), "openat2 wrapper failed: {failures:?}");
    }
}
