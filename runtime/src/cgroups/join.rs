//! Joining a v1 cgroup without the kernel's global lock.
//!
//! Writing a pid to `cgroup.procs` moves a whole thread group, so the kernel
//! write-locks `cgroup_threadgroup_rwsem`, a per-cpu rwsem whose writer waits
//! for an RCU grace period when no other writer came shortly before: 7–15 ms
//! on this host for the first of the eight hierarchies, more than the rest of
//! a `berth run` together (runc and crun pay it on every create). A thread
//! writing `0` ("myself") to `tasks` moves only itself, and the kernel skips
//! that lock (cgroup_procs_write_start: `pid || threadgroup`). The init and
//! the exec helper are single-threaded (cloned from a single-threaded
//! runtime), so moving the thread is moving the process.
//!
//! The runtime opens the files and hands them to the init over the sync
//! channel: v1 checks the credentials of the opener (root on the host), not
//! of the writer, which may already be in a new user namespace.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::CgroupError;

/// Open `tasks` files of every hierarchy the cgroup is made of.
pub struct SelfJoin {
    files: Vec<(PathBuf, File)>,
}

impl SelfJoin {
    /// Open `tasks` in each of `dirs` (write-only, close-on-exec).
    pub(crate) fn open(dirs: &[PathBuf]) -> Result<SelfJoin, CgroupError> {
        let files = dirs
            .iter()
            .map(|d| {
                let path = d.join("tasks");
                let f = OpenOptions::new().write(true).open(&path).map_err(|e| {
                    CgroupError::Manager {
                        path: path.display().to_string(),
                        msg: format!("open: {e}"),
                    }
                })?;
                Ok((path, f))
            })
            .collect::<Result<_, CgroupError>>()?;
        Ok(SelfJoin { files })
    }

    /// The paths, and the open files to hand to the init.
    pub fn parts(&self) -> (Vec<String>, Vec<std::os::fd::RawFd>) {
        use std::os::fd::AsRawFd;
        self.files
            .iter()
            .map(|(p, f)| (p.display().to_string(), f.as_raw_fd()))
            .unzip()
    }

    /// Rebuild from what `parts` sent (the init's side).
    pub fn from_parts(paths: Vec<String>, fds: Vec<std::os::fd::OwnedFd>) -> SelfJoin {
        let files = paths
            .into_iter()
            .map(PathBuf::from)
            .zip(fds.into_iter().map(File::from))
            .collect();
        SelfJoin { files }
    }

    /// Move the calling thread into the cgroup, then close the files.
    pub fn join(self) -> Result<(), CgroupError> {
        for (path, mut f) in self.files {
            f.write_all(b"0").map_err(|e| CgroupError::Manager {
                path: path.display().to_string(),
                msg: format!("write 0: {e}"),
            })?;
        }
        Ok(())
    }
}
