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
        case!("CVE-2024-21626", exec_only_stdio),
        case!("CVE-2024-21626", exec_cwd_through_leaked_fd_refused),
    ]
}

/// Runs the runtime with `--root` and `args` from a shell that first runs `prelude`
/// (opening fds the runtime inherits); returns (success, stdout, stderr).
fn runtime_from_shell(
    rt: &Runtime,
    prelude: &str,
    args: &[&str],
) -> Result<(bool, String, String), Error> {
    let out = reaper::output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude}\nexec \"$@\""))
            .arg("sh")
            .arg(&rt.bin)
            .arg("--root")
            .arg(&rt.root)
            .args(args),
    )?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `run --bundle b <extra> <new id>` through [`runtime_from_shell`].
fn run_from_shell(
    rt: &Runtime,
    b: &Bundle,
    prelude: &str,
    extra: &[&str],
) -> Result<(bool, String, String), Error> {
    let id = rt.new_id();
    let dir = b.dir.display().to_string();
    let mut args = vec!["run", "--bundle", &dir];
    args.extend_from_slice(extra);
    args.push(&id);
    runtime_from_shell(rt, prelude, &args)
}

/// The fd numbers `ls -l /proc/self/fd/` printed, without ls's own directory fd.
fn fd_numbers(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.rsplit(' ').next()?;
            (!target.ends_with("/fd")).then_some(fd)
        })
        .collect()
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
    ensure_eq!(
        fd_numbers(&out),
        vec!["0", "1", "2", "3"],
        "fds of the container's first process (the runtime leaked or dropped some): {out}"
    );
    pass()
}

/// process.cwd = /proc/self/fd/N for every fd a leaky runtime might hold: the container
/// either does not start or stays inside its root (it never sees the host directory's
/// marker file).
fn cwd_through_leaked_fd_refused(rt: &Runtime) -> Outcome {
    // Control: process.cwd itself is honoured, so the refusals below are about the path.
    let mut b = sh_bundle(rt, "pwd")?;
    b.config["process"]["cwd"] = json!("/tmp");
    b.save()?;
    let pwd = rt.run_ok(&b)?;
    ensure_eq!(pwd.trim(), "/tmp", "process.cwd");
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

/// `exec` from a caller holding host directories on fds 3-5: the new process has stdio
/// only.
fn exec_only_stdio(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "sleep 30")?;
    let host = b.host_dir("host-secret")?;
    let id = rt.start_new(&b)?;
    let prelude = format!("exec 3<'{0}' 4<'{0}' 5</", host.display());
    let r = runtime_from_shell(rt, &prelude, &["exec", &id, "ls", "-l", "/proc/self/fd/"]);
    let _ = rt.kill(&id, "KILL");
    let (ok, out, err) = r?;
    ensure!(ok, "exec failed: {out} {err}");
    ensure_eq!(
        fd_numbers(&out),
        vec!["0", "1", "2"],
        "fds of the exec'd process: {out}"
    );
    pass()
}

/// `exec --cwd /proc/self/fd/N` with host directories on the caller's fds 4 and 5.
fn exec_cwd_through_leaked_fd_refused(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "sleep 30")?;
    let host = b.host_dir("host-dir")?;
    fs::write(host.join("host-marker-file"), "")?;
    let id = rt.start_new(&b)?;
    let prelude = format!("exec 4<'{0}' 5<'{0}'", host.display());
    // Control: --cwd itself works, so the refusals below are about the path.
    let control = runtime_from_shell(rt, "", &["exec", "--cwd", "/tmp", &id, "pwd"]);
    let mut result = match control {
        Ok((true, out, _)) if out.trim() == "/tmp" => Ok(()),
        Ok((_, out, err)) => Err(Error(format!("exec --cwd /tmp: {out:?} {err:?}"))),
        Err(e) => Err(e),
    };
    for n in 3..10 {
        if result.is_err() {
            break;
        }
        let cwd = format!("/proc/self/fd/{n}");
        let r = runtime_from_shell(
            rt,
            &prelude,
            &[
                "exec",
                "--cwd",
                &cwd,
                &id,
                "sh",
                "-c",
                "pwd; ls -a; ls -a ../..",
            ],
        );
        match r {
            Ok((true, out, _))
                if out.contains("host-marker-file") || out.contains("(unreachable)") =>
            {
                result = Err(Error(format!("exec --cwd {cwd} reached the host: {out:?}")));
                break;
            }
            Ok(_) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = rt.kill(&id, "KILL");
    result?;
    pass()
}
