//! Small helpers shared by the cases.

use std::path::PathBuf;
use std::time::Duration;

use berth_tests::{Bundle, Error, Runtime};
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
