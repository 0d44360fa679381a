//! After pivot_root: `linux.maskedPaths`, `linux.readonlyPaths`,
//! `root.readonly` and the final propagation of `/`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};

use super::resolve;
use crate::error::{Error, Result};

/// Hide each path: files under a bind of /dev/null, directories under an
/// empty read-only tmpfs. Missing paths are skipped, as in runc.
pub fn mask(root: &OwnedFd, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = dev_null()?;
    for (i, p) in paths.iter().enumerate() {
        let field = || format!("linux.maskedPaths[{i}]");
        let target = match resolve::open(root, Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::config(field(), format!("openat2 {p}: {e}"))),
        };
        let tpath = resolve::fd_path(&target);
        let is_dir = fstat(target.as_raw_fd())
            .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
            .map_err(|e| Error::config(field(), format!("fstat {p}: {e}")))?;
        let r = if is_dir {
            mount(
                Some("tmpfs"),
                tpath.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some(resolve::fd_path(&null).as_str()),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(|e| Error::config(field(), format!("mount over {p}: {e}")))?;
    }
    Ok(())
}

/// The container's /dev/null, checked to be the real character device 1:3,
/// so a rootfs cannot make us bind something else over a masked path.
fn dev_null() -> Result<OwnedFd> {
    let fd = crate::sys::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/dev/null", e))?;
    let st = fstat(fd.as_raw_fd()).map_err(|e| Error::sys("fstat", "/dev/null", e))?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        return Err(Error::Other(
            "/dev/null in the container is not the null device".into(),
        ));
    }
    Ok(fd)
}

/// Make each path a read-only bind of itself. Missing paths are skipped.
pub fn readonly(root: &OwnedFd, paths: &[String]) -> Result<()> {
    for (i, p) in paths.iter().enumerate() {
        let field = || format!("linux.readonlyPaths[{i}]");
        let target = match resolve::open(root, Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::config(field(), format!("openat2 {p}: {e}"))),
        };
        let tpath = resolve::fd_path(&target);
        mount(
            Some(tpath.as_str()),
            tpath.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::config(field(), format!("bind {p}: {e}")))?;
        let top = resolve::open(root, Path::new(p))
            .map_err(|e| Error::config(field(), format!("openat2 {p}: {e}")))?;
        super::mounts::remount(
            &top,
            Path::new(p),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .or_else(|_| super::mounts::remount(&top, Path::new(p), MsFlags::MS_RDONLY))?;
    }
    Ok(())
}

/// `root.readonly`: remount `/` read-only, keeping its other flags.
pub fn readonly_root() -> Result<()> {
    let root = crate::sys::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/", e))?;
    super::mounts::remount(&root, Path::new("/"), MsFlags::MS_RDONLY)
        .map_err(|e| Error::config("root.readonly", e.to_string()))
}
