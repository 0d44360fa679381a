//! Optional adjustments of the test process's own view of the host.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// With HIDE_CGROUP2=1, moves this process into a private mount namespace (a slave of the
/// host's, so the host is never changed) and unmounts /sys/fs/cgroup/unified there: crun 1.8
/// refuses the v1 "hybrid" layout. Must run before any thread is started, so every test
/// thread and runtime command inherits the namespace.
pub fn hide_cgroup2_if_asked() -> Result<bool, String> {
    if std::env::var("HIDE_CGROUP2").as_deref() != Ok("1") {
        return Ok(false);
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| format!("making / a slave mount: {e}"))?;
    match umount2("/sys/fs/cgroup/unified", MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(true),
        Err(e) => Err(format!("umount /sys/fs/cgroup/unified: {e}")),
    }
}
