//! CVE-2024-21626: host file descriptors leaking into the container, and a process.cwd
//! that reaches the host through one of them (/proc/self/fd/N).

use std::fs;
use std::process::Command;

use berth_tests::{ensure, ensure_eq, reaper, Bundle, Error, Runtime};
use serde_json::json;

use crate::common::{pass, sh_bundle};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("CVE-2024-21626", only_stdio_and_preserved_fds),
        case!("CVE-2024-21626", cwd_through_leaked_fd_refused),
    ]
}

/// Runs `run --bundle b <extra>` from a shell that first runs `prelude` (opening fds the
/// runtime inherits); returns (success, stdout, stderr).
fn run_from_shell(
    rt: &Runtime,
    b: &Bundle,
    prelude: &str,
    extra: &[&str],
) -> Result<(bool, String, String), Error> {
    let id = rt.new_id();
    let out = reaper::output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude}\nexec \"$@\""))
            .arg("sh")
            .arg(&rt.bin)
            .arg("--root")
            .arg(&rt.root)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .args(extra)
            .arg(&id),
    )?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The caller holds fds 3 (a file), 4 and 5 (host directories) and preserves one: the
/// container's first process has 0, 1, 2 and 3, nothing else.
fn only_stdio_and_preserved_fds(rt: &Runtime) -> Outcome {
    // ls as the container's first process: its own directory fd on /proc/self/fd is the
    // one extra it may show.
    let b = rt.bundle(&["ls", "-l", "/proc/self/fd/"])?;
    let host = b.host_dir("host-secret")?;
    fs::write(b.dir.join("preserved"), "p")?;
    let prelude = format!(
        "exec 3<'{}' 4<'{}' 5</",
        b.dir.join("preserved").display(),
        host.display()
    );
    let (ok, out, err) = run_from_shell(rt, &b, &prelude, &["--preserve-fds", "1"])?;
    ensure!(ok, "run failed: {out} {err}");
    let fds: Vec<&str> = out
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.rsplit(' ').next()?;
            (!target.ends_with("/fd")).then_some(fd)
        })
        .collect();
    ensure_eq!(
        fds,
        vec!["0", "1", "2", "3"],
        "fds of the container's first process (the runtime leaked or dropped some): {out}"
    );
    pass()
}

/// process.cwd = /proc/self/fd/N for every fd a leaky runtime might hold: the container
/// either does not start or stays inside its root (it never sees the host directory's
/// marker file).
fn cwd_through_leaked_fd_refused(rt: &Runtime) -> Outcome {
    for n in 3..10 {
        let mut b = sh_bundle(rt, "pwd; ls -a; ls -a ..; ls -a ../..")?;
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.save()?;
        let host = b.host_dir("host-dir")?;
        fs::write(host.join("host-marker-file"), "")?;
        let prelude = format!("exec 4<'{}' 5<'{}'", host.display(), host.display());
        let (ok, out, _err) = run_from_shell(rt, &b, &prelude, &[])?;
        if !ok {
            continue;
        }
        ensure!(
            !out.contains("host-marker-file") && !out.contains("(unreachable)"),
            "cwd /proc/self/fd/{n} reached the host: {out:?}"
        );
    }
    pass()
}
