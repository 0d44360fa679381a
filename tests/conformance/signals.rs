//! The container's process starts with default signal dispositions and an
//! empty signal mask, whatever its caller had: a shim that blocks SIGCHLD
//! for its signalfd, a runtime whose language runtime ignores SIGPIPE.

use std::os::unix::process::CommandExt;
use std::process::Command;

use berth_tests::{ensure, Error, Runtime};

use crate::common::{pass, sh_bundle};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![case!("process.signals", clean_signal_state)]
}

/// `SigBlk`/`SigIgn` bit of `sig`.
fn bit(mask: u64, sig: i32) -> bool {
    mask & (1u64 << (sig - 1)) != 0
}

fn clean_signal_state(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "")?;
    let mut b = b;
    b.args(&["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]);
    b.save()?;
    let id = rt.new_id();
    let mut cmd = Command::new(berth_tests::runtime::binary());
    cmd.arg("--root")
        .arg(&rt.root)
        .args(["run", "--bundle"])
        .arg(
            b.config_path()
                .parent()
                .unwrap_or(std::path::Path::new("/")),
        )
        .arg(&id);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = berth_tests::reaper::output(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> Result<u64, Error> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| Error(format!("no {name} in {stdout:?}")))?;
        let hex = line.split_whitespace().nth(1).unwrap_or("");
        u64::from_str_radix(hex, 16).map_err(|e| Error(format!("{line:?}: {e}")))
    };
    let (blk, ign) = (field("SigBlk:")?, field("SigIgn:")?);
    ensure!(
        blk == 0,
        "signals blocked in the container: SigBlk {blk:016x}"
    );
    for (sig, name) in [(libc::SIGPIPE, "SIGPIPE"), (libc::SIGINT, "SIGINT")] {
        ensure!(
            !bit(ign, sig),
            "{name} ignored in the container: SigIgn {ign:016x}"
        );
    }
    pass()
}
