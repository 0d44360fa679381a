//! Symlinks in the rootfs that try to steer the runtime's mounts, devices and procfs
//! writes onto the host: mount destinations (CVE-2021-30465), the /dev/null used for
//! masking (CVE-2025-31133), /dev, /dev/pts and /dev/console (CVE-2025-52565 class), and
//! /proc itself (CVE-2019-19921, CVE-2023-27561, CVE-2025-52881).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use berth_tests::tempdir::mounts_under;
use berth_tests::{ensure, ensure_eq, Bundle, Error, Runtime};
use serde_json::json;

use crate::common::{check_berth_error, pass, sh_bundle};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("CVE-2021-30465", mount_destination_through_symlink_to_root),
        case!("CVE-2021-30465", mount_destination_through_dotdot_symlink),
        case!("CVE-2025-52565", dev_symlink_to_host),
        case!("CVE-2025-52565", dev_pts_and_console_symlinks_to_host),
        case!("CVE-2025-31133", masking_source_dev_null_regular_file),
        case!("CVE-2025-31133", masking_source_dev_null_symlink),
        case!("CVE-2019-19921", proc_destination_symlink_refused),
        case!("CVE-2019-19921", sys_destination_symlink_refused),
        case!(
            "CVE-2025-52881",
            sysctl_not_redirected_by_bind_over_proc_sys
        ),
        case!("CVE-2025-52881", oom_score_adj_not_redirected),
    ]
}

/// `dir` is still empty and nothing is mounted at or below it.
fn untouched(dir: &Path) -> Result<(), Error> {
    let entries: Vec<_> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(
        entries.is_empty(),
        "the runtime created {entries:?} in the host directory {}",
        dir.display()
    );
    let m = mounts_under(dir);
    ensure!(m.is_empty(), "host mounts appeared: {m:?}");
    Ok(())
}

/// A bind of a bundle file onto `/mnt/up/<host dir>/landed`, where the rootfs has
/// `/mnt/up -> /`: a runtime following the symlink on the host lands in the host dir.
fn mount_destination_through_symlink_to_root(rt: &Runtime) -> Outcome {
    through_symlink(rt, "/")
}

fn mount_destination_through_dotdot_symlink(rt: &Runtime) -> Outcome {
    through_symlink(rt, "../../../../../../../../../../..")
}

fn through_symlink(rt: &Runtime, link: &str) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    let outside = b.host_dir("outside")?;
    fs::write(b.dir.join("payload"), "payload\n")?;
    fs::create_dir_all(b.rootfs().join("mnt"))?;
    symlink(link, b.rootfs().join("mnt/up"))?;
    let rel = outside
        .strip_prefix("/")
        .unwrap_or(&outside)
        .display()
        .to_string();
    let file_dest = format!("/mnt/up/{rel}/landed");
    let dir_dest = format!("/mnt/up/{rel}/tmp");
    b.push_mount(json!({"destination": file_dest, "type": "bind",
        "source": b.dir.join("payload").display().to_string(), "options": ["bind", "ro"]}));
    b.push_mount(
        json!({"destination": dir_dest, "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]}),
    );
    b.script(&format!(
        "cat /{rel}/landed; grep -c ' /{rel}/tmp ' /proc/self/mountinfo"
    ));
    b.save()?;
    let out = rt.run_ok(&b)?;
    untouched(&outside)?;
    ensure_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["payload", "1"],
        "the mounts must land inside the rootfs"
    );
    pass()
}

/// The rootfs's /dev is a symlink to a host directory; the default config mounts tmpfs,
/// devpts, shm and mqueue under /dev and creates the default devices there.
fn dev_symlink_to_host(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    let host = b.host_dir("host-dev")?;
    fs::remove_dir(b.rootfs().join("dev"))?;
    symlink(&host, b.rootfs().join("dev"))?;
    b.script("ls /dev/null /dev/pts/ptmx >/dev/null && echo ok");
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    untouched(&host)?;
    if out.success() {
        ensure_eq!(out.stdout.trim(), "ok", "devices inside the rootfs");
    }
    pass()
}

/// No tmpfs on /dev: the rootfs's own /dev, whose pts, console and ptmx are symlinks to a
/// host directory and a host file. devpts is mounted, devices and links are created, and
/// with a terminal the pty is bound on /dev/console.
fn dev_pts_and_console_symlinks_to_host(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    b.drop_mount("/dev");
    let host = b.host_dir("host-pts")?;
    let host_file = b.dir.join("host-console");
    fs::write(&host_file, "host")?;
    let dev = b.rootfs().join("dev");
    symlink(&host, dev.join("pts"))?;
    symlink(&host_file, dev.join("console"))?;
    symlink(&host_file, dev.join("ptmx"))?;
    b.script("ls /dev/pts/ >/dev/null; echo ok");
    // Without and with a terminal: with one, the pty is bound onto /dev/console.
    for terminal in [false, true] {
        b.config["process"]["terminal"] = json!(terminal);
        b.save()?;
        let id = rt.new_id();
        let _ = rt.run(&id, &b)?;
    }
    untouched(&host)?;
    ensure_eq!(
        fs::read_to_string(&host_file)?,
        "host",
        "the host file behind /dev/console changed"
    );
    let m = mounts_under(&host_file);
    ensure!(m.is_empty(), "mounted over the host file: {m:?}");
    pass()
}

/// /dev bound from a bundle directory whose `null` is not the null device: a runtime that
/// binds it over the masked paths shows its content there.
fn fake_dev_null(rt: &Runtime, make: impl FnOnce(&Path) -> std::io::Result<()>) -> Outcome {
    let mut b = sh_bundle(rt, "cat /proc/timer_list /proc/kcore /proc/keys; echo end")?;
    let fake = b.host_dir("fakedev")?;
    make(&fake.join("null"))?;
    b.drop_mount("/dev");
    b.drop_mount("/dev/pts");
    b.drop_mount("/dev/shm");
    b.drop_mount("/dev/mqueue");
    b.push_mount(json!({"destination": "/dev", "type": "bind",
        "source": fake.display().to_string(), "options": ["rbind", "rw"]}));
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    if out.success() {
        ensure_eq!(
            out.stdout.trim(),
            "end",
            "masked paths show what the rootfs's /dev/null points at"
        );
    }
    pass()
}

fn masking_source_dev_null_regular_file(rt: &Runtime) -> Outcome {
    fake_dev_null(rt, |p| fs::write(p, "LEAKED-FROM-FAKE-DEV-NULL\n"))
}

fn masking_source_dev_null_symlink(rt: &Runtime) -> Outcome {
    // Harmless but recognisable: the kernel's name.
    fake_dev_null(rt, |p| symlink("/proc/sys/kernel/ostype", p))
}

fn destination_symlink_refused(rt: &Runtime, dir: &str, mount_index: usize) -> Outcome {
    let b = sh_bundle(rt, "true")?;
    fs::create_dir_all(b.rootfs().join("fake"))?;
    fs::remove_dir(b.rootfs().join(dir))?;
    symlink("/fake", b.rootfs().join(dir))?;
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?.failed()?;
    check_berth_error(&out.stderr, &format!("mounts[{mount_index}].destination"))?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn mount_index(b: &Bundle, dest: &str) -> usize {
    b.config["mounts"]
        .as_array()
        .and_then(|a| a.iter().position(|m| m["destination"] == dest))
        .unwrap_or(usize::MAX)
}

fn proc_destination_symlink_refused(rt: &Runtime) -> Outcome {
    let i = mount_index(&sh_bundle(rt, "")?, "/proc");
    destination_symlink_refused(rt, "proc", i)
}

fn sys_destination_symlink_refused(rt: &Runtime) -> Outcome {
    let i = mount_index(&sh_bundle(rt, "")?, "/sys");
    destination_symlink_refused(rt, "sys", i)
}

/// A bind of a bundle directory over /proc/sys/net/ipv4 and a sysctl below it: the write
/// must reach the kernel (or the container be refused), never the bound directory.
fn sysctl_not_redirected_by_bind_over_proc_sys(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    let fake = b.host_dir("fake-ipv4")?;
    fs::write(fake.join("ip_forward"), "0\n")?;
    b.push_mount(json!({"destination": "/proc/sys/net/ipv4", "type": "bind",
        "source": fake.display().to_string(), "options": ["rbind", "rw"]}));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.save()?;
    let id = rt.new_id();
    let _ = rt.run(&id, &b)?;
    ensure_eq!(
        fs::read_to_string(fake.join("ip_forward"))?,
        "0\n",
        "the sysctl write went to the directory bound over /proc/sys"
    );
    pass()
}

/// A bind of a bundle file over the init's /proc/1/oom_score_adj (the container's procfs
/// is mounted by then): the runtime's write must not land in it.
fn oom_score_adj_not_redirected(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "cat /proc/self/oom_score_adj")?;
    let fake = b.dir.join("fake-oom");
    fs::write(&fake, "0\n")?;
    b.push_mount(
        json!({"destination": "/proc/1/oom_score_adj", "type": "bind",
        "source": fake.display().to_string(), "options": ["bind", "rw"]}),
    );
    b.config["process"]["oomScoreAdj"] = json!(500);
    b.save()?;
    let id = rt.new_id();
    let _ = rt.run(&id, &b)?;
    ensure_eq!(
        fs::read_to_string(&fake)?,
        "0\n",
        "the oom_score_adj write went to the file bound over /proc/1/oom_score_adj"
    );
    pass()
}
