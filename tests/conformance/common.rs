//! Small helpers shared by the cases.

use std::path::PathBuf;
use std::time::Duration;

use berth_tests::runtime::Output;
use berth_tests::{ensure, Bundle, Error, Runtime};
use libtest_mimic::Completion;
use serde_json::json;

use crate::Outcome;

pub const SHORT: Duration = Duration::from_secs(10);

pub fn pass() -> Outcome {
    Ok(Completion::Completed)
}

/// The runtime cannot do this: reported as "unsupported", not as a failure.
pub fn unsupported(reason: impl std::fmt::Display) -> Outcome {
    Ok(Completion::ignored_with(format!("unsupported: {reason}")))
}

/// Adds a read-write bind mount of a fresh host directory at /out; returns the host side.
pub fn out_dir(b: &mut Bundle) -> Result<PathBuf, Error> {
    let host = b.host_dir("out")?;
    let src = host.display().to_string();
    b.push_mount(json!({
        "destination": "/out", "type": "bind", "source": src, "options": ["rbind", "rw"]
    }));
    b.save()?;
    Ok(host)
}

/// A bundle running `sh -c script`.
pub fn sh_bundle(rt: &Runtime, script: &str) -> Result<Bundle, Error> {
    rt.bundle(&["sh", "-c", script])
}

/// Runs `script` in a bundle prepared by `tweak` and returns its stdout.
pub fn run_script(
    rt: &Runtime,
    script: &str,
    tweak: impl FnOnce(&mut Bundle) -> Result<(), Error>,
) -> Result<String, Error> {
    let mut b = sh_bundle(rt, script)?;
    tweak(&mut b)?;
    b.save()?;
    rt.run_ok(&b)
}

/// Non-empty stderr lines, for the one-line-error promise.
pub fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// berth promises a one-line error that names the offending field.
pub fn check_berth_error(stderr: &str, field: &str) -> Result<(), Error> {
    if !berth_tests::runtime::is_berth() {
        return Ok(());
    }
    let lines = error_lines(stderr);
    if lines.len() != 1 || !lines[0].contains(field) {
        return Err(Error(format!(
            "berth must print one error line naming `{field}`, got {stderr:?}"
        )));
    }
    Ok(())
}

/// A probe of a deny-all device rule: /dev/null (in the default allow list)
/// opens, /dev/kmsg does not. Reading /dev/kmsg needs CAP_SYSLOG
/// (dmesg_restrict) and would fail anyway; opening it write-only needs
/// nothing, so only the device rule can refuse it. Needs `allow_mknod`.
pub const DEVICE_PROBE: &str = "mknod /tmp/null c 1 3 && echo x > /tmp/null && echo null-ok; \
     mknod /tmp/kmsg c 1 11 && echo berth-device-probe > /tmp/kmsg && echo kmsg-ok; true";

/// Capabilities for `DEVICE_PROBE`: CAP_MKNOD, and nothing that would let it
/// past the device rule otherwise.
pub fn allow_mknod(b: &mut Bundle) -> Result<(), Error> {
    let caps = json!(["CAP_KILL", "CAP_MKNOD"]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = caps.clone();
    }
    b.save()
}

/// What `DEVICE_PROBE` printed under a deny-all rule.
pub fn check_device_probe(out: &Output) -> Result<(), Error> {
    let all = format!("{}{}", out.stdout, out.stderr);
    ensure!(all.contains("null-ok"), "/dev/null (allowed) failed: {all}");
    ensure!(!all.contains("kmsg-ok"), "/dev/kmsg (denied) opened: {all}");
    ensure!(
        all.contains("Operation not permitted"),
        "expected EPERM from the device rule: {all}"
    );
    Ok(())
}
