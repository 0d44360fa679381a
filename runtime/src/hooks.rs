//! OCI hooks: each one runs with the container state JSON on stdin, its own
//! args and env, and an optional timeout after which it is killed.
//!
//! Failure semantics (runtime-spec, "Lifecycle"): a failing prestart,
//! createRuntime, createContainer or startContainer hook fails the operation;
//! a failing poststart or poststop hook is only reported.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

pub const PRESTART: &str = "prestart";
pub const CREATE_RUNTIME: &str = "createRuntime";
pub const CREATE_CONTAINER: &str = "createContainer";
pub const START_CONTAINER: &str = "startContainer";
pub const POSTSTART: &str = "poststart";
pub const POSTSTOP: &str = "poststop";

/// Every hook list with its config name, in lifecycle order.
pub fn all(h: &Hooks) -> Vec<(&'static str, &[Hook])> {
    #[allow(deprecated)]
    let lists = [
        (PRESTART, h.prestart()),
        (CREATE_RUNTIME, h.create_runtime()),
        (CREATE_CONTAINER, h.create_container()),
        (START_CONTAINER, h.start_container()),
        (POSTSTART, h.poststart()),
        (POSTSTOP, h.poststop()),
    ];
    lists
        .into_iter()
        .map(|(k, l)| (k, l.as_deref().unwrap_or(&[])))
        .collect()
}

/// The hooks of one kind, empty when the config has none.
pub fn of_kind<'a>(hooks: Option<&'a Hooks>, kind: &str) -> &'a [Hook] {
    hooks
        .map(all)
        .and_then(|l| l.into_iter().find(|(k, _)| *k == kind).map(|(_, v)| v))
        .unwrap_or(&[])
}

/// Run `hooks` in order, stopping at the first failure.
pub fn run(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state_json).map_err(|msg| Error::Hook {
            kind,
            index,
            path: hook.path().display().to_string(),
            msg,
        })?;
    }
    Ok(())
}

/// Run `hooks` in order and report failures without stopping.
pub fn run_best_effort(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Vec<Error> {
    let mut errors = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(msg) = run_one(hook, state_json) {
            errors.push(Error::Hook {
                kind,
                index,
                path: hook.path().display().to_string(),
                msg,
            });
        }
    }
    errors
}

fn run_one(hook: &Hook, state_json: &[u8]) -> std::result::Result<(), String> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    // args[0] is the program's argv[0], as in execv(3).
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0);
        cmd.args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("exec: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not a failure.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    let status = match deadline {
        None => child.wait().map_err(|e| format!("wait: {e}"))?,
        Some(deadline) => wait_until(&mut child, deadline)?,
    };
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Err(format!("exited with status {c}")),
        (_, Some(s)) => Err(format!("killed by signal {s}")),
        _ => Err(format!("failed: {status}")),
    }
}

fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> std::result::Result<std::process::ExitStatus, String> {
    let pidfd =
        crate::sys::pidfd_open(child.id() as i32).map_err(|e| format!("pidfd_open: {e}"))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            Ok(0) => continue,
            Ok(_) => return child.wait().map_err(|e| format!("wait: {e}")),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
}
