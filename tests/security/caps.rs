//! Capabilities exactly as configured (CVE-2022-29162: no inheritable capability the config
//! did not ask for), unknown names refused, noNewPrivileges, and LSM labels that cannot be
//! applied refused rather than skipped.

use std::path::Path;
use std::process::Command;

use berth_tests::inside::status_fields;
use berth_tests::{ensure, ensure_eq, reaper, Bundle, Error, Runtime};
use serde_json::json;

use crate::common::{check_berth_error, pass, sh_bundle, unsupported};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("capabilities", caps_root_sets_exact),
        case!("capabilities", caps_user_sets_exact),
        case!("capabilities", caps_unknown_name_refused),
        case!("capabilities", no_new_privileges),
        case!("CVE-2022-29162", inheritable_not_inherited_from_caller),
        case!("CVE-2022-29162", inheritable_cleared_without_capabilities),
        case!("CVE-2022-29162", exec_cap_adds_no_inheritable),
        case!("lsm", apparmor_profile_without_apparmor_refused),
        case!("lsm", selinux_label_without_selinux_refused),
        case!("lsm", mount_label_without_selinux_refused),
    ]
}

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;

fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | 1 << c))
}

fn cap_status(
    rt: &Runtime,
    b: &mut Bundle,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    b.script("grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    b.save()?;
    Ok(status_fields(&rt.run_ok(b)?))
}

fn expect_sets(
    got: &std::collections::BTreeMap<String, String>,
    want: &[(&str, &[u32])],
) -> Result<(), Error> {
    for (field, caps) in want {
        let want = mask(caps);
        ensure_eq!(
            got.get(*field).map(String::as_str),
            Some(want.as_str()),
            "{field} (inside: {got:?})"
        );
    }
    Ok(())
}

/// Root: execve recomputes permitted and effective from the bounding set, so those three
/// are configured alike (as runc spec does) and inheritable/ambient stay empty.
fn caps_root_sets_exact(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    let set = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set,
    });
    let got = cap_status(rt, &mut b)?;
    let both: &[u32] = &[CAP_CHOWN, CAP_KILL];
    expect_sets(
        &got,
        &[
            ("CapBnd", both),
            ("CapPrm", both),
            ("CapEff", both),
            ("CapInh", &[]),
            ("CapAmb", &[]),
        ],
    )?;
    pass()
}

/// A non-root user keeps across execve exactly its ambient set (as permitted and
/// effective), its inheritable and bounding sets: all five are visible and distinct.
fn caps_user_sets_exact(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_NET_RAW"],
    });
    let got = cap_status(rt, &mut b)?;
    expect_sets(
        &got,
        &[
            (
                "CapBnd",
                &[CAP_CHOWN, CAP_KILL, CAP_NET_RAW, CAP_NET_BIND_SERVICE],
            ),
            ("CapInh", &[CAP_KILL, CAP_NET_RAW]),
            ("CapAmb", &[CAP_NET_RAW]),
            ("CapPrm", &[CAP_NET_RAW]),
            ("CapEff", &[CAP_NET_RAW]),
        ],
    )?;
    pass()
}

fn caps_unknown_name_refused(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN", "CAP_FOO"]);
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    if !berth_tests::runtime::is_berth() && out.success() {
        return unsupported("the runtime ignores unknown capability names (runc warns)");
    }
    let out = out.failed()?;
    check_berth_error(&out.stderr, "process.capabilities.bounding[2]")?;
    if berth_tests::runtime::is_berth() {
        ensure!(
            out.stderr.contains("unknown capability CAP_FOO"),
            "error must say what is wrong: {:?}",
            out.stderr
        );
    }
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn no_new_privileges(rt: &Runtime) -> Outcome {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = sh_bundle(rt, "")?;
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let got = cap_status(rt, &mut b)?;
        ensure_eq!(
            got.get("NoNewPrivs").map(String::as_str),
            Some(want),
            "noNewPrivileges {nnp}"
        );
    }
    pass()
}

/// Runs the runtime from a shell whose inheritable and ambient sets hold CAP_NET_RAW (as
/// a caller like a container engine might), with `run --bundle b`; returns stdout.
fn run_with_inheritable_caller(rt: &Runtime, b: &Bundle) -> Result<Option<String>, Error> {
    if !Path::new("/usr/sbin/capsh").exists() && !Path::new("/sbin/capsh").exists() {
        return Ok(None);
    }
    let id = rt.new_id();
    let out = reaper::output(
        Command::new("capsh")
            .args([
                "--inh=cap_net_raw",
                "--addamb=cap_net_raw",
                "--",
                "-c",
                "grep -q '^CapAmb:.*2000$' /proc/self/status || { echo caller has no ambient; exit 99; }; exec \"$0\" \"$@\"",
            ])
            .arg(&rt.bin)
            .arg("--root")
            .arg(&rt.root)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg(&id),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "run under capsh failed ({:?}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Some(stdout))
}

fn inheritable_not_inherited_from_caller(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "grep -E '^Cap(Inh|Amb)' /proc/self/status")?;
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_NET_RAW"]);
    b.save()?;
    let Some(out) = run_with_inheritable_caller(rt, &b)? else {
        return unsupported("capsh is not installed");
    };
    let got = status_fields(&out);
    expect_sets(&got, &[("CapInh", &[]), ("CapAmb", &[])])?;
    pass()
}

/// Without process.capabilities the process keeps root's sets, but nothing the caller had
/// in inheritable or ambient.
fn inheritable_cleared_without_capabilities(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "grep -E '^Cap(Inh|Amb)' /proc/self/status")?;
    if let Some(p) = b.config["process"].as_object_mut() {
        p.remove("capabilities");
    }
    b.save()?;
    let Some(out) = run_with_inheritable_caller(rt, &b)? else {
        return unsupported("capsh is not installed");
    };
    let got = status_fields(&out);
    expect_sets(&got, &[("CapInh", &[]), ("CapAmb", &[])])?;
    pass()
}

/// Refused when the LSM is absent, never run unconfined; skipped on hosts that have it.
fn refused_without_lsm(rt: &Runtime, field: &str, value: serde_json::Value) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    let (section, key) = field.split_once('.').unwrap_or(("process", field));
    b.config[section][key] = value;
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?.failed()?;
    check_berth_error(&out.stderr, field)?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn apparmor_profile_without_apparmor_refused(rt: &Runtime) -> Outcome {
    if apparmor_enabled() {
        return unsupported("AppArmor is enabled on this host");
    }
    refused_without_lsm(rt, "process.apparmorProfile", json!("berth-test-profile"))
}

fn selinux_label_without_selinux_refused(rt: &Runtime) -> Outcome {
    if selinux_enabled() {
        return unsupported("SELinux is enabled on this host");
    }
    refused_without_lsm(
        rt,
        "process.selinuxLabel",
        json!("system_u:system_r:container_t:s0"),
    )
}

fn mount_label_without_selinux_refused(rt: &Runtime) -> Outcome {
    if selinux_enabled() {
        return unsupported("SELinux is enabled on this host");
    }
    refused_without_lsm(
        rt,
        "linux.mountLabel",
        json!("system_u:object_r:container_file_t:s0"),
    )
}

/// `exec --cap` adds to the bounding, permitted and effective sets, never to inheritable
/// (runc < 1.1.2 put every added capability there, CVE-2022-29162).
fn exec_cap_adds_no_inheritable(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "sleep 30")?;
    let id = rt.start_new(&b)?;
    let out = rt.cmd(&[
        "exec",
        "--cap",
        "CAP_NET_RAW",
        &id,
        "grep",
        "-E",
        "^Cap",
        "/proc/self/status",
    ]);
    let _ = rt.kill(&id, "KILL");
    let out = out?.ok()?;
    let got = status_fields(&out.stdout);
    let bnd = got
        .get("CapBnd")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    ensure!(
        bnd & 1 << CAP_NET_RAW != 0,
        "--cap CAP_NET_RAW not applied: {got:?}"
    );
    expect_sets(&got, &[("CapInh", &[]), ("CapAmb", &[])])?;
    pass()
}
