//! The seccomp(2) calls: probing what this kernel supports, and loading a
//! program. seccompiler's `apply_filter` sets no_new_privs itself and takes
//! no flags, so berth calls seccomp(2) directly: the init decides about
//! no_new_privs, and NEW_LISTENER / LOG / SPEC_ALLOW are flags.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use seccompiler::sock_filter;

/// `struct sock_fprog` of <linux/filter.h>.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

fn seccomp(op: libc::c_uint, flags: u64, args: *const libc::c_void) -> io::Result<libc::c_long> {
    // SAFETY: seccomp(2) only reads `args` (a u32 or a sock_fprog the caller
    // keeps alive for the duration of the call) or, when it is null, fails.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, op, flags as libc::c_ulong, args) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Whether the kernel knows this return action (SECCOMP_GET_ACTION_AVAIL
/// looks at the action bits only).
pub(crate) fn action_available(ret: u32) -> bool {
    let action = ret & libc::SECCOMP_RET_ACTION_FULL;
    seccomp(
        libc::SECCOMP_GET_ACTION_AVAIL,
        0,
        (&action as *const u32).cast(),
    )
    .is_ok()
}

/// Whether the kernel accepts a filter flag: with a null program it checks
/// the flags first (EINVAL when unknown) and then faults on the pointer, as
/// libseccomp probes.
pub(crate) fn flag_supported(flag: u64) -> bool {
    // WAIT_KILLABLE_RECV is only accepted together with NEW_LISTENER.
    let with = if flag & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
        flag | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        flag
    };
    matches!(
        seccomp(libc::SECCOMP_SET_MODE_FILTER, with, std::ptr::null()),
        Err(e) if e.raw_os_error() == Some(libc::EFAULT)
    )
}

/// Loads `filter` for the calling thread; returns the listener fd when
/// `flags` asks for one.
pub(crate) fn load(filter: &[sock_filter], flags: u64) -> io::Result<Option<OwnedFd>> {
    let len = libc::c_ushort::try_from(filter.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = SockFprog {
        len,
        filter: filter.as_ptr(),
    };
    let rc = seccomp(
        libc::SECCOMP_SET_MODE_FILTER,
        flags,
        (&prog as *const SockFprog).cast(),
    )?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER, a successful seccomp(2) returns a new fd
    // that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}
