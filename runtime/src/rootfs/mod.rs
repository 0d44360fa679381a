//! The container's root filesystem, in the order the spec requires:
//! [`prepare`] (propagation, rootfs bind, `mounts`, `/dev`) runs before the
//! createRuntime/createContainer hooks; [`enter`] (pivot_root) after them;
//! [`finish`] (masked and read-only paths, `root.readonly`) last.

pub mod cgroupfs;
pub mod devices;
pub mod mount_options;
pub mod mounts;
pub mod paths;
pub mod pivot;
pub mod resolve;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::error::{Error, Result, SysContext};

pub struct Rootfs<'a> {
    pub spec: &'a Spec,
    pub path: &'a Path,
    pub bundle: &'a Path,
    pub userns: bool,
    pub netns: bool,
}

impl Rootfs<'_> {
    fn propagation(&self) -> Result<Option<MsFlags>> {
        let Some(name) = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().clone())
        else {
            return Ok(None);
        };
        mount_options::root_propagation(&name)
            .map(Some)
            .ok_or_else(|| {
                Error::config(
                    "linux.rootfsPropagation",
                    format!("unknown propagation {name:?}"),
                )
            })
    }

    /// Everything up to, not including, pivot_root.
    pub fn prepare(&self) -> Result<()> {
        // Nothing we mount may leak back to the host: the default is
        // rslave; a shared root is made shared only after pivot_root.
        let initial = match self.propagation()? {
            Some(p) if !p.contains(MsFlags::MS_SHARED) => p,
            _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        };
        mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
            .sys("mount(propagation)", "/")?;
        mount(
            Some(self.path),
            self.path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .sys("mount(bind)", self.path.display())?;
        let root = open_dir(self.path)?;
        let mounts = self.spec.mounts().as_deref().unwrap_or(&[]);
        let ctx = mounts::Context {
            root: &root,
            bundle: self.bundle,
            userns: self.userns,
            netns: self.netns,
            // Only reached with SELinux enabled: lsm::Labels refuses it otherwise.
            mount_label: self
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.mount_label().as_deref())
                .filter(|l| !l.is_empty()),
        };
        mounts::mount_all(&ctx, mounts)?;
        // A /dev bound from the host already has its devices.
        let dev_bound = mounts.iter().any(|m| {
            m.destination() == Path::new("/dev")
                && (m.typ().as_deref() == Some("bind")
                    || m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "bind" || o == "rbind"))
        });
        if !dev_bound {
            let devpts = mounts.iter().any(|m| {
                m.destination() == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts")
            });
            let devices = self
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.devices().clone())
                .unwrap_or_default();
            devices::create(&root, &devices, self.userns, devpts)?;
        }
        Ok(())
    }

    pub fn enter(&self, no_pivot: bool) -> Result<()> {
        if no_pivot {
            pivot::move_root(self.path)
        } else {
            pivot::pivot(self.path)
        }
    }

    /// After pivot_root, `/` is the rootfs.
    pub fn finish(&self) -> Result<()> {
        let root = open_dir(Path::new("/"))?;
        if let Some(linux) = self.spec.linux() {
            paths::mask(&root, linux.masked_paths().as_deref().unwrap_or(&[]))?;
            paths::readonly(&root, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
        }
        if self
            .spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            paths::readonly_root()?;
        }
        if let Some(p) = self.propagation()? {
            mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
                .sys("mount(propagation)", "/")?;
        }
        Ok(())
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = crate::sys::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys("open", path.display())?;
    Ok(fd)
}
