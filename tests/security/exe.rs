//! CVE-2019-5736: a container process reaching the runtime binary through
//! /proc/<pid>/exe of a runtime process that entered its pid namespace.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use berth_tests::runtime::wait_file;
use berth_tests::{ensure, Runtime};
use serde_json::json;

use crate::common::{out_dir, pass, sh_bundle, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("CVE-2019-5736", runtime_exe_unreachable_from_container),
        case!("CVE-2019-5736", runtime_exe_unreachable_from_userns_root),
    ]
}

/// Every process of the pid namespace that is not the container's own busybox: what its
/// exe link says, and whether it can be opened for reading or (without writing a byte)
/// for appending.
const PROBE: &str = r#"
while [ ! -e /out/go ]; do sleep 0.05; done
for p in /proc/[0-9]*; do
  n=${p#/proc/}
  l=$(readlink $p/exe 2>/dev/null)
  [ "$l" = /bin/busybox ] && continue
  [ -e $p/status ] || continue
  head -c 1 $p/exe >/dev/null 2>&1 && r=READ-OK || r=READ-DENIED
  ( : >> $p/exe ) 2>/dev/null && w=WRITE-OK || w=WRITE-DENIED
  echo "foreign $n link=[$l] $r $w"
done > /out/result.tmp
mv /out/result.tmp /out/result
"#;

/// Every capability name up to CAP_CHECKPOINT_RESTORE (Linux 5.9).
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Container A (default capabilities) waits; container B joins A's pid namespace and
/// stays `created`, so B's init (runtime code, before its execve) is visible to A for as
/// long as the test likes. A then goes through every foreign process's /proc/<pid>/exe.
fn runtime_exe_unreachable_from_container(rt: &Runtime) -> Outcome {
    exe_scenario(rt, false)
}

/// The same from a user-namespaced A holding every capability (CAP_SYS_PTRACE included)
/// in its namespace, B joining A's user and pid namespaces: B's init then has A's uid and
/// no capability A lacks, so only its being non-dumpable stands between A and the runtime
/// binary (ptrace access to a non-dumpable process needs CAP_SYS_PTRACE in the namespace
/// that owns its memory: the host's).
fn runtime_exe_unreachable_from_userns_root(rt: &Runtime) -> Outcome {
    exe_scenario(rt, true)
}

fn exe_scenario(rt: &Runtime, userns: bool) -> Outcome {
    let bin_before = fs::metadata(&rt.bin)?;
    let mut a = sh_bundle(rt, PROBE)?;
    let out = out_dir(&mut a)?;
    if userns {
        a.push_namespace(json!({"type": "user"}));
        // Identity-mapped: B's init keeps its uid when it joins, so the kernel does not
        // make it non-dumpable on a credential change; the runtime has to.
        let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        a.config["linux"]["uidMappings"] = map.clone();
        a.config["linux"]["gidMappings"] = map;
        a.drop_mount("/sys/fs/cgroup");
        let all = json!(ALL_CAPS.as_slice());
        a.config["process"]["capabilities"] = json!({
            "bounding": all, "effective": all, "permitted": all,
        });
        // Root of A's namespace is an unmapped user on the host side of /out and cannot
        // create the mount point in the host-owned rootfs.
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777))?;
        fs::create_dir_all(a.rootfs().join("out"))?;
        a.save()?;
    }
    let a_id = rt.start_new(&a)?;
    let a_pid = rt.state(&a_id)?["pid"].as_i64().unwrap_or(0);
    ensure!(a_pid > 0, "no pid for container {a_id}");

    let mut b = sh_bundle(rt, "true")?;
    b.drop_namespace("pid");
    b.push_namespace(json!({"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}));
    if userns {
        b.drop_namespace("user");
        b.push_namespace(json!({"type": "user", "path": format!("/proc/{a_pid}/ns/user")}));
        // runc wants the mappings of a joined user namespace spelled out too.
        b.config["linux"]["uidMappings"] = a.config["linux"]["uidMappings"].clone();
        b.config["linux"]["gidMappings"] = a.config["linux"]["gidMappings"].clone();
        b.drop_mount("/sys/fs/cgroup");
    }
    b.save()?;
    let b_id = rt.new_id();
    rt.create(&b_id, &b)?.ok()?;

    fs::write(out.join("go"), "")?;
    ensure!(
        wait_file(&out.join("result"), SHORT + Duration::from_secs(5)),
        "container A never reported"
    );
    let result = fs::read_to_string(out.join("result"))?;
    let _ = rt.delete_force(&b_id);
    let foreign: Vec<&str> = result
        .lines()
        .filter(|l| l.starts_with("foreign"))
        .collect();
    ensure!(
        !foreign.is_empty(),
        "container A did not see B's init in its pid namespace: {result:?}"
    );
    for l in &foreign {
        ensure!(
            l.contains("READ-DENIED") && l.contains("WRITE-DENIED"),
            "a runtime process's exe is reachable from the container: {l}"
        );
        ensure!(
            l.contains("link=[]") || !l.contains(&*rt.bin.to_string_lossy()),
            "the container can see the runtime binary's path: {l}"
        );
    }
    let bin_after = fs::metadata(&rt.bin)?;
    ensure!(
        bin_before.mtime() == bin_after.mtime() && bin_before.size() == bin_after.size(),
        "the runtime binary changed"
    );
    pass()
}
