//! Keep the container away from the runtime binary (CVE-2019-5736).
//!
//! Every berth process that enters a container's namespaces (the
//! intermediate, the init, an exec'd process) runs the host's berth binary
//! until its execve. A process of the container that could open
//! `/proc/<that pid>/exe` would hold the host binary, and once berth exits
//! (ETXTBSY no longer applies) reopen it for writing and replace the
//! runtime the host runs next.
//!
//! Opening, reading or even readlink-ing `/proc/<pid>/exe` needs ptrace
//! access to the process (proc_fd_access_allowed). A non-dumpable process
//! grants that only to holders of CAP_SYS_PTRACE in its user namespace, so
//! the runtime marks itself non-dumpable before it forks anything that
//! enters a container; execve of the container's program resets the flag
//! from the new binary, so the container's own processes are unaffected.
//! docs/security.md says what this leaves to the configuration.

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Make the calling process (and every process it forks from now on)
/// non-dumpable until its next execve.
pub fn protect() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    Errno::result(r)
        .map(drop)
        .map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE)", "0", e))
}
