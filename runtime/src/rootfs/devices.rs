//! `/dev` inside the container: the spec's default devices, `linux.devices`,
//! and the standard symlinks. In a user namespace mknod is not allowed, so
//! device nodes are bind mounts of the host's, as runc does.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{self, Kind};
use crate::error::{Error, Result};

/// A device to create: path, type, major, minor, mode, uid, gid, and the
/// config field it came from (for errors).
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    field: String,
}

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("/proc/kcore", "/dev/core"),
];

pub fn create(root: &OwnedFd, devices: &[LinuxDevice], userns: bool, devpts: bool) -> Result<()> {
    let mut nodes: Vec<Node> = DEFAULTS
        .iter()
        .map(|(p, major, minor)| Node {
            path: PathBuf::from(p),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
            field: "default devices".into(),
        })
        .collect();
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is only valid in linux.resources.devices",
                ))
            }
        };
        let node = Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            field: format!("linux.devices[{i}]"),
        };
        // A configured device replaces a default one at the same path.
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    // Most nodes and links live in /dev: resolve each parent once.
    let mut parents = Parents::default();
    for n in &nodes {
        make(root, &mut parents, n, userns).map_err(|e| match e {
            Error::Sys {
                syscall,
                path,
                source,
            } => Error::config(n.field.clone(), format!("{syscall} {path}: {source}")),
            other => other,
        })?;
    }
    for (target, link) in LINKS {
        symlink(root, &mut parents, target, Path::new(link))?;
    }
    if devpts {
        // /dev/ptmx must be the container's devpts instance, not the host's.
        let dev = parents.get(root, Path::new("/dev"))?;
        match nix::unistd::unlinkat(Some(dev), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("unlinkat", "/dev/ptmx", e)),
        }
        symlink(root, &mut parents, "pts/ptmx", Path::new("/dev/ptmx"))?;
    }
    Ok(())
}

/// Parent directories opened so far (O_PATH, resolved in the root). An fd
/// keeps naming the directory it was opened on, so reusing it is as safe as
/// resolving the path again.
#[derive(Default)]
struct Parents(Vec<(PathBuf, OwnedFd)>);

impl Parents {
    fn get(&mut self, root: &OwnedFd, dir: &Path) -> Result<i32> {
        if let Some((_, fd)) = self.0.iter().find(|(p, _)| p == dir) {
            return Ok(fd.as_raw_fd());
        }
        let fd = resolve::open_or_create(root, dir, Kind::Dir)?;
        let raw = fd.as_raw_fd();
        self.0.push((dir.to_path_buf(), fd));
        Ok(raw)
    }
}

fn make(root: &OwnedFd, parents: &mut Parents, n: &Node, userns: bool) -> Result<()> {
    let parent_path = n.path.parent().unwrap_or(Path::new("/"));
    let name = n
        .path
        .file_name()
        .ok_or_else(|| Error::config(n.field.clone(), "path has no file name"))?;
    let parent = parents.get(root, parent_path)?;
    if userns && n.kind != SFlag::S_IFIFO {
        let target = resolve::open_or_create(root, &n.path, Kind::File)?;
        return super::mounts::bind_path(&n.path, &target, &n.path, false);
    }
    let dev = makedev(n.major, n.minor);
    let mode = Mode::from_bits_truncate(n.mode);
    // Usually nothing is there (a fresh /dev tmpfs): replace only on EEXIST.
    let made = match mknodat(Some(parent), name, n.kind, mode, dev) {
        Err(Errno::EEXIST) => {
            match nix::unistd::unlinkat(Some(parent), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(Error::sys("unlinkat", n.path.display(), e)),
            }
            mknodat(Some(parent), name, n.kind, mode, dev)
        }
        r => r,
    };
    made.map_err(|e| Error::sys("mknodat", n.path.display(), e))?;
    // mknod applies the umask; the config's mode is exact.
    chmod_nofollow(parent, name, n.mode)
        .map_err(|e| Error::sys("fchmodat", n.path.display(), e))?;
    fchownat(
        Some(parent),
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::sys("fchownat", n.path.display(), e))
}

/// chmod without following a symlink at `name`: fchmodat2 (Linux 6.6) does
/// it in one call; before that, glibc's emulation (open O_PATH, fstat, chmod
/// through /proc/self/fd, close).
fn chmod_nofollow(dir: i32, name: &std::ffi::OsStr, mode: u32) -> nix::Result<()> {
    let cname = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|_| Errno::EINVAL)?;
    // SAFETY: fchmodat2 reads a NUL-terminated name; the other arguments are
    // integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir,
            cname.as_ptr(),
            mode & 0o7777,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => nix::sys::stat::fchmodat(
            Some(dir),
            name,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        ),
        Err(e) => Err(e),
    }
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
}

fn symlink(root: &OwnedFd, parents: &mut Parents, target: &str, link: &Path) -> Result<()> {
    let parent = parents.get(root, link.parent().unwrap_or(Path::new("/")))?;
    let name = link.file_name().unwrap_or_default();
    match nix::unistd::symlinkat(target, Some(parent), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys("symlinkat", link.display(), e)),
    }
}
