//! A `cgroup` mount inside the container: cgroup2 on a unified host; on v1,
//! a tmpfs holding one mount per hierarchy, each showing only the
//! container's own cgroup (its cgroup namespace root, or a bind of its
//! directory when it has no cgroup namespace).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};

use super::mounts::Context;
use super::resolve;
use crate::error::{Error, Result};

pub fn mount(ctx: &Context, target: &OwnedFd, flags: MsFlags, dest: &Path) -> Result<()> {
    let tpath = resolve::fd_path(target);
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if unified {
        return mount_err(
            nix::mount::mount(
                Some("cgroup2"),
                tpath.as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            ),
            dest,
        );
    }
    let base = flags & !MsFlags::MS_RDONLY;
    mount_err(
        nix::mount::mount(
            Some("tmpfs"),
            tpath.as_str(),
            Some("tmpfs"),
            base,
            Some("mode=755"),
        ),
        dest,
    )?;
    let top =
        resolve::open(ctx.root, dest).map_err(|e| Error::sys("openat2", dest.display(), e))?;
    let own = crate::sys::read_pseudo("/proc/self/cgroup")
        .map_err(|e| Error::io("read", "/proc/self/cgroup", e))?;
    let in_cgroupns = own.lines().all(|l| l.ends_with(":/"));
    // Inside our fresh tmpfs, which nothing else can have changed: plain
    // names through `top`, no resolution needed.
    let top_path = resolve::fd_path(&top);
    let mut binds = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            continue; // the v2 entry of a hybrid host: not part of the v1 view
        }
        let name = ctrls.strip_prefix("name=").unwrap_or(ctrls);
        let host_dir = Path::new("/sys/fs/cgroup").join(name);
        if !host_dir.exists() {
            continue;
        }
        match mkdirat(Some(top.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys("mkdirat", dest.join(name).display(), e)),
        }
        let spath = format!("{top_path}/{name}");
        let r = if in_cgroupns {
            nix::mount::mount(
                Some("cgroup"),
                spath.as_str(),
                Some("cgroup"),
                flags,
                Some(ctrls),
            )
        } else {
            let src = host_dir.join(path.trim_start_matches('/'));
            binds.push(spath.clone());
            nix::mount::mount(
                Some(&src),
                spath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        mount_err(r, &dest.join(name))?;
        // cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if name.contains(',') {
            for alias in name.split(',') {
                let _ = nix::unistd::symlinkat(name, Some(top.as_raw_fd()), alias);
            }
        }
    }
    // The options (ro, nosuid, ...) on the tmpfs and every hierarchy in one
    // call rather than a remount per bind (ten on a v1 host).
    match crate::sys::mount_setattr_recursive(std::os::fd::AsFd::as_fd(&top), mount_attrs(flags)) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSYS) => remount_each(&top, dest, &binds, flags),
        Err(e) => Err(Error::sys("mount_setattr", dest.display(), e)),
    }
}

/// Kernels before 5.12 (no mount_setattr): the same options by a remount of
/// each bind, then of the tmpfs when read-only (it was mounted with the rest).
fn remount_each(top: &OwnedFd, dest: &Path, binds: &[String], flags: MsFlags) -> Result<()> {
    for spath in binds {
        // Through the fresh tmpfs and a plain name: reaching a kernfs
        // root by a magic-link jump makes the remount fail (ENOENT).
        let r = nix::mount::mount(
            None::<&str>,
            spath.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        );
        mount_err(r, dest)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        super::mounts::remount(top, dest, flags)?;
    }
    Ok(())
}

/// The MOUNT_ATTR_* bits for a mount's MS_* flags.
fn mount_attrs(flags: MsFlags) -> u64 {
    let mut a = 0;
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, 0x1),
        (MsFlags::MS_NOSUID, 0x2),
        (MsFlags::MS_NODEV, 0x4),
        (MsFlags::MS_NOEXEC, 0x8),
        (MsFlags::MS_NOATIME, 0x10),
        (MsFlags::MS_STRICTATIME, 0x20),
        (MsFlags::MS_NODIRATIME, 0x80),
    ] {
        if flags.contains(ms) {
            a |= attr;
        }
    }
    a
}

fn mount_err(r: nix::Result<()>, dest: &Path) -> Result<()> {
    r.map_err(|e| Error::sys("mount", dest.display(), e))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::fcntl::OFlag;
    use nix::sys::statvfs::{statvfs, FsFlags};

    use super::*;

    /// The options each mount of a tmpfs-with-binds tree ends up with, the
    /// tree built in a forked child's own private mount namespace (nothing
    /// reaches the host's mounts) and given `flags` by `apply`.
    fn options_after(apply: fn(&OwnedFd, &[String], MsFlags) -> Result<()>) -> Vec<FsFlags> {
        let dir = std::env::temp_dir().join(format!("berth-cgroupfs-{}", std::process::id()));
        let (rx, tx) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child only makes syscalls, writes to the pipe and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                drop(rx);
                let out = (|| -> std::result::Result<String, String> {
                    let e = |what: &'static str| move |err: nix::Error| format!("{what}: {err}");
                    crate::sys::enter_private_mount_ns().map_err(e("private mount ns"))?;
                    let none = None::<&str>;
                    std::fs::create_dir_all(dir.join("src")).map_err(|x| x.to_string())?;
                    let top = dir.join("top");
                    std::fs::create_dir_all(&top).map_err(|x| x.to_string())?;
                    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                    nix::mount::mount(Some("tmpfs"), &top, Some("tmpfs"), base, none)
                        .map_err(e("tmpfs"))?;
                    let mut binds = Vec::new();
                    for name in ["a", "b"] {
                        let b = top.join(name);
                        std::fs::create_dir(&b).map_err(|x| x.to_string())?;
                        nix::mount::mount(Some(&dir.join("src")), &b, none, MsFlags::MS_BIND, none)
                            .map_err(e("bind"))?;
                        binds.push(b.display().to_string());
                    }
                    let fd =
                        crate::sys::open(&top, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                            .map_err(e("open"))?;
                    apply(&fd, &binds, MsFlags::MS_RDONLY | base).map_err(|x| x.to_string())?;
                    let mut bits = String::new();
                    for p in [top.clone(), top.join("a"), top.join("b")] {
                        let f = statvfs(&p).map_err(e("statvfs"))?.flags();
                        bits.push_str(&format!("{} ", f.bits()));
                    }
                    Ok(bits)
                })();
                let line = out.unwrap_or_else(|e| format!("error {e}"));
                let _ = nix::unistd::write(&tx, line.as_bytes());
                // SAFETY: no destructors of the test harness may run here.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(tx);
                let mut out = String::new();
                let mut f = std::fs::File::from(rx);
                std::io::Read::read_to_string(&mut f, &mut out).expect("read");
                let _ = nix::sys::wait::waitpid(child, None);
                let _ = std::fs::remove_dir_all(&dir);
                assert!(!out.starts_with("error"), "{out}");
                out.split_whitespace()
                    .map(|b| FsFlags::from_bits_truncate(b.parse().expect("flag bits")))
                    .collect()
            }
        }
    }

    #[test]
    fn fallback_remounts_give_the_options_mount_setattr_gives() {
        let setattr = options_after(|top, _, flags| {
            crate::sys::mount_setattr_recursive(top.as_fd(), mount_attrs(flags))
                .map_err(|e| Error::sys("mount_setattr", "top", e))
        });
        let fallback = options_after(|top, binds, flags| {
            remount_each(top, Path::new("/sys/fs/cgroup"), binds, flags)
        });
        let want = FsFlags::ST_RDONLY | FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC;
        assert_eq!(setattr.len(), 3);
        for (i, f) in setattr.iter().enumerate() {
            assert!(f.contains(want), "mount_setattr, mount {i}: {f:?}");
        }
        assert_eq!(fallback, setattr, "tmpfs, bind a, bind b");
    }
}
