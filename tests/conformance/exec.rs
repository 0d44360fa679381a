//! `exec`: the new process joins every namespace and the cgroup of the init, is confined like
//! it (capabilities, no_new_privs, seccomp), takes runc's overrides, returns its exit code,
//! and is refused in a stopped or paused container.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::inside::status_fields;
use berth_tests::runtime::wait_file;
use berth_tests::{ensure, ensure_eq, reaper, Bundle, Error, Runtime};
use serde_json::json;

use crate::common::{check_berth_error, pass, unsupported, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("exec.namespaces", exec_joins_namespaces_and_cgroup),
        case!("exec.namespaces", exec_joins_user_namespace),
        case!("exec.confinement", exec_has_init_capabilities),
        case!("exec.confinement", exec_gets_seccomp_filter),
        case!("exec.process", exec_overrides),
        case!("exec.process", exec_process_file),
        case!("exec.process", exec_passes_stdio_and_preserved_fds),
        case!("exec.state", exec_in_created_container),
        case!("exec.exit", exec_returns_exit_code),
        case!("exec.exit", exec_forwards_signals),
        case!("exec.state", exec_refused_when_stopped),
        case!("exec.state", exec_refused_when_paused),
        case!("exec.bad-input", exec_bad_process_file),
    ]
}

const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// A running container (`sleep`), its id and the init's host pid.
fn running(rt: &Runtime, tweak: impl FnOnce(&mut Bundle)) -> Result<(String, Bundle, i32), Error> {
    let mut b = rt.bundle(&["sleep", "1000"])?;
    tweak(&mut b);
    b.save()?;
    let id = rt.start_new(&b)?;
    rt.wait_status(&id, "running", SHORT)?;
    let pid = rt.state(&id)?["pid"].as_i64().unwrap_or(0) as i32;
    ensure!(pid > 0, "state of {id} has no pid");
    Ok((id, b, pid))
}

fn finish(rt: &Runtime, id: &str, b: &Bundle) -> Outcome {
    rt.delete_force(id)?.ok()?;
    rt.assert_no_leftovers(id, b)?;
    pass()
}

fn ns_link(pid: i32, ns: &str) -> Result<String, Error> {
    Ok(fs::read_link(format!("/proc/{pid}/ns/{ns}"))?
        .display()
        .to_string())
}

/// `exec -d` of a sleeping process; its host pid from --pid-file.
fn exec_detached(rt: &Runtime, id: &str, extra: &[&str]) -> Result<i32, Error> {
    let pid_file = rt.tmp().join(format!("exec-{}.pid", rt.new_id()));
    let pf = pid_file.display().to_string();
    let mut args = vec!["exec", "-d", "--pid-file", &pf];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[id, "sleep", "1000"]);
    rt.cmd(&args)?.ok()?;
    ensure!(wait_file(&pid_file, SHORT), "no pid file from exec -d");
    let pid: i32 = fs::read_to_string(&pid_file)?.trim().parse().unwrap_or(0);
    ensure!(pid > 0, "bad pid file {pid_file:?}");
    Ok(pid)
}

fn exec_joins_namespaces_and_cgroup(rt: &Runtime) -> Outcome {
    let (id, b, init) = running(rt, |b| {
        b.push_namespace(json!({"type": "cgroup"}));
    })?;
    let pid = exec_detached(rt, &id, &[])?;
    for ns in NAMESPACES {
        let want = match ns_link(init, ns) {
            Ok(l) => l,
            // This kernel lacks the namespace type.
            Err(_) => continue,
        };
        ensure_eq!(
            ns_link(pid, ns)?,
            want,
            "{ns} namespace of the exec'd process"
        );
    }
    ensure_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup"))?,
        fs::read_to_string(format!("/proc/{init}/cgroup"))?,
        "cgroups of the exec'd process and the init"
    );
    // From inside: the same view of the pid namespace (the init is pid 1 there).
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; echo $$",
    ])?;
    let out = out.ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines.first().is_some_and(|l| l.starts_with("sleep")),
        "pid 1 seen by exec is not the init: {:?}",
        out.stdout
    );
    ensure!(
        lines.get(1).is_some_and(|l| *l != "1"),
        "the exec'd shell is pid 1: {:?}",
        out.stdout
    );
    finish(rt, &id, &b)
}

fn exec_joins_user_namespace(rt: &Runtime) -> Outcome {
    let (id, b, init) = running(rt, |b| {
        b.push_namespace(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.config["linux"]["uidMappings"] = map.clone();
        b.config["linux"]["gidMappings"] = map;
        // A cgroup v1 hierarchy cannot be mounted from inside a user namespace.
        b.drop_mount("/sys/fs/cgroup");
    })?;
    let out = rt
        .cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            "readlink /proc/self/ns/user; readlink /proc/self/ns/mnt; cat /proc/self/uid_map; id -u",
        ])?
        .ok()?;
    let l: Vec<&str> = out.stdout.lines().collect();
    ensure!(l.len() >= 4, "output {:?}", out.stdout);
    ensure_eq!(l[0], ns_link(init, "user")?, "user namespace of exec");
    ensure_eq!(l[1], ns_link(init, "mnt")?, "mount namespace of exec");
    let map: Vec<&str> = l[2].split_whitespace().collect();
    ensure_eq!(map, vec!["0", "100000", "65536"], "uid_map seen by exec");
    ensure_eq!(l[3], "0", "uid of exec inside the user namespace");
    let pid = exec_detached(rt, &id, &[])?;
    let status = status_fields(&fs::read_to_string(format!("/proc/{pid}/status"))?);
    let uid = status.get("Uid").cloned().unwrap_or_default();
    ensure!(
        uid.split_whitespace().next() == Some("100000"),
        "host uid of the exec'd process: {uid:?}"
    );
    finish(rt, &id, &b)
}

fn exec_has_init_capabilities(rt: &Runtime) -> Outcome {
    let (id, b, init) = running(rt, |_| {})?;
    let want = status_fields(&fs::read_to_string(format!("/proc/{init}/status"))?);
    let out = rt.cmd(&["exec", &id, "cat", "/proc/self/status"])?.ok()?;
    let got = status_fields(&out.stdout);
    for f in [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
    ] {
        ensure_eq!(got.get(f), want.get(f), "{f} of exec vs init");
    }
    ensure_eq!(
        got.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "noNewPrivileges"
    );
    // --cap adds to the bounding, effective and permitted sets (runc).
    let out = rt
        .cmd(&[
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "cat",
            "/proc/self/status",
        ])?
        .ok()?;
    let eff = status_fields(&out.stdout)
        .get("CapEff")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    ensure!(
        eff & (1 << 21) != 0,
        "--cap CAP_SYS_ADMIN not effective: {eff:x}"
    );
    finish(rt, &id, &b)
}

fn exec_gets_seccomp_filter(rt: &Runtime) -> Outcome {
    let mut b = rt.bundle(&["sleep", "1000"])?;
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.save()?;
    let id = rt.new_id();
    let out = rt.create(&id, &b)?;
    if !out.success() {
        if out.stderr.contains("seccomp") {
            return unsupported(format!(
                "seccomp refused: {}",
                out.stderr.lines().last().unwrap_or("")
            ));
        }
        out.ok()?;
    }
    rt.start(&id)?.ok()?;
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; mkdir /tmp/denied && echo made",
    ])?;
    let status = status_fields(&out.stdout);
    ensure_eq!(
        status.get("Seccomp").map(String::as_str),
        Some("2"),
        "Seccomp mode of the exec'd process ({out})"
    );
    ensure!(!out.stdout.contains("made"), "mkdir was allowed: {out}");
    finish(rt, &id, &b)
}

fn exec_overrides(rt: &Runtime) -> Outcome {
    let (id, b, _) = running(rt, |_| {})?;
    let out = rt
        .cmd(&[
            "exec",
            "--user",
            "1000:1001",
            "--additional-gids",
            "7",
            "--cwd",
            "/tmp",
            "--env",
            "FOO=bar",
            &id,
            "sh",
            "-c",
            "id -u; id -g; id -G; pwd; echo $FOO; echo $PATH",
        ])?
        .ok()?;
    let l: Vec<&str> = out.stdout.lines().collect();
    ensure!(l.len() >= 6, "output {:?}", out.stdout);
    ensure_eq!(l[0], "1000", "uid");
    ensure_eq!(l[1], "1001", "gid");
    ensure!(
        l[2].split_whitespace().any(|g| g == "7"),
        "additional gid 7 missing: {:?}",
        l[2]
    );
    ensure_eq!(l[3], "/tmp", "cwd");
    ensure_eq!(l[4], "bar", "--env");
    ensure!(l[5].contains("/bin"), "config env kept: PATH={:?}", l[5]);
    finish(rt, &id, &b)
}

fn exec_process_file(rt: &Runtime) -> Outcome {
    let (id, b, _) = running(rt, |_| {})?;
    let p = rt.tmp().join(format!("process-{id}.json"));
    fs::write(
        &p,
        serde_json::to_vec(&json!({
            "terminal": false,
            "user": {"uid": 65534, "gid": 65534},
            "args": ["sh", "-c", "id -u; pwd; echo $ONLY; grep CapEff /proc/self/status"],
            "env": ["PATH=/bin", "ONLY=from-file"],
            "cwd": "/var"
        }))?,
    )?;
    let ps = p.display().to_string();
    let out = rt.cmd(&["exec", "--process", &ps, &id])?.ok()?;
    let l: Vec<&str> = out.stdout.lines().collect();
    ensure!(l.len() >= 4, "output {:?}", out.stdout);
    ensure_eq!(l[0], "65534", "uid from process.json");
    ensure_eq!(l[1], "/var", "cwd from process.json");
    ensure_eq!(l[2], "from-file", "env from process.json");
    // No capabilities in the file: none for the process (the config's are not merged in).
    let eff = l[3].split_whitespace().nth(1).unwrap_or("");
    ensure_eq!(
        eff,
        "0000000000000000",
        "CapEff without process.capabilities"
    );
    finish(rt, &id, &b)
}

fn exec_returns_exit_code(rt: &Runtime) -> Outcome {
    let (id, b, _) = running(rt, |_| {})?;
    let out = rt.cmd(&["exec", &id, "sh", "-c", "exit 7"])?;
    ensure_eq!(out.code, 7, "exit code of exec ({out})");
    let out = rt.cmd(&["exec", &id, "sh", "-c", "kill -9 $$"])?;
    ensure_eq!(out.code, 137, "exit code of a killed exec ({out})");
    let out = rt.cmd(&["exec", &id, "/no/such/binary"])?.failed()?;
    ensure!(
        out.code != 0 && out.code != 7,
        "exit code for a missing binary: {out}"
    );
    if berth_tests::runtime::is_berth() {
        ensure_eq!(out.code, 255, "berth exits 255 when exec fails, as runc");
        check_berth_error(&out.stderr, "process.args")?;
    }
    finish(rt, &id, &b)
}

fn exec_forwards_signals(rt: &Runtime) -> Outcome {
    let (id, b, _) = running(rt, |_| {})?;
    // The marker file (in the rootfs) appears once the trap is set.
    let mut cmd = Command::new(&rt.bin);
    cmd.args(["--root", &rt.root.display().to_string(), "exec", &id])
        .args([
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo > /tmp/trap-set; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = reaper::spawn(&mut cmd)?;
    let marker = b.rootfs().join("tmp/trap-set");
    let r = (|| -> Result<i32, Error> {
        ensure!(
            wait_file(&marker, SHORT),
            "the exec'd shell never set its trap"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| Error(format!("kill: {e}")))?;
        let deadline = Instant::now() + SHORT;
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok(s.code().unwrap_or(-1));
            }
            ensure!(Instant::now() < deadline, "exec did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    reaper::release(child.id());
    ensure_eq!(r?, 42, "exit code after a forwarded SIGTERM");
    finish(rt, &id, &b)
}

fn exec_refused_when_stopped(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["true"])?;
    let id = rt.start_new(&b)?;
    rt.wait_status(&id, "stopped", SHORT)?;
    let out = rt.cmd(&["exec", &id, "true"])?.failed()?;
    ensure!(
        out.stderr.contains("stopped"),
        "the error does not name the state: {out}"
    );
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn exec_refused_when_paused(rt: &Runtime) -> Outcome {
    let (id, b, _) = running(rt, |_| {})?;
    let out = rt.cmd(&["pause", &id])?;
    if !out.success() {
        rt.delete_force(&id)?.ok()?;
        return unsupported(format!("pause: {}", out.stderr.trim()));
    }
    let out = rt.cmd(&["exec", &id, "true"])?.failed()?;
    ensure!(
        out.stderr.contains("paused"),
        "the error does not name the state: {out}"
    );
    rt.cmd(&["resume", &id])?.ok()?;
    rt.cmd(&["exec", &id, "true"])?.ok()?;
    finish(rt, &id, &b)
}

fn exec_bad_process_file(rt: &Runtime) -> Outcome {
    let (id, b, init) = running(rt, |_| {})?;
    let p = rt.tmp().join(format!("bad-{id}.json"));
    fs::write(
        &p,
        br#"{"args": 5, "cwd": "/", "user": {"uid": 0, "gid": 0}}"#,
    )?;
    let ps = p.display().to_string();
    let out = rt.cmd(&["exec", "--process", &ps, &id])?.failed()?;
    ensure!(
        out.stderr.contains("args"),
        "error does not name args: {out}"
    );
    check_berth_error(&out.stderr, "process.args")?;
    // Nothing was started: only the init is in the container.
    let procs = berth_tests::leftovers::processes(
        b.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default(),
    );
    ensure_eq!(
        procs,
        vec![init],
        "processes of the container after a failed exec"
    );
    finish(rt, &id, &b)
}

/// Without a terminal the process gets the runtime's stdin and stdout, and with
/// `--preserve-fds 1` also its fd 3.
fn exec_passes_stdio_and_preserved_fds(rt: &Runtime) -> Outcome {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let (id, b, _) = running(rt, |_| {})?;
    let extra_path = rt.tmp().join(format!("fd3-{id}"));
    let extra = fs::File::create(&extra_path)?;
    let extra_fd = extra.as_raw_fd();
    let mut cmd = Command::new(&rt.bin);
    cmd.args(["--root", &rt.root.display().to_string()])
        .args(["exec", "--preserve-fds", "1", &id, "sh", "-c"])
        .arg("read line; echo got-$line; echo via-fd3 >&3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec.
            let r = if extra_fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(extra_fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = reaper::spawn(&mut cmd)?;
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"hello\n")?;
    }
    let out = child.wait_with_output();
    reaper::release(pid);
    let out = out?;
    drop(extra);
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("got-hello"),
        "stdin not passed through: {:?}; stderr {:?}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let written = fs::read_to_string(&extra_path)?;
    ensure_eq!(
        written.trim(),
        "via-fd3",
        "what the process wrote to its preserved fd 3"
    );
    finish(rt, &id, &b)
}

/// runc allows exec before `start`; the init still waits for it.
fn exec_in_created_container(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["sleep", "1000"])?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    let out = rt
        .cmd(&["exec", &id, "sh", "-c", "echo in-created"])?
        .ok()?;
    ensure!(out.stdout.contains("in-created"), "output {out}");
    ensure_eq!(rt.status(&id)?, "created", "status after exec");
    finish(rt, &id, &b)
}
