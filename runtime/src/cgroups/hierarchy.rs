//! What the host mounts, and making (and unmaking) the cgroup directories.
//!
//! The directories are made, and the limits written, before the init joins
//! (it waits for that): nothing the init does runs unlimited.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use libcgroups::common::{CgroupSetup, DEFAULT_CGROUP_ROOT};

use super::CgroupError;

/// The v1 controllers berth places a container in (libcgroups' list, plus rdma
/// which berth writes itself).
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
    "rdma",
];

#[derive(Debug, Clone)]
pub(crate) enum Hierarchy {
    /// Legacy or hybrid: one mount per controller (or co-mounted group).
    V1 { mounts: BTreeMap<String, PathBuf> },
    /// Unified: one tree, `controllers` enabled at its root.
    V2 {
        root: PathBuf,
        controllers: Vec<String>,
    },
}

impl Hierarchy {
    pub(crate) fn detect() -> Result<Hierarchy, CgroupError> {
        let setup = libcgroups::common::get_cgroup_setup().map_err(|e| CgroupError::Manager {
            path: DEFAULT_CGROUP_ROOT.into(),
            msg: format!("cannot tell the cgroup layout: {e}"),
        })?;
        match setup {
            CgroupSetup::Legacy | CgroupSetup::Hybrid => Ok(Hierarchy::V1 {
                mounts: v1_mounts()?,
            }),
            CgroupSetup::Unified => {
                let root = PathBuf::from(DEFAULT_CGROUP_ROOT);
                let file = root.join("cgroup.controllers");
                let text = read(&file)?;
                Ok(Hierarchy::V2 {
                    root,
                    controllers: text.split_whitespace().map(String::from).collect(),
                })
            }
        }
    }

    pub(crate) fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    pub(crate) fn has(&self, controller: &str) -> bool {
        match self {
            Hierarchy::V1 { mounts } => mounts.contains_key(controller),
            Hierarchy::V2 { controllers, .. } => controllers.iter().any(|c| c == controller),
        }
    }

    /// The directory holding `controller`'s files for the cgroup at `path`.
    pub(crate) fn dir(&self, controller: &str, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Hierarchy::V1 { mounts } => mounts.get(controller).map(|m| m.join(rel)),
            Hierarchy::V2 { root, .. } => Some(root.join(rel)),
        }
    }

    /// Every directory that makes up the cgroup at `path`.
    pub(crate) fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Hierarchy::V1 { mounts } => {
                let mut v: Vec<PathBuf> = mounts.values().map(|m| m.join(rel)).collect();
                v.sort();
                v.dedup();
                v
            }
            Hierarchy::V2 { root, .. } => vec![root.join(rel)],
        }
    }

    /// Make the cgroup at `path`; returns the directories this call created,
    /// parents first, so a failed create can remove exactly those.
    pub(crate) fn make(&self, path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        let mut created = Vec::new();
        let mut res = self.make_into(path, &mut created);
        // Somebody may remove an emptied parent (berth's `/berth`, or a
        // parent of a given cgroupsPath) between our mkdir of it and of the
        // child: once more, from the top.
        if matches!(&res, Err(CgroupError::Manager { msg, .. }) if msg.contains("No such file")) {
            remove_dirs(&created);
            created.clear();
            res = self.make_into(path, &mut created);
        }
        if let Err(e) = res {
            remove_dirs(&created);
            return Err(e);
        }
        Ok(created)
    }

    fn make_into(&self, path: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Hierarchy::V1 { mounts } => {
                let mut seen = Vec::new();
                for (controller, mount) in mounts {
                    if seen.contains(mount) {
                        continue;
                    }
                    seen.push(mount.clone());
                    let mut dir = mount.clone();
                    for comp in rel.components() {
                        dir.push(comp);
                        mkdir(&dir, created)?;
                        // Every level, not only those this call made: a
                        // concurrent create may have made berth's parent and
                        // not filled it yet, and copying its empty cpus would
                        // leave ours unjoinable.
                        if controller == "cpuset" {
                            inherit_cpuset(&dir)?;
                        }
                    }
                }
            }
            Hierarchy::V2 { .. } => self.enable_along(path, |dir| mkdir(dir, created))?,
        }
        Ok(())
    }

    /// On v2, enable every controller the host has in each ancestor of
    /// `path`, top down, calling `at` on each level below the root once its
    /// parent is enabled. A controller is usable in a cgroup only when every
    /// ancestor enables it in cgroup.subtree_control; the leaf itself must
    /// not (no internal processes), so it holds the init. Nothing on v1.
    pub(crate) fn enable_along(
        &self,
        path: &Path,
        mut at: impl FnMut(&Path) -> Result<(), CgroupError>,
    ) -> Result<(), CgroupError> {
        let Hierarchy::V2 { root, controllers } = self else {
            return Ok(());
        };
        let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        let mut cur = root.clone();
        for comp in path.strip_prefix("/").unwrap_or(path).components() {
            enable_controllers(&cur, &enable);
            cur.push(comp);
            at(&cur)?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<String, CgroupError> {
    crate::sys::read_pseudo(path).map_err(|e| CgroupError::Manager {
        path: path.display().to_string(),
        msg: format!("read: {e}"),
    })
}

fn write(path: &Path, data: &str) -> Result<(), CgroupError> {
    fs::write(path, data).map_err(|e| CgroupError::Manager {
        path: path.display().to_string(),
        msg: format!("write {data:?}: {e}"),
    })
}

/// Mount points of the v1 controllers, from /proc/self/mountinfo's super options.
fn v1_mounts() -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let info = read(Path::new("/proc/self/mountinfo"))?;
    let mut mounts = BTreeMap::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let (Some(mount_point), Some(opts)) = (pre.split_whitespace().nth(4), post.nth(1)) else {
            continue;
        };
        for opt in opts.split(',') {
            if V1_CONTROLLERS.contains(&opt) {
                mounts
                    .entry(opt.to_string())
                    .or_insert_with(|| PathBuf::from(unescape(mount_point)));
            }
        }
    }
    Ok(mounts)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn mkdir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::Manager {
            path: dir.display().to_string(),
            msg: format!("mkdir: {e}"),
        }),
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and a task cannot
/// join it (ENOSPC) until they are filled: copy the parent's.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read(&dir.join(file))?.trim().is_empty() {
            write(&dir.join(file), read(&parent.join(file))?.trim())?;
        }
    }
    Ok(())
}

/// Best effort, one by one: a controller that cannot be enabled only matters
/// if a limit needs it, and applying that limit then fails with a clear error.
fn enable_controllers(dir: &Path, enable: &[String]) {
    let file = dir.join("cgroup.subtree_control");
    let Ok(current) = crate::sys::read_pseudo(&file) else {
        return;
    };
    for c in enable {
        if !current.split_whitespace().any(|e| Some(e) == c.get(1..)) {
            let _ = fs::write(&file, c);
        }
    }
}

/// Remove directories (children before parents); already gone is fine.
pub(crate) fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// `remove_dirs`, then the first directory that is still there (rmdir's
/// own answer: gone or removed is done, anything else is left).
pub(crate) fn remove_dirs_left(dirs: &[PathBuf]) -> Option<&PathBuf> {
    let mut left = None;
    for d in dirs.iter().rev() {
        match fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => left = Some(d),
        }
    }
    left
}

/// The pids in the cgroup at `dir` and every cgroup below it; nothing if
/// `dir` is gone. Subdirectories are told apart by the directory entry's
/// type, without a stat per file.
pub(crate) fn pids_below(dir: &Path, pids: &mut Vec<nix::unistd::Pid>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    let text = match crate::sys::read_pseudo(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CgroupError::Manager {
                path: procs.display().to_string(),
                msg: format!("read: {e}"),
            })
        }
    };
    for line in text.lines() {
        if let Ok(pid) = line.trim().parse::<i32>() {
            pids.push(nix::unistd::Pid::from_raw(pid));
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CgroupError::Manager {
                path: dir.display().to_string(),
                msg: format!("read dir: {e}"),
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids_below(&entry.path(), pids)?;
        }
    }
    Ok(())
}
