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
    for n in &nodes {
        make(root, n, userns).map_err(|e| match e {
            Error::Sys {
                syscall,
                path,
                source,
            } => Error::config(n.field.clone(), format!("{syscall} {path}: {source}")),
            other => other,
        })?;
    }
    for (target, link) in LINKS {
        symlink(root, target, Path::new(link))?;
    }
    if devpts {
        // /dev/ptmx must be the container's devpts instance, not the host's.
        let dev =
            resolve::open(root, Path::new("/dev")).map_err(|e| Error::sys("openat2", "/dev", e))?;
        match nix::unistd::unlinkat(
            Some(dev.as_raw_fd()),
            "ptmx",
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("unlinkat", "/dev/ptmx", e)),
        }
        symlink(root, "pts/ptmx", Path::new("/dev/ptmx"))?;
    }
    Ok(())
}

fn make(root: &OwnedFd, n: &Node, userns: bool) -> Result<()> {
    let parent_path = n.path.parent().unwrap_or(Path::new("/"));
    let name = n
        .path
        .file_name()
        .ok_or_else(|| Error::config(n.field.clone(), "path has no file name"))?;
    let parent = resolve::open_or_create(root, parent_path, Kind::Dir)?;
    if userns && n.kind != SFlag::S_IFIFO {
        let target = resolve::open_or_create(root, &n.path, Kind::File)?;
        return super::mounts::bind_path(&n.path, &target, &n.path, false);
    }
    match nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("unlinkat", n.path.display(), e)),
    }
    let dev = makedev(n.major, n.minor);
    mknodat(
        Some(parent.as_raw_fd()),
        name,
        n.kind,
        Mode::from_bits_truncate(n.mode),
        dev,
    )
    .map_err(|e| Error::sys("mknodat", n.path.display(), e))?;
    // mknod applies the umask; the config's mode is exact.
    nix::sys::stat::fchmodat(
        Some(parent.as_raw_fd()),
        name,
        Mode::from_bits_truncate(n.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(|e| Error::sys("fchmodat", n.path.display(), e))?;
    fchownat(
        Some(parent.as_raw_fd()),
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::sys("fchownat", n.path.display(), e))
}

fn symlink(root: &OwnedFd, target: &str, link: &Path) -> Result<()> {
    let parent = resolve::open_or_create(root, link.parent().unwrap_or(Path::new("/")), Kind::Dir)?;
    let name = link.file_name().unwrap_or_default();
    match nix::unistd::symlinkat(target, Some(parent.as_raw_fd()), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys("symlinkat", link.display(), e)),
    }
}
