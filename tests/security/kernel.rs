//! What an unprivileged default container may not write: /proc/sys, /proc/sysrq-trigger,
//! /sys (readonlyPaths, read-only sysfs, dropped capabilities), and the host's session
//! keyring (a new session keyring unless --no-new-keyring).

use berth_tests::{ensure, ensure_eq, Runtime};

use serde_json::json;

use crate::common::{check_berth_error, pass, sh_bundle, unsupported};
use crate::{case, probe, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("kernel-writes", proc_sys_sysrq_and_sys_not_writable),
        case!("kernel-keyring", own_session_keyring),
        case!("kernel-writes", global_sysctl_refused),
        case!("kernel-writes", net_sysctl_in_host_netns_refused),
    ]
}

/// The host's current value of a sysctl: a runtime that wrongly accepts the config writes
/// back what is already there.
fn host_value(key: &str) -> Result<String, berth_tests::Error> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

fn sysctl_refused(rt: &Runtime, key: &str, host_netns: bool) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    if host_netns {
        b.drop_namespace("network");
    }
    b.config["linux"]["sysctl"] = json!({ key: host_value(key)? });
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?.failed()?;
    check_berth_error(&out.stderr, &format!("linux.sysctl.{key}"))?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

/// A sysctl no namespace isolates would change the host.
fn global_sysctl_refused(rt: &Runtime) -> Outcome {
    sysctl_refused(rt, "vm.overcommit_ratio", false)
}

/// A network sysctl without a network namespace would change the host's.
fn net_sysctl_in_host_netns_refused(rt: &Runtime) -> Outcome {
    sysctl_refused(rt, "net.ipv4.ip_forward", true)
}

/// Every probe only opens for appending, never writes a byte, so a runtime that fails the
/// test changes nothing on the host. Each line: `<path> OPEN-OK|OPEN-DENIED`.
const WRITES: &str = r#"
for f in /proc/sys/kernel/core_pattern /proc/sys/vm/overcommit_ratio /proc/sysrq-trigger \
         /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/uevent_helper \
         /proc/sys/kernel/modprobe; do
  [ -e $f ] || { echo "$f ABSENT"; continue; }
  ( : >> $f ) 2>/dev/null && echo "$f OPEN-OK" || echo "$f OPEN-DENIED"
done
"#;

fn proc_sys_sysrq_and_sys_not_writable(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, WRITES)?;
    let out = rt.run_ok(&b)?;
    let probed = out.lines().filter(|l| !l.ends_with("ABSENT")).count();
    ensure!(probed >= 3, "too few kernel files to probe: {out:?}");
    for l in out.lines() {
        ensure!(!l.ends_with("OPEN-OK"), "writable from the container: {l}");
    }
    pass()
}

fn keyring_id() -> i64 {
    // SAFETY: KEYCTL_GET_KEYRING_ID(KEY_SPEC_SESSION_KEYRING, create=0) only reads.
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i64, 0) as i64 }
}

fn session_inside(rt: &Runtime, extra: &[&str]) -> Result<String, berth_tests::Error> {
    let b = sh_bundle(rt, "/bin/probe keyring")?;
    probe::install(&b)?;
    let id = rt.new_id();
    let out = rt.run_with(&id, &b, extra)?.ok()?;
    Ok(out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("session "))
        .unwrap_or_default()
        .to_owned())
}

/// By default the container's session keyring is a new one, not the caller's; with
/// --no-new-keyring it is the caller's (which proves the comparison can tell them apart).
fn own_session_keyring(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "true")?;
    if !probe::install(&b)? {
        return unsupported(format!("no keyctl helper: {}", probe::missing_reason()));
    }
    let host = keyring_id();
    if host < 0 {
        return unsupported("this host has no keyrings");
    }
    let own = session_inside(rt, &[])?;
    ensure!(
        own.parse::<i64>().is_ok_and(|k| k > 0),
        "no session keyring inside: {own:?}"
    );
    ensure!(
        own != host.to_string(),
        "the container shares the host's session keyring {host}"
    );
    let shared = session_inside(rt, &["--no-new-keyring"])?;
    ensure_eq!(
        shared,
        host.to_string(),
        "with --no-new-keyring the container keeps the caller's session keyring"
    );
    pass()
}
