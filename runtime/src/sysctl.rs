//! `linux.sysctl`: only keys that live in a namespace the container owns.
//!
//! The init writes sysctls as host root with every capability, so a global
//! key (`kernel.core_pattern`, `vm.*`) would change the host; so would a
//! namespaced key when the namespace is the runtime's own (no entry, or a
//! path to the host's). runc refuses both; so does berth, before anything
//! is created.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType as Ns, Spec};

use crate::error::{Error, Result};

/// IPC-namespaced keys besides the `fs.mqueue.` prefix (ipc/ipc_sysctl.c).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl key belongs to, `None` for a global one.
pub fn namespace_of(key: &str) -> Option<Ns> {
    let key = key.replace('/', ".");
    if key.starts_with("net.") {
        Some(Ns::Network)
    } else if key.starts_with("fs.mqueue.") || IPC_KEYS.contains(&key.as_str()) {
        Some(Ns::Ipc)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(Ns::Uts)
    } else {
        None
    }
}

pub fn check(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or(&[]);
    let mut own: HashSet<Ns> = HashSet::new();
    for ns in namespaces {
        let host = ns
            .path()
            .as_deref()
            .is_some_and(|p| is_runtime_ns(p, ns.typ()));
        if !host {
            own.insert(ns.typ());
        }
    }
    for key in sysctl.keys() {
        let field = || format!("linux.sysctl.{key}");
        if crate::procfs::sysctl_path(key).is_none() {
            return Err(Error::config(field(), "invalid key"));
        }
        match namespace_of(key) {
            None => {
                return Err(Error::config(
                    field(),
                    "not in a separate kernel namespace: it would change the host",
                ))
            }
            Some(ns) if !own.contains(&ns) => {
                return Err(Error::config(
                    field(),
                    format!("needs the container's own {ns} namespace in linux.namespaces"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `path` names the namespace the runtime itself is in (the host's).
fn is_runtime_ns(path: &Path, typ: Ns) -> bool {
    let name = match typ {
        Ns::Network => "net",
        Ns::Ipc => "ipc",
        Ns::Uts => "uts",
        _ => return false,
    };
    let (Ok(theirs), Ok(ours)) = (
        std::fs::metadata(path),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) else {
        return false;
    };
    theirs.dev() == ours.dev() && theirs.ino() == ours.ino()
}

#[cfg(test)]
mod tests {
    use super::namespace_of;
    use oci_spec::runtime::LinuxNamespaceType as Ns;

    #[test]
    fn classification() {
        assert_eq!(namespace_of("net.ipv4.ip_forward"), Some(Ns::Network));
        assert_eq!(
            namespace_of("net/ipv4/conf/eth0.100/forwarding"),
            Some(Ns::Network)
        );
        assert_eq!(namespace_of("kernel.shm_rmid_forced"), Some(Ns::Ipc));
        assert_eq!(namespace_of("fs.mqueue.msg_max"), Some(Ns::Ipc));
        assert_eq!(namespace_of("kernel.hostname"), Some(Ns::Uts));
        assert_eq!(namespace_of("kernel.core_pattern"), None);
        assert_eq!(namespace_of("vm.overcommit_ratio"), None);
        assert_eq!(namespace_of("kernel.shmmaxx"), None);
    }
}
