//! A private handle on procfs for every write the init makes to /proc
//! (sysctls, oom_score_adj, LSM attributes).
//!
//! After pivot_root, `/proc` is whatever the container's rootfs and mounts
//! made of it: a symlink, a bind of a container-writable directory, a tmpfs
//! over /proc/sys... (CVE-2019-19921, CVE-2023-27561, CVE-2025-52881). So
//! the handle is taken before the rootfs is touched, from a procfs instance
//! nobody else can reach: a fresh detached mount (fsopen/fsmount), else a
//! detached clone of the host's /proc mount without its submounts
//! (open_tree), and every file is opened below it with openat2
//! RESOLVE_BENEATH and checked to live on procfs before a byte is written.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{Error, Result};

/// A directory fd on the root of a procfs instance private to the init.
pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    /// Take the handle; must run before the rootfs is prepared, while `/proc`
    /// is still the runtime's own.
    pub fn open() -> Result<ProcFs> {
        // In a user namespace the first two may be refused (a /proc with
        // locked submounts cannot be cloned alone); the runtime's /proc is
        // still unreachable from the container at this point.
        let root = fresh_mount()
            .or_else(|_| clone_host_proc())
            .or_else(|_| open_host_proc())
            .map_err(|e| Error::sys("open", "procfs handle", e))?;
        check_proc(&root, "/proc")?;
        Ok(ProcFs { root })
    }

    /// Write `value` to `rel` (relative to the procfs root, e.g.
    /// `sys/net/ipv4/ip_forward` or `self/oom_score_adj`). Symlinks are
    /// followed only while they stay beneath the root (procfs's own `self`,
    /// `thread-self`), magic links (`PID/fd/N`, `PID/exe`) never, and no
    /// mount on top of the handle's is crossed (should the handle be the
    /// runtime's /proc after all).
    pub fn write(&self, rel: &str, value: &[u8]) -> std::result::Result<(), ProcWriteError> {
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = crate::sys::openat2(&self.root, rel, how).map_err(ProcWriteError::Open)?;
        if !on_procfs(&fd) {
            return Err(ProcWriteError::NotProc);
        }
        let mut f = std::fs::File::from(fd);
        f.write_all(value).map_err(ProcWriteError::Write)
    }
}

/// Why a write to procfs failed; callers wrap it with the config field.
#[derive(Debug, thiserror::Error)]
pub enum ProcWriteError {
    #[error("openat2: {0}")]
    Open(Errno),
    #[error("not on procfs")]
    NotProc,
    #[error("write: {0}")]
    Write(std::io::Error),
}

fn on_procfs(fd: &OwnedFd) -> bool {
    fstatfs(fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC)
}

fn check_proc(fd: &OwnedFd, what: &str) -> Result<()> {
    if on_procfs(fd) {
        Ok(())
    } else {
        Err(Error::Other(format!("{what} is not a procfs mount")))
    }
}

fn own(fd: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A new procfs instance for the init's pid namespace, mounted nowhere.
fn fresh_mount() -> nix::Result<OwnedFd> {
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    // fsopen takes its own flag (1), not O_CLOEXEC: that one is EINVAL.
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    let name = c"proc";
    // SAFETY: fsopen reads a NUL-terminated name and returns a new fd.
    let fs = own(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsconfig CREATE takes no key or value.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    // SAFETY: fsmount on the fs context fd we own; returns a new fd.
    own(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// A detached copy of the host's /proc mount alone: no submount (a mask, a
/// read-only bind) is copied with it.
fn clone_host_proc() -> nix::Result<OwnedFd> {
    let path = c"/proc";
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd.
    own(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}

fn open_host_proc() -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: fresh fd from open(2), owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `linux.sysctl` key to its path below /proc: `net.ipv4.ip_forward` →
/// `sys/net/ipv4/ip_forward`. A key with `/` keeps its dots (runc allows
/// `net/ipv4/conf/eth0.100/forwarding`).
pub fn sysctl_path(key: &str) -> Option<String> {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let ok = !rel.is_empty()
        && Path::new(&rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    ok.then(|| format!("sys/{rel}"))
}

#[cfg(test)]
mod tests {
    use super::sysctl_path;

    #[test]
    fn sysctl_keys() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").as_deref(),
            Some("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/forwarding").as_deref(),
            Some("sys/net/ipv4/conf/eth0.100/forwarding")
        );
        assert_eq!(sysctl_path("../../etc/passwd"), None);
        assert_eq!(sysctl_path("/kernel/x"), None);
        assert_eq!(sysctl_path(""), None);
    }
}
