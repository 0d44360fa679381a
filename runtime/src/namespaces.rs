//! `linux.namespaces`: which namespaces are new (clone/unshare flags) and
//! which are joined (setns by path), in the order the kernel needs:
//! the user namespace first, so every other namespace belongs to it.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// What the config asks for, resolved once.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Namespaces to create.
    pub new: Vec<LinuxNamespaceType>,
    /// Namespaces to join: (type, path, index in linux.namespaces).
    pub join: Vec<(LinuxNamespaceType, PathBuf, usize)>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// timeOffsets: (clock id, seconds, nanoseconds).
    pub time_offsets: Vec<(&'static str, i64, u32)>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut plan = Plan::default();
        let Some(linux) = spec.linux() else {
            return plan;
        };
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            match ns.path() {
                Some(p) => plan.join.push((ns.typ(), p.clone(), i)),
                None => plan.new.push(ns.typ()),
            }
        }
        plan.uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
        plan.gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
        for (clock, off) in linux.time_offsets().iter().flatten() {
            let clock = match clock.as_str() {
                "monotonic" => "monotonic",
                "boottime" => "boottime",
                _ => continue,
            };
            plan.time_offsets
                .push((clock, off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
        }
        plan
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(&t)
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _, _)| *j == t)
    }

    /// Is a process between the runtime and the init needed? Joining a pid
    /// or user namespace, or creating a time namespace, only takes effect
    /// for children of the process that does it.
    pub fn needs_intermediate(&self) -> bool {
        self.joins(LinuxNamespaceType::Pid)
            || self.joins(LinuxNamespaceType::User)
            || self.creates(LinuxNamespaceType::Time)
            || self.joins(LinuxNamespaceType::Time)
    }

    /// Flags for cloning the init. The cgroup namespace is left out: it is
    /// unshared by the init once it sits in its cgroup, so that cgroup
    /// becomes the namespace root. Time is left out: it needs unshare.
    pub fn clone_flags(&self) -> CloneFlags {
        let mut flags = CloneFlags::empty();
        for t in &self.new {
            match t {
                LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time => {}
                LinuxNamespaceType::User if self.needs_intermediate() => {}
                t => flags |= flag(*t),
            }
        }
        flags
    }
}

impl Plan {
    /// The new namespaces the init makes itself, with one unshare(2) right
    /// after the clone, instead of the clone making them: the kernel's work
    /// for them (~0.6 ms for network, mount, ipc and uts on the benchmark
    /// VM) then runs while the runtime makes the cgroup, not before it.
    /// Not pid (the init must be the clone to be its pid 1), not user (the
    /// others must belong to it), and nothing when an intermediate process
    /// clones the init.
    pub fn init_unshares(&self) -> CloneFlags {
        if self.needs_intermediate() {
            return CloneFlags::empty();
        }
        self.clone_flags()
            & (CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNS)
    }
}

/// "net, mnt namespaces" for error messages (the names `setns` paths use).
pub fn describe(flags: CloneFlags) -> String {
    use LinuxNamespaceType as T;
    let names: Vec<String> = [
        T::Network,
        T::Ipc,
        T::Uts,
        T::Mount,
        T::Pid,
        T::User,
        T::Cgroup,
    ]
    .into_iter()
    .filter(|t| flags.contains(flag(*t)))
    .map(|t| t.to_string())
    .collect();
    format!("{} namespaces", names.join(", "))
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Join the namespaces of `types` that the plan gives a path for, user
/// first.
pub fn join(plan: &Plan, types: &[LinuxNamespaceType]) -> Result<()> {
    let mut todo: Vec<_> = plan
        .join
        .iter()
        .filter(|(t, _, _)| types.contains(t))
        .collect();
    todo.sort_by_key(|(t, _, _)| *t != LinuxNamespaceType::User);
    for (t, path, i) in todo {
        let f = File::open(path).map_err(|e| {
            Error::config(
                format!("linux.namespaces[{i}].path"),
                format!("{}: {e}", path.display()),
            )
        })?;
        setns(f.as_fd(), flag(*t)).map_err(|e| {
            Error::config(
                format!("linux.namespaces[{i}].path"),
                format!("setns {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// Write uid_map and gid_map of `pid` (a process in a new user namespace).
pub fn write_id_mappings(pid: i32, plan: &Plan) -> Result<()> {
    // A non-root owner may only map its own ids and must deny setgroups
    // first; as root both are unnecessary and setgroups stays usable.
    if !nix::unistd::geteuid().is_root() {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").io("write", p)?;
    }
    write_map(pid, "gid_map", "linux.gidMappings", &plan.gid_mappings)?;
    write_map(pid, "uid_map", "linux.uidMappings", &plan.uid_mappings)
}

fn write_map(pid: i32, file: &str, field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text.as_bytes())
        .map_err(|e| Error::config(field, format!("write {path}: {e}")))
}

/// Write /proc/self/timens_offsets; only valid between unshare(CLONE_NEWTIME)
/// and the first child entering the namespace.
pub fn write_time_offsets(plan: &Plan) -> Result<()> {
    if plan.time_offsets.is_empty() {
        return Ok(());
    }
    let text: String = plan
        .time_offsets
        .iter()
        .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
        .collect();
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| {
        Error::config(
            "linux.timeOffsets",
            format!("write /proc/self/timens_offsets: {e}"),
        )
    })
}
