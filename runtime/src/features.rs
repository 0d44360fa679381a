//! `berth features`: the runtime-spec features document (features.md),
//! which engines read to learn what the runtime implements. Every value is
//! true only where berth implements it.

use serde_json::{json, Value};

use crate::hooks;
use crate::state::OCI_VERSION;

/// The oldest spec version whose configs berth runs.
const OCI_VERSION_MIN: &str = "1.0.0";

/// Mount options with meaning to berth (rootfs/mount_options.rs): flags
/// and propagation. Anything else is passed to the filesystem as data.
pub const MOUNT_OPTIONS: [&str; 36] = [
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

pub fn document() -> Value {
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": [
            hooks::PRESTART,
            hooks::CREATE_RUNTIME,
            hooks::CREATE_CONTAINER,
            hooks::START_CONTAINER,
            hooks::POSTSTART,
            hooks::POSTSTOP,
        ],
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                // Through libcgroups' systemd driver, on cgroup v2 hosts.
                "systemd": true,
                "systemdUser": false,
                "rdma": true
            },
            "seccomp": seccomp(),
            // lsm.rs applies both labels (or refuses the container).
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
            "netDevices": {"enabled": false}
        },
        "annotations": {
            "org.berth.version": env!("CARGO_PKG_VERSION")
        }
    })
}

fn mount_options() -> Vec<&'static str> {
    let mut v = MOUNT_OPTIONS.to_vec();
    v.sort_unstable();
    v
}

fn seccomp() -> Value {
    crate::seccomp::features()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_spec_shape() {
        let doc = document();
        let typed: oci_spec::runtime::Features =
            serde_json::from_value(doc.clone()).expect("features.md shape");
        assert_eq!(typed.oci_version_max(), OCI_VERSION);
        let caps = doc["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(caps.iter().all(|c| c.as_str().unwrap().starts_with("CAP_")));
    }

    /// Is `opt` one berth turns into mount flags or propagation (and not
    /// filesystem data)?
    fn known(opt: &str) -> bool {
        let parsed = crate::rootfs::mount_options::parse(&[opt.to_string()]);
        parsed.data.is_empty()
    }

    #[test]
    fn mount_options_are_all_known() {
        for o in MOUNT_OPTIONS {
            assert!(known(o), "{o} is passed to the filesystem as data");
        }
        assert!(!known("size=1m"));
    }
}
