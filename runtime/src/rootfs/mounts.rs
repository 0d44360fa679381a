//! `mounts`: each entry mounted in order, its destination resolved inside
//! the rootfs and the mount made through the resolved fd.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Mount;

use super::mount_options::{self, Options};
use super::resolve::{self, Kind};
use crate::error::{Error, Result};

/// Everything a mount needs to know about the container.
pub struct Context<'a> {
    pub root: &'a OwnedFd,
    pub bundle: &'a Path,
    /// The container has its own user namespace: some mounts (sysfs
    /// without a network namespace, device nodes) are not allowed there.
    pub userns: bool,
    pub netns: bool,
    /// `linux.mountLabel`, given as `context=` to the filesystems that take
    /// it.
    pub mount_label: Option<&'a str>,
}

pub fn mount_all(ctx: &Context, mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, m).map_err(|e| match e {
            Error::Sys {
                syscall,
                path,
                source,
            } => Error::config(
                format!("mounts[{i}]"),
                format!("{syscall} {path}: {source}"),
            ),
            Error::Config { field, msg } if field.is_empty() => {
                Error::config(format!("mounts[{i}]"), msg)
            }
            Error::Config { field, msg } if field.starts_with('.') => {
                Error::config(format!("mounts[{i}]{field}"), msg)
            }
            other => other,
        })?;
    }
    Ok(())
}

fn mount_one(ctx: &Context, m: &Mount) -> Result<()> {
    let opts = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    resolve::check_plain_destination(ctx.root, dest, if opts.bind { "bind" } else { typ })?;
    if opts.bind || typ == "bind" {
        return bind(ctx, m, &opts);
    }
    let target = resolve::open_or_create(ctx.root, dest, Kind::Dir)?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    let mut data = opts.data.clone();
    if let Some(label) = ctx.mount_label.filter(|_| takes_mount_label(typ)) {
        data.push(format!("context=\"{label}\""));
    }
    let data = data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let target_path = resolve::fd_path(&target);
    let res = match typ {
        "cgroup" => super::cgroupfs::mount(ctx, &target, opts.flags, dest),
        _ => mount(
            Some(source.as_str()),
            target_path.as_str(),
            Some(typ),
            opts.flags,
            data,
        )
        .map_err(|e| Error::sys("mount", dest.display(), e)),
    };
    match res {
        // A user namespace without its own network namespace may not mount
        // sysfs: give it the host's, read-only, as runc does.
        Err(Error::Sys {
            source: Errno::EPERM,
            ..
        }) if typ == "sysfs" && ctx.userns => {
            let flags = opts.flags | MsFlags::MS_RDONLY;
            bind_path(Path::new("/sys"), &target, dest, true)?;
            let top = resolve::open(ctx.root, dest)
                .map_err(|e| Error::sys("openat2", dest.display(), e))?;
            remount(&top, dest, flags)?;
        }
        r => r?,
    }
    apply_propagation(ctx, dest, &opts)
}

fn bind(ctx: &Context, m: &Mount, opts: &Options) -> Result<()> {
    let dest = m.destination();
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| Error::config(".source", "required for a bind mount"))?;
    let source = source_path(ctx.bundle, source);
    let meta = std::fs::metadata(&source)
        .map_err(|e| Error::config(".source", format!("{}: {e}", source.display())))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = resolve::open_or_create(ctx.root, dest, kind)?;
    bind_path(&source, &target, dest, opts.recursive)?;
    let remount_flags = opts.flags & !MsFlags::MS_REMOUNT;
    if !remount_flags.is_empty() {
        let top =
            resolve::open(ctx.root, dest).map_err(|e| Error::sys("openat2", dest.display(), e))?;
        remount(&top, dest, remount_flags)?;
    }
    apply_propagation(ctx, dest, opts)
}

pub fn bind_path(source: &Path, target: &OwnedFd, dest: &Path, recursive: bool) -> Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source),
        resolve::fd_path(target).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| {
        Error::sys(
            "mount",
            format!("{} on {}", source.display(), dest.display()),
            e,
        )
    })
}

/// Change the flags of the bind mount `top` (an fd on the mount itself).
/// Flags the kernel locked (from a less privileged user namespace) must be
/// kept or the remount fails with EPERM.
pub fn remount(top: &OwnedFd, dest: &Path, flags: MsFlags) -> Result<()> {
    let path = resolve::fd_path(top);
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let first = mount(
        None::<&str>,
        path.as_str(),
        None::<&str>,
        base | flags,
        None::<&str>,
    );
    match first {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let locked = fstatvfs(top)
                .map(|s| locked_flags(s.flags()))
                .map_err(|e| Error::sys("fstatvfs", dest.display(), e))?;
            mount(
                None::<&str>,
                path.as_str(),
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(|e| Error::sys("mount(remount)", dest.display(), e))
        }
        Err(e) => Err(Error::sys("mount(remount)", dest.display(), e)),
    }
}

fn locked_flags(f: FsFlags) -> MsFlags {
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}

fn apply_propagation(ctx: &Context, dest: &Path, opts: &Options) -> Result<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top =
        resolve::open(ctx.root, dest).map_err(|e| Error::sys("openat2", dest.display(), e))?;
    let path = resolve::fd_path(&top);
    for p in &opts.propagation {
        mount(None::<&str>, path.as_str(), None::<&str>, *p, None::<&str>)
            .map_err(|e| Error::sys("mount(propagation)", dest.display(), e))?;
    }
    Ok(())
}

/// runc's rule: procfs, sysfs, mqueue and cgroup filesystems reject or
/// ignore `context=`; the rest (tmpfs, devpts...) get the mount label.
fn takes_mount_label(typ: &str) -> bool {
    !matches!(typ, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2")
}

/// A source relative to the bundle, as the spec allows for bind mounts.
pub fn source_path(bundle: &Path, source: &Path) -> PathBuf {
    if source.is_absolute() {
        source.to_path_buf()
    } else {
        bundle.join(source)
    }
}
