//! `process.user`, `process.rlimits`, `process.oomScoreAdj`: who the
//! container process runs as and what it may consume.

use nix::sys::stat::Mode;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimit, Process};

use crate::error::{Error, Result};
use crate::procfs::ProcFs;

/// Switch to the configured user and groups. Called with PR_SET_KEEPCAPS
/// set so the permitted capabilities survive the uid change.
pub fn switch_user(p: &Process, userns: bool) -> Result<()> {
    let user = p.user();
    let uid = Uid::from_raw(user.uid());
    let gid = Gid::from_raw(user.gid());
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose owner set
    // /proc/PID/setgroups to "deny" (rootless); only then is an empty list
    // acceptable.
    match setgroups(&groups) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) if userns && groups.is_empty() => {}
        Err(e) => {
            return Err(Error::config(
                "process.user.additionalGids",
                format!("setgroups: {e}"),
            ))
        }
    }
    setresgid(gid, gid, gid)
        .map_err(|e| Error::config("process.user.gid", format!("setresgid({gid}): {e}")))?;
    setresuid(uid, uid, uid)
        .map_err(|e| Error::config("process.user.uid", format!("setresuid({uid}): {e}")))?;
    if let Some(umask) = user.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(umask));
    }
    Ok(())
}

pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        let resource = l.typ() as libc::c_int;
        let rl = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        let r = unsafe { libc::setrlimit(resource as _, &rl) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!("setrlimit {}: {e}", l.typ()),
            ));
        }
    }
    Ok(())
}

/// Through the init's private procfs handle, never the container's /proc.
pub fn set_oom_score_adj(proc: &ProcFs, adj: Option<i32>) -> Result<()> {
    let Some(adj) = adj else { return Ok(()) };
    proc.write("self/oom_score_adj", adj.to_string().as_bytes())
        .map_err(|e| {
            Error::config(
                "process.oomScoreAdj",
                format!("/proc/self/oom_score_adj: {e}"),
            )
        })
}
