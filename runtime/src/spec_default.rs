//! `berth spec`: the starting config.json runc writes (`runc spec`), and
//! its rootless variant: a user namespace mapping root to the caller, no
//! network namespace, /sys bound from the host, no uid=/gid= mount options
//! and no cgroup resources.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::state::OCI_VERSION;

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// runc's example spec, with berth's spec version and hostname.
pub fn example() -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    // On a cgroup v1 host a private cgroup namespace hides nothing the
    // read-only /sys/fs/cgroup mount does not; runc adds it on v2 only.
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Turn `spec` into one an unprivileged user can run, as `runc spec
/// --rootless` does: root in the container is `uid`/`gid` outside.
pub fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        // A network namespace would have no way out; the user namespace is
        // appended last, as runc does.
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(o) = linux.as_object_mut() {
        o.remove("resources");
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                // sysfs cannot be mounted without owning the network
                // namespace.
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                continue;
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| {
                    o.as_str()
                        .is_some_and(|o| !o.starts_with("uid=") && !o.starts_with("gid="))
                });
            }
        }
    }
}

/// Write `<bundle>/config.json`; an existing one is never replaced.
pub fn write(bundle: &Path, spec: &Value) -> Result<PathBuf> {
    let path = bundle.join("config.json");
    let mut text = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    serde::Serialize::serialize(spec, &mut ser).map_err(|e| Error::Other(e.to_string()))?;
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Other(format!(
                "{} exists: remove it first",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io("create", &path, e)),
    };
    f.write_all(&text)
        .map_err(|e| Error::io("write", &path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(v: &Value) {
        let raw = serde_json::to_vec(v).unwrap();
        crate::config::parse(&raw).unwrap();
    }

    #[test]
    fn example_is_a_valid_config() {
        let v = example();
        parses(&v);
        assert_eq!(v["process"]["terminal"], true);
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
    }

    #[test]
    fn rootless_maps_the_caller_and_drops_the_network() {
        let mut v = example();
        to_rootless(&mut v, 1000, 1001);
        parses(&v);
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(!ns.contains(&"network"));
        assert_eq!(ns.last(), Some(&"user"));
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(v["linux"].get("resources").is_none());
        let text = v["mounts"].to_string();
        assert!(!text.contains("gid=5"), "{text}");
        let sys = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["source"], "/sys");
        assert_eq!(sys["options"][0], "rbind");
    }
}
