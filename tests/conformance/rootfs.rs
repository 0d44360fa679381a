//! root, mounts, devices, masked/readonly paths, hostname/domainname and sysctl, all read
//! back from inside the container.

use std::fs;
use std::os::unix::fs::symlink;

use berth_tests::inside::{mount_at, mountinfo, MountInfo};
use berth_tests::{ensure, ensure_eq, fail, Error, Runtime};
use serde_json::json;

use crate::common::{pass, run_script, sh_bundle, unsupported};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("root.propagation", rootfs_propagation_private),
        case!("root.propagation", rootfs_propagation_shared),
        case!("root.readonly", root_readonly),
        case!("mounts.order", mounts_applied_in_order),
        case!("mounts.tmpfs", tmpfs_size_and_mode),
        case!("mounts.bind", bind_ro_and_rbind),
        case!("mounts.options", mount_flags_in_mountinfo),
        case!("mounts.atime", atime_options),
        case!("mounts.pseudo-fs", pseudo_filesystems),
        case!(
            "mounts.symlink-destination",
            symlink_destination_stays_in_rootfs
        ),
        case!("devices.default", default_devices),
        case!("devices.default", default_device_links),
        case!("devices.linux", linux_devices_created),
        case!("paths.masked", masked_paths),
        case!("paths.readonly", readonly_paths),
        case!("uts.hostname", hostname),
        case!("uts.domainname", domainname),
        case!("linux.sysctl", sysctl_applied),
    ]
}

fn mounts_inside(
    rt: &Runtime,
    tweak: impl FnOnce(&mut berth_tests::Bundle) -> Result<(), Error>,
) -> Result<Vec<MountInfo>, Error> {
    Ok(mountinfo(&run_script(
        rt,
        "cat /proc/self/mountinfo",
        tweak,
    )?))
}

fn need<'a>(mounts: &'a [MountInfo], point: &str) -> Result<&'a MountInfo, Error> {
    mount_at(mounts, point).ok_or_else(|| {
        let all: Vec<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
        Error(format!("no mount at {point} inside; mounts: {all:?}"))
    })
}

fn rootfs_propagation_private(rt: &Runtime) -> Outcome {
    let m = mounts_inside(rt, |b| {
        b.config["linux"]["rootfsPropagation"] = json!("private");
        Ok(())
    })?;
    let root = need(&m, "/")?;
    ensure!(
        !root.is_shared() && !root.is_slave(),
        "rootfsPropagation private but / is {:?}",
        root.optional
    );
    pass()
}

fn rootfs_propagation_shared(rt: &Runtime) -> Outcome {
    let m = mounts_inside(rt, |b| {
        b.config["linux"]["rootfsPropagation"] = json!("shared");
        Ok(())
    })?;
    let root = need(&m, "/")?;
    if !root.is_shared() && !berth_tests::runtime::is_berth() {
        return unsupported("rootfsPropagation shared does not make / shared");
    }
    ensure!(
        root.is_shared(),
        "rootfsPropagation shared but / is {:?}",
        root.optional
    );
    pass()
}

fn root_readonly(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "touch /newfile 2>/dev/null && echo writable || echo readonly; cat /proc/self/mountinfo",
        |b| {
            b.config["root"]["readonly"] = json!(true);
            Ok(())
        },
    )?;
    ensure!(
        out.starts_with("readonly"),
        "root.readonly but / is writable: {out:?}"
    );
    let m = mountinfo(&out);
    ensure!(need(&m, "/")?.has("ro"), "/ not ro in mountinfo: {out:?}");
    pass()
}

fn mounts_applied_in_order(rt: &Runtime) -> Outcome {
    let m = mounts_inside(rt, |b| {
        let src = b.host_dir("order-src")?;
        fs::write(src.join("from-bind"), "x")?;
        b.push_mount(
            json!({"destination": "/mnt/o", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=1m"]}),
        );
        // A destination inside the previous mount: only works if mounts are made in order.
        b.push_mount(json!({"destination": "/mnt/o/sub", "type": "bind",
                            "source": src.display().to_string(), "options": ["bind"]}));
        b.push_mount(
            json!({"destination": "/mnt/two", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=1m"]}),
        );
        b.push_mount(
            json!({"destination": "/mnt/two", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=2m"]}),
        );
        Ok(())
    })?;
    let o = m.iter().position(|x| x.mount_point == "/mnt/o");
    let sub = m.iter().position(|x| x.mount_point == "/mnt/o/sub");
    match (o, sub) {
        (Some(o), Some(sub)) => ensure!(o < sub, "/mnt/o/sub mounted before /mnt/o"),
        _ => fail!("missing /mnt/o or /mnt/o/sub in {m:?}"),
    }
    let two = need(&m, "/mnt/two")?;
    ensure!(
        two.has("size=2048k"),
        "the later of two mounts on /mnt/two must be on top: {:?}",
        two.super_options
    );
    pass()
}

fn tmpfs_size_and_mode(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "stat -c %a /mnt/t; grep ' /mnt/t ' /proc/self/mountinfo",
        |b| {
            b.push_mount(
                json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                                "options": ["size=3m", "mode=710"]}),
            );
            Ok(())
        },
    )?;
    ensure!(out.starts_with("710\n"), "tmpfs mode: {out:?}");
    let m = mountinfo(&out);
    let t = need(&m, "/mnt/t")?;
    ensure_eq!(t.fstype, "tmpfs", "type of /mnt/t");
    ensure!(t.has("size=3072k"), "tmpfs size: {:?}", t.super_options);
    ensure!(
        t.has("mode=710"),
        "tmpfs mode option: {:?}",
        t.super_options
    );
    pass()
}

fn bind_ro_and_rbind(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "cat /mnt/ro/file /mnt/rb/file; touch /mnt/ro/new 2>/dev/null && echo ro-writable; \
         touch /mnt/rb/new && echo rb-writable; cat /proc/self/mountinfo",
        |b| {
            let src = b.host_dir("bind-src")?;
            fs::write(src.join("file"), "hello\n")?;
            let s = src.display().to_string();
            b.push_mount(
                json!({"destination": "/mnt/ro", "type": "bind", "source": s,
                                "options": ["bind", "ro"]}),
            );
            b.push_mount(
                json!({"destination": "/mnt/rb", "type": "none", "source": s,
                                "options": ["rbind", "rw"]}),
            );
            Ok(())
        },
    )?;
    let mut l = out.lines();
    ensure_eq!(l.next(), Some("hello"), "bind mount content");
    ensure_eq!(l.next(), Some("hello"), "rbind mount content");
    ensure!(!out.contains("ro-writable"), "ro bind mount is writable");
    ensure!(
        out.contains("rb-writable"),
        "rw rbind mount is not writable: {out:?}"
    );
    let m = mountinfo(&out);
    ensure!(
        need(&m, "/mnt/ro")?.has("ro"),
        "/mnt/ro not ro in mountinfo"
    );
    ensure!(
        need(&m, "/mnt/rb")?.has("rw"),
        "/mnt/rb not rw in mountinfo"
    );
    pass()
}

fn mount_flags_in_mountinfo(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "cp /bin/busybox /mnt/f/bb 2>/dev/null || cat /bin/busybox > /mnt/f/bb; chmod 755 /mnt/f/bb; \
         /mnt/f/bb true 2>/dev/null && echo exec-allowed; cat /proc/self/mountinfo",
        |b| {
            b.push_mount(json!({"destination": "/mnt/f", "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "noexec"]}));
            b.push_mount(json!({"destination": "/mnt/r", "type": "tmpfs", "source": "tmpfs",
                                "options": ["ro"]}));
            Ok(())
        },
    )?;
    ensure!(!out.contains("exec-allowed"), "noexec mount allowed exec");
    let m = mountinfo(&out);
    let f = need(&m, "/mnt/f")?;
    for o in ["nosuid", "nodev", "noexec"] {
        ensure!(
            f.options.iter().any(|x| x == o),
            "/mnt/f lacks {o}: {:?}",
            f.options
        );
    }
    ensure!(
        need(&m, "/mnt/r")?.options.iter().any(|x| x == "ro"),
        "/mnt/r not ro"
    );
    pass()
}

fn atime_options(rt: &Runtime) -> Outcome {
    let m = mounts_inside(rt, |b| {
        for (d, o) in [
            ("/mnt/rel", "relatime"),
            ("/mnt/strict", "strictatime"),
            ("/mnt/noa", "noatime"),
        ] {
            b.push_mount(json!({"destination": d, "type": "tmpfs", "source": "tmpfs",
                                "options": [o]}));
        }
        Ok(())
    })?;
    let rel = need(&m, "/mnt/rel")?;
    ensure!(
        rel.options.iter().any(|o| o == "relatime"),
        "relatime: {:?}",
        rel.options
    );
    let strict = need(&m, "/mnt/strict")?;
    ensure!(
        !strict
            .options
            .iter()
            .any(|o| o == "relatime" || o == "noatime"),
        "strictatime: {:?}",
        strict.options
    );
    let noa = need(&m, "/mnt/noa")?;
    ensure!(
        noa.options.iter().any(|o| o == "noatime"),
        "noatime: {:?}",
        noa.options
    );
    pass()
}

fn pseudo_filesystems(rt: &Runtime) -> Outcome {
    let m = mounts_inside(rt, |_| Ok(()))?;
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        ensure_eq!(need(&m, point)?.fstype, fstype, "type of {point}");
    }
    ensure!(need(&m, "/sys")?.has("ro"), "/sys must be ro as configured");
    let cg: Vec<&MountInfo> = m
        .iter()
        .filter(|x| {
            x.mount_point == "/sys/fs/cgroup" || x.mount_point.starts_with("/sys/fs/cgroup/")
        })
        .collect();
    ensure!(
        cg.iter()
            .any(|x| x.fstype == "cgroup" || x.fstype == "cgroup2"),
        "no cgroup filesystem under /sys/fs/cgroup: {cg:?}"
    );
    ensure!(
        cg.iter()
            .filter(|x| x.fstype.starts_with("cgroup"))
            .all(|x| x.has("ro")),
        "cgroup mounts must be ro as configured: {cg:?}"
    );
    // Every mount of the cgroup view (the v1 tmpfs and each hierarchy, or
    // the one cgroup2) carries the configured per-mount options; ro is
    // checked on the cgroup filesystems only (runc leaves the v1 tmpfs rw).
    for x in &cg {
        let opts: &[&str] = if x.fstype.starts_with("cgroup") {
            &["ro", "nosuid", "nodev", "noexec"]
        } else {
            &["nosuid", "nodev", "noexec"]
        };
        for &opt in opts {
            ensure!(
                x.options.iter().any(|o| o == opt),
                "{} lacks {opt}: {x:?}",
                x.mount_point
            );
        }
    }
    let devpts = need(&m, "/dev/pts")?;
    ensure!(
        devpts.has("newinstance") || devpts.has("ptmxmode=666"),
        "devpts options {devpts:?}"
    );
    pass()
}

fn symlink_destination_stays_in_rootfs(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    let outside = b.host_dir("outside")?;
    let outside_s = outside.display().to_string();
    symlink(&outside, b.rootfs().join("escape"))?;
    b.script(&format!(
        "touch /escape/written && echo wrote; grep -c ' {outside_s} ' /proc/self/mountinfo"
    ));
    b.push_mount(
        json!({"destination": "/escape", "type": "tmpfs", "source": "tmpfs",
                        "options": ["size=1m"]}),
    );
    b.save()?;
    let out = rt.run_ok(&b)?;
    ensure!(
        out.starts_with("wrote"),
        "could not write through /escape: {out:?}"
    );
    ensure!(
        !outside.join("written").exists(),
        "a write through the mount destination symlink reached the host directory {outside_s}"
    );
    ensure_eq!(
        out.lines().nth(1),
        Some("1"),
        "the symlink target must be a mount inside the rootfs ({out:?})"
    );
    pass()
}

fn default_devices(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "for d in null zero full random urandom tty ptmx; do \
           p=/dev/$d; [ -L $p ] && p=$(readlink -f $p); stat -c \"$d %F %t:%T\" $p; done; \
         echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; \
         echo x > /dev/full 2>/dev/null || echo full-ok; head -c 8 /dev/urandom | wc -c",
        |_| Ok(()),
    )?;
    for (d, dev) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
        ("ptmx", "5:2"),
    ] {
        let line = out.lines().find(|l| l.starts_with(&format!("{d} ")));
        let Some(line) = line else {
            fail!("no /dev/{d}: {out:?}")
        };
        ensure!(
            line.contains("character special") && line.ends_with(&format!(" {dev}")),
            "/dev/{d}: {line:?}, want char {dev}"
        );
    }
    for want in ["null-ok", "4", "full-ok", "8"] {
        ensure!(
            out.lines().any(|l| l.trim() == want),
            "device check {want} failed: {out:?}"
        );
    }
    pass()
}

fn default_device_links(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "for l in fd stdin stdout stderr ptmx; do echo \"$l $(readlink /dev/$l)\"; done",
        |_| Ok(()),
    )?;
    for (l, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ensure!(
            out.lines().any(|x| x == format!("{l} {target}")),
            "/dev/{l} must link to {target}: {out:?}"
        );
    }
    pass()
}

fn linux_devices_created(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "stat -c '%n %F %t:%T %a %u:%g' /dev/berth-c /dev/berth-b /dev/berth-p",
        |b| {
            b.config["linux"]["devices"] = json!([
                {"path": "/dev/berth-c", "type": "c", "major": 1, "minor": 3,
                 "fileMode": 0o640, "uid": 1000, "gid": 1001},
                {"path": "/dev/berth-b", "type": "b", "major": 7, "minor": 200,
                 "fileMode": 0o600, "uid": 0, "gid": 0},
                {"path": "/dev/berth-p", "type": "p", "fileMode": 0o644}
            ]);
            Ok(())
        },
    )?;
    let l: Vec<&str> = out.lines().collect();
    ensure_eq!(l.len(), 3, "stat output {out:?}");
    ensure_eq!(
        l[0],
        "/dev/berth-c character special file 1:3 640 1000:1001",
        "char device"
    );
    ensure_eq!(
        l[1],
        "/dev/berth-b block special file 7:c8 600 0:0",
        "block device"
    );
    ensure!(
        l[2].starts_with("/dev/berth-p fifo"),
        "fifo device: {}",
        l[2]
    );
    ensure!(l[2].contains(" 644 "), "fifo mode: {}", l[2]);
    pass()
}

fn masked_paths(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "echo \"timer_list:$(wc -c < /proc/timer_list)\"; echo \"secret:$(cat /etc/secret)\"; \
         echo \"dir:$(ls /mnt/hidden | wc -l)\"",
        |b| {
            fs::write(b.rootfs().join("etc/secret"), "s3cr3t")?;
            fs::create_dir_all(b.rootfs().join("mnt/hidden"))?;
            fs::write(b.rootfs().join("mnt/hidden/file"), "x")?;
            if let Some(a) = b.config["linux"]["maskedPaths"].as_array_mut() {
                a.push(json!("/etc/secret"));
                a.push(json!("/mnt/hidden"));
            }
            Ok(())
        },
    )?;
    for want in ["timer_list:0", "secret:", "dir:0"] {
        ensure!(
            out.lines().any(|l| l == want),
            "masked path not masked ({want}): {out:?}"
        );
    }
    pass()
}

fn readonly_paths(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "touch /mnt/rodir/new 2>/dev/null && echo rodir-writable; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable; \
         cat /mnt/rodir/file; grep ' /mnt/rodir ' /proc/self/mountinfo",
        |b| {
            fs::create_dir_all(b.rootfs().join("mnt/rodir"))?;
            fs::write(b.rootfs().join("mnt/rodir/file"), "kept\n")?;
            if let Some(a) = b.config["linux"]["readonlyPaths"].as_array_mut() {
                a.push(json!("/mnt/rodir"));
            }
            Ok(())
        },
    )?;
    ensure!(
        !out.contains("rodir-writable"),
        "readonly path is writable: {out:?}"
    );
    ensure!(
        !out.contains("procsys-writable"),
        "/proc/sys is writable: {out:?}"
    );
    ensure!(
        out.contains("kept"),
        "readonly path lost its content: {out:?}"
    );
    let m = mountinfo(&out);
    ensure!(
        need(&m, "/mnt/rodir")?.has("ro"),
        "/mnt/rodir not ro: {out:?}"
    );
    pass()
}

fn hostname(rt: &Runtime) -> Outcome {
    let out = run_script(rt, "hostname", |b| {
        b.config["hostname"] = json!("berth-host-x");
        Ok(())
    })?;
    ensure_eq!(out.trim(), "berth-host-x", "hostname inside");
    pass()
}

fn domainname(rt: &Runtime) -> Outcome {
    let out = run_script(rt, "cat /proc/sys/kernel/domainname", |b| {
        b.config["domainname"] = json!("berth.example");
        Ok(())
    })?;
    if out.trim() == "(none)" && !berth_tests::runtime::is_berth() {
        return unsupported("domainname ignored");
    }
    ensure_eq!(out.trim(), "berth.example", "domainname inside");
    pass()
}

fn sysctl_applied(rt: &Runtime) -> Outcome {
    let out = run_script(
        rt,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
        |b| {
            b.config["linux"]["sysctl"] = json!({
                "net.ipv4.ip_forward": "1",
                "kernel.shm_rmid_forced": "1"
            });
            Ok(())
        },
    )?;
    let l: Vec<&str> = out.lines().collect();
    ensure_eq!(l, vec!["1", "1"], "sysctl values inside");
    pass()
}
