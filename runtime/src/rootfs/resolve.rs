//! Resolve a config path inside the rootfs without ever leaving it: every
//! lookup goes through openat2(RESOLVE_IN_ROOT), so a symlink in the rootfs
//! (`/dev -> /host/dev`, `proc -> /`) resolves as if the rootfs were `/`.
//! Mounts are then made on `/proc/self/fd/N` of the opened target, so
//! nothing can swap the path between the check and the mount.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Open `path` (absolute, container view) below `root` as an O_PATH fd.
pub fn open(root: &OwnedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    crate::sys::openat2(root, &rel, how)
}

/// `proc` and `sysfs`, and anything mounted below /proc or /sys, go on an
/// ordinary directory reached without following a symlink: a rootfs whose
/// /proc is a symlink would otherwise choose where procfs lands, and which
/// /proc the runtime's later path-based work sees (CVE-2019-19921,
/// CVE-2023-27561). A destination that does not exist yet is created as
/// directories by the mount itself.
pub fn check_plain_destination(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    let pseudo = typ == "proc" || typ == "sysfs";
    let under = |top: &str| {
        let mut c = dest
            .components()
            .filter(|c| !matches!(c, Component::RootDir));
        c.next().is_some_and(|f| f.as_os_str() == top)
    };
    if !pseudo && !under("proc") && !under("sys") {
        return Ok(());
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let refuse = |why: &str| {
        Err(Error::config(
            ".destination",
            format!("{}: {why}; refusing to mount {typ} there", dest.display()),
        ))
    };
    match crate::sys::openat2(root, &relative(dest), how) {
        Ok(fd) => {
            let is_dir = nix::sys::stat::fstat(fd.as_raw_fd()).is_ok_and(|s| {
                nix::sys::stat::SFlag::from_bits_truncate(s.st_mode) & nix::sys::stat::SFlag::S_IFMT
                    == nix::sys::stat::SFlag::S_IFDIR
            });
            if pseudo && !is_dir {
                return refuse("not an ordinary directory");
            }
            Ok(())
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ELOOP) => refuse("a symlink in the rootfs"),
        Err(e) => Err(Error::sys("openat2", dest.display(), e)),
    }
}

/// Open `path` below `root`, creating what is missing: directories for
/// every component, and the last one as `kind`. A dangling symlink on the
/// way is followed inside the root and its target created there.
pub fn open_or_create(root: &OwnedFd, path: &Path, kind: Kind) -> Result<OwnedFd> {
    create_in_root(root, path, kind, 0)
}

/// Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;

fn create_in_root(root: &OwnedFd, path: &Path, kind: Kind, links: usize) -> Result<OwnedFd> {
    match open(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("openat2", path.display(), e)),
    }
    let rel = relative(path);
    let comps: Vec<_> = rel.components().collect();
    let mut parent = root.try_clone().map_err(|e| Error::io("dup", path, e))?;
    let mut prefix = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        let parent_prefix = prefix.clone();
        prefix.push(c);
        let last = i + 1 == comps.len();
        match open(root, &prefix) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("openat2", prefix.display(), e)),
        }
        let name = c.as_os_str();
        if let Ok(target) = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name) {
            if links >= MAX_LINKS {
                return Err(Error::sys("openat2", path.display(), Errno::ELOOP));
            }
            // Resolve the link's target as the kernel would with the
            // rootfs as `/`, then continue with the rest of the path.
            let target = Path::new(&target);
            let mut next = if target.is_absolute() {
                target.to_path_buf()
            } else {
                Path::new("/").join(&parent_prefix).join(target)
            };
            for rest in &comps[i + 1..] {
                next.push(rest);
            }
            return create_in_root(root, &next, kind, links + 1);
        }
        if last && kind == Kind::File {
            let fd = nix::fcntl::openat(
                Some(parent.as_raw_fd()),
                name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| Error::sys("openat", prefix.display(), e))?;
            nix::unistd::close(fd).ok();
        } else {
            match mkdirat(
                Some(parent.as_raw_fd()),
                name,
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::sys("mkdirat", prefix.display(), e)),
            }
        }
        parent = open(root, &prefix).map_err(|e| Error::sys("openat2", prefix.display(), e))?;
    }
    Ok(parent)
}

/// `/proc/self/fd/N`: the path through which a syscall reaches exactly the
/// object `fd` refers to.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// A config path made relative, with `..` kept for RESOLVE_IN_ROOT to clamp.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}
