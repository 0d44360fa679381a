//! linux.namespaces: each kind is new (checked by /proc/self/ns inode and by what it
//! isolates), user/time namespaces carry their mappings/offsets, and `path` joins.

use std::fs;

use berth_tests::inside::mountinfo;
use berth_tests::{ensure, ensure_eq, Error, Runtime};
use serde_json::json;

use crate::common::{pass, run_script, sh_bundle, unsupported, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("namespace.pid", pid_namespace),
        case!("namespace.network", network_namespace),
        case!("namespace.mount", mount_namespace),
        case!("namespace.ipc", ipc_namespace),
        case!("namespace.uts", uts_namespace),
        case!("namespace.cgroup", cgroup_namespace),
        case!("namespace.user", user_namespace),
        case!("namespace.time", time_namespace),
        case!("namespace.absent", absent_namespace_is_shared),
        case!("namespace.path", join_existing_namespaces),
    ]
}

fn host_ns(kind: &str) -> Result<String, Error> {
    Ok(fs::read_link(format!("/proc/self/ns/{kind}"))?
        .display()
        .to_string())
}

/// Runs `extra` script after printing the ns link of `kind`, returns (link, rest).
fn ns_and(rt: &Runtime, kind: &str, extra: &str) -> Result<(String, String), Error> {
    let out = run_script(
        rt,
        &format!("readlink /proc/self/ns/{kind}; {extra}"),
        |b| {
            if kind == "cgroup" {
                b.push_namespace(json!({"type": "cgroup"}));
            }
            Ok(())
        },
    )?;
    let (first, rest) = out.split_once('\n').unwrap_or((&out, ""));
    Ok((first.trim().to_owned(), rest.to_owned()))
}

fn differs(_rt: &Runtime, kind: &str, inner: &str) -> Result<(), Error> {
    let host = host_ns(kind)?;
    ensure!(
        !inner.is_empty() && inner != host,
        "{kind} namespace is the host's ({host}), expected a new one (inside: {inner:?})"
    );
    Ok(())
}

fn pid_namespace(rt: &Runtime) -> Outcome {
    let (ns, rest) = ns_and(
        rt,
        "pid_for_children",
        "echo $$; ls /proc | grep -c '^[0-9]'",
    )?;
    differs(rt, "pid_for_children", &ns)?;
    let mut l = rest.lines();
    ensure_eq!(
        l.next().unwrap_or(""),
        "1",
        "the container's process is pid 1"
    );
    let n: u32 = l.next().unwrap_or("0").trim().parse().unwrap_or(0);
    ensure!(n <= 3, "container sees {n} processes in /proc");
    pass()
}

fn network_namespace(rt: &Runtime) -> Outcome {
    let (ns, rest) = ns_and(rt, "net", "ls /sys/class/net")?;
    differs(rt, "net", &ns)?;
    let ifaces: Vec<&str> = rest.split_whitespace().collect();
    ensure_eq!(ifaces, vec!["lo"], "interfaces in a new network namespace");
    pass()
}

fn mount_namespace(rt: &Runtime) -> Outcome {
    let (ns, rest) = ns_and(rt, "mnt", "cat /proc/self/mountinfo")?;
    differs(rt, "mnt", &ns)?;
    let inside: Vec<String> = mountinfo(&rest)
        .into_iter()
        .map(|m| m.mount_point)
        .collect();
    ensure!(
        inside.iter().any(|m| m == "/proc"),
        "no /proc mount inside: {inside:?}"
    );
    // Host mount points outside the standard pseudo filesystems must not show through.
    let host = mountinfo(&fs::read_to_string("/proc/self/mountinfo")?);
    let standard = ["/proc", "/sys", "/dev", "/run", "/tmp"];
    for m in host.iter().map(|m| &m.mount_point) {
        let is_std = m == "/"
            || standard
                .iter()
                .any(|s| m == s || m.starts_with(&format!("{s}/")));
        ensure!(
            is_std || !inside.contains(m),
            "host mount {m} visible in the container's mount namespace"
        );
    }
    pass()
}

fn ipc_namespace(rt: &Runtime) -> Outcome {
    let (ns, _) = ns_and(rt, "ipc", "true")?;
    differs(rt, "ipc", &ns)?;
    pass()
}

fn uts_namespace(rt: &Runtime) -> Outcome {
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname")?;
    let (ns, rest) = ns_and(rt, "uts", "hostname")?;
    differs(rt, "uts", &ns)?;
    ensure_eq!(rest.trim(), "berth-test", "hostname inside");
    ensure_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname")?,
        host_name,
        "host hostname changed"
    );
    pass()
}

fn cgroup_namespace(rt: &Runtime) -> Outcome {
    let (ns, rest) = ns_and(rt, "cgroup", "cat /proc/self/cgroup")?;
    differs(rt, "cgroup", &ns)?;
    // Inside its own cgroup namespace the container's cgroup is the root of every hierarchy.
    for l in rest.lines().filter(|l| !l.is_empty()) {
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        ensure!(path == "/", "cgroup path inside a cgroup namespace: {l:?}");
    }
    pass()
}

fn user_namespace(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(
        rt,
        "readlink /proc/self/ns/user; cat /proc/self/uid_map /proc/self/gid_map; id -u; grep ^Uid /proc/self/status",
    )?;
    b.push_namespace(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    // A cgroup v1 hierarchy cannot be mounted from inside a user namespace.
    b.drop_mount("/sys/fs/cgroup");
    b.save()?;
    let out = rt.run_ok(&b)?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() >= 5, "unexpected output: {out:?}");
    differs(rt, "user", lines[0])?;
    for (i, what) in [(1, "uid_map"), (2, "gid_map")] {
        let f: Vec<&str> = lines[i].split_whitespace().collect();
        ensure_eq!(f, vec!["0", "100000", "65536"], "{what} inside");
    }
    ensure_eq!(lines[3], "0", "uid inside the user namespace");
    pass()
}

fn time_namespace(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(
        rt,
        "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime",
    )?;
    b.push_namespace(json!({"type": "time"}));
    let year = 365 * 86400;
    b.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": year, "nanosecs": 0},
        "boottime": {"secs": 2 * year, "nanosecs": 0}
    });
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    if !out.success() && !berth_tests::runtime::is_berth() {
        return unsupported(format!(
            "time namespace refused: {}",
            out.stderr.lines().last().unwrap_or("")
        ));
    }
    let out = out.ok()?;
    let mut mono = None;
    let mut boot = None;
    let mut uptime = 0.0f64;
    for l in out.stdout.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["monotonic", s, _] => mono = s.parse::<i64>().ok(),
            ["boottime", s, _] => boot = s.parse::<i64>().ok(),
            [u] => uptime = u.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    ensure_eq!(mono, Some(year), "monotonic offset in timens_offsets");
    ensure_eq!(boot, Some(2 * year), "boottime offset in timens_offsets");
    ensure!(
        uptime >= (2 * year) as f64,
        "uptime {uptime} does not include the boottime offset"
    );
    pass()
}

fn absent_namespace_is_shared(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc",
        |b| {
            b.drop_namespace("uts").drop_namespace("ipc");
            b.config.as_object_mut().map(|o| o.remove("hostname"));
            Ok(())
        },
    )?;
    let l: Vec<&str> = out.lines().collect();
    ensure_eq!(l.len(), 2, "output {out:?}");
    ensure_eq!(l[0], host_ns("uts")?, "uts without a uts namespace entry");
    ensure_eq!(l[1], host_ns("ipc")?, "ipc without an ipc namespace entry");
    pass()
}

fn join_existing_namespaces(rt: &Runtime) -> Outcome {
    let mut a = sh_bundle(rt, "exec sleep 1000")?;
    a.config["hostname"] = json!("berth-joined");
    a.save()?;
    let ida = rt.start_new(&a)?;
    rt.wait_status(&ida, "running", SHORT)?;
    let pid = rt.state(&ida)?["pid"].as_i64().unwrap_or(0);
    let want_net = fs::read_link(format!("/proc/{pid}/ns/net"))?
        .display()
        .to_string();
    let want_uts = fs::read_link(format!("/proc/{pid}/ns/uts"))?
        .display()
        .to_string();
    let mut b = sh_bundle(
        rt,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname",
    )?;
    b.drop_namespace("network").drop_namespace("uts");
    b.push_namespace(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
    b.push_namespace(json!({"type": "uts", "path": format!("/proc/{pid}/ns/uts")}));
    b.config.as_object_mut().map(|o| o.remove("hostname"));
    b.save()?;
    let out = rt.run_ok(&b)?;
    let l: Vec<&str> = out.lines().collect();
    ensure!(l.len() >= 3, "output {out:?}");
    ensure_eq!(l[0], want_net, "net namespace joined by path");
    ensure_eq!(l[1], want_uts, "uts namespace joined by path");
    ensure_eq!(
        l[2],
        "berth-joined",
        "hostname seen through the joined uts namespace"
    );
    rt.delete_force(&ida)?.ok()?;
    pass()
}
