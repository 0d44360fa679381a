//! Making the prepared rootfs the container's `/`.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::{Result, SysContext};

/// pivot_root(2) with the old root stacked under the new one, then
/// detached: no directory of the old root is needed, and nothing of the
/// host stays reachable.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys("open", "/")?;
    let new = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys("open", rootfs.display())?;
    fchdir(new).sys("fchdir", rootfs.display())?;
    pivot_root(".", ".").sys("pivot_root", rootfs.display())?;
    // We are now in the old root: keep the unmount from propagating to the
    // host, then drop it.
    fchdir(old).sys("fchdir", "old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .sys("mount(rslave)", "old root")?;
    umount2(".", MntFlags::MNT_DETACH).sys("umount2", "old root")?;
    chdir("/").sys("chdir", "/")?;
    nix::unistd::close(old).ok();
    nix::unistd::close(new).ok();
    Ok(())
}

/// `--no-pivot`: move the rootfs over `/` and chroot, for hosts where
/// pivot_root is impossible (a ramfs root).
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).sys("chdir", rootfs.display())?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .sys("mount(move)", rootfs.display())?;
    chroot(".").sys("chroot", rootfs.display())?;
    chdir("/").sys("chdir", "/")
}
