//! linux.seccomp, checked by what a filtered syscall does inside the
//! container: the configured errno, a kill, argument conditions, the log
//! action, Docker's default profile, and SCMP_ACT_NOTIFY with a real agent
//! on the other end of listenerPath.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use berth_tests::{ensure, Error, Runtime};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

use crate::common::{pass, run_script, sh_bundle, unsupported};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("seccomp.errno", errno_ret_returned),
        case!("seccomp.kill", kill_process_kills),
        case!("seccomp.kill", kill_thread_and_trap_signal),
        case!("seccomp.trace", trace_without_tracer_fails_enosys),
        case!("seccomp.flags", filter_flags_accepted),
        case!("seccomp.unknown-syscalls", unknown_names_skipped),
        case!("seccomp.late", runtime_setup_not_filtered),
        case!("seccomp.args", argument_conditions),
        case!("seccomp.log", log_allows),
        case!("seccomp.profile", docker_default_profile),
        case!("seccomp.notify", notify_reaches_agent),
    ]
}

/// A filter that allows everything but `rules`.
fn allow_but(rules: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

fn with_seccomp(rt: &Runtime, script: &str, filter: Value) -> Result<String, Error> {
    run_script(rt, script, |b| {
        b.config["linux"]["seccomp"] = filter;
        Ok(())
    })
}

fn errno_ret_returned(rt: &Runtime) -> Outcome {
    // mkdir(2) and mkdirat(2): busybox may use either.
    let out = with_seccomp(
        rt,
        "mkdir /tmp/x 2>&1; echo rc=$?; grep ^Seccomp: /proc/self/status",
        allow_but(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    )?;
    ensure!(
        out.contains("Function not implemented"),
        "mkdir should fail with ENOSYS (errnoRet 38): {out:?}"
    );
    ensure!(out.contains("rc=1"), "mkdir should fail: {out:?}");
    ensure!(
        out.contains("Seccomp:\t2"),
        "no filter in /proc/self/status: {out:?}"
    );
    pass()
}

fn kill_process_kills(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "")?;
    b.args(&["mkdir", "/tmp/z"]);
    b.config["linux"]["seccomp"] =
        allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]));
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    ensure!(
        out.code == 128 + libc::SIGSYS,
        "the container's process should die of SIGSYS (exit {}), got {}: {out:?}",
        128 + libc::SIGSYS,
        out.code
    );
    pass()
}

/// SCMP_ACT_KILL (= KILL_THREAD) and SCMP_ACT_TRAP both end a
/// single-threaded process with SIGSYS (TRAP by the signal, unhandled).
fn kill_thread_and_trap_signal(rt: &Runtime) -> Outcome {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"] {
        let mut b = sh_bundle(rt, "")?;
        b.args(&["mkdir", "/tmp/t"]);
        b.config["linux"]["seccomp"] =
            allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": action}]));
        b.save()?;
        let id = rt.new_id();
        let out = rt.run(&id, &b)?;
        ensure!(
            out.code == 128 + libc::SIGSYS,
            "{action}: expected death by SIGSYS (exit {}), got {}: {out:?}",
            128 + libc::SIGSYS,
            out.code
        );
    }
    pass()
}

/// SCMP_ACT_TRACE with no tracer attached: the kernel fails the call with
/// ENOSYS.
fn trace_without_tracer_fails_enosys(rt: &Runtime) -> Outcome {
    let out = with_seccomp(
        rt,
        "mkdir /tmp/tr 2>&1; echo rc=$?",
        allow_but(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]),
        ),
    )?;
    ensure!(
        out.contains("Function not implemented") && out.contains("rc=1"),
        "{out:?}"
    );
    pass()
}

/// SECCOMP_FILTER_FLAG_LOG and SPEC_ALLOW are passed to the kernel and the
/// filter still works.
fn filter_flags_accepted(rt: &Runtime) -> Outcome {
    let mut f = allow_but(
        json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
    );
    f["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
    let out = match with_seccomp(rt, "mkdir /tmp/f 2>&1; echo rc=$?", f) {
        Err(e) if !berth_tests::runtime::is_berth() && e.0.contains("flags") => {
            return unsupported(format!(
                "seccomp flags refused: {}",
                e.0.lines().last().unwrap_or("")
            ));
        }
        r => r?,
    };
    ensure!(out.contains("Function not implemented"), "{out:?}");
    pass()
}

/// A name neither the kernel nor the runtime knows is skipped, the rest of
/// the profile applies (stock profiles name syscalls of newer kernels).
fn unknown_names_skipped(rt: &Runtime) -> Outcome {
    let out = with_seccomp(
        rt,
        "mkdir /tmp/u 2>&1; echo rc=$?",
        allow_but(
            json!([{"names": ["berth_no_such_syscall", "mkdir", "mkdirat"],
                          "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]),
        ),
    )?;
    ensure!(out.contains("Function not implemented"), "{out:?}");
    pass()
}

/// With noNewPrivileges the filter is loaded after the runtime's own setup:
/// denying the calls it needs to switch user and set capabilities must not
/// stop the container from starting (only the container is filtered).
fn runtime_setup_not_filtered(rt: &Runtime) -> Outcome {
    let denied = json!([{"names": ["setgroups", "setresuid", "setresgid", "setuid", "setgid",
                                   "capset", "prctl", "chdir", "fchdir", "close_range"],
                         "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    let out = run_script(rt, "echo started; grep ^Uid: /proc/self/status", |b| {
        b.config["process"]["noNewPrivileges"] = json!(true);
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["linux"]["seccomp"] = allow_but(denied);
        Ok(())
    })?;
    ensure!(out.contains("started"), "{out:?}");
    ensure!(
        out.contains("Uid:\t1000"),
        "user switch must have happened before the filter: {out:?}"
    );
    pass()
}

fn argument_conditions(rt: &Runtime) -> Outcome {
    // kill(pid, 0) refused (EQ on args[1]); kill(pid, SIGCONT) allowed. The
    // same with MASKED_EQ: (sig & 0xff) == 0.
    for op in [
        json!({"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}),
        json!({"index": 1, "value": 0xff, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}),
    ] {
        let out = with_seccomp(
            rt,
            "kill -0 $$ 2>&1; echo zero=$?; kill -CONT $$; echo cont=$?",
            allow_but(
                json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [op.clone()]}]),
            ),
        )?;
        ensure!(
            out.contains("zero=1"),
            "kill -0 should be refused with {op}: {out:?}"
        );
        ensure!(
            out.contains("cont=0"),
            "kill -CONT should pass with {op}: {out:?}"
        );
    }
    pass()
}

fn log_allows(rt: &Runtime) -> Outcome {
    let out = with_seccomp(
        rt,
        "mkdir /tmp/logged && echo made",
        allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}])),
    )?;
    ensure!(
        out.contains("made"),
        "SCMP_ACT_LOG must allow the call: {out:?}"
    );
    pass()
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/seccomp/docker-default.json")
}

fn docker_default_profile(rt: &Runtime) -> Outcome {
    let profile: Value = serde_json::from_slice(&std::fs::read(fixture())?)
        .map_err(|e| Error(format!("docker-default.json: {e}")))?;
    let out = with_seccomp(
        rt,
        "echo hi; unshare -m true 2>&1; echo unshare=$?; grep ^Seccomp: /proc/self/status",
        profile,
    )?;
    ensure!(out.contains("hi"), "{out:?}");
    ensure!(
        out.contains("unshare=1") && out.contains("not permitted"),
        "unshare must be refused with EPERM: {out:?}"
    );
    ensure!(out.contains("Seccomp:\t2"), "{out:?}");
    pass()
}

/// SECCOMP_IOCTL_NOTIF_RECV / SEND (<linux/seccomp.h>).
const NOTIF_RECV: libc::c_ulong = 0xc0502100;
const NOTIF_SEND: libc::c_ulong = 0xc0182101;

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// The agent: accept the runtime's connection, take the listener fd and the
/// state, then answer every notification with ENOSPC.
fn agent(listener: UnixListener) -> Result<Value, String> {
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(|e| format!("recvmsg: {e}"))?;
        let mut fd = None;
        for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                fd = fds.first().copied();
            }
        }
        (msg.bytes, fd)
    };
    let fd = fd.ok_or("no fd received")?;
    // SAFETY: SCM_RIGHTS just gave us this fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let state: Value = serde_json::from_slice(&buf[..n]).map_err(|e| format!("state: {e}"))?;
    for _ in 0..64 {
        let mut req = Notif::default();
        // SAFETY: NOTIF_RECV fills a seccomp_notif we own.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } != 0 {
            break; // the container is gone
        }
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: -libc::ENOSPC,
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads a seccomp_notif_resp we own.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
    }
    Ok(state)
}

fn notify_reaches_agent(rt: &Runtime) -> Outcome {
    let sock = rt.tmp().join(format!("agent-{}.sock", rt.new_id()));
    let listener = UnixListener::bind(&sock)?;
    let handle = std::thread::spawn(move || agent(listener));
    let out = with_seccomp(rt, "mkdir /tmp/n 2>&1; echo rc=$?", {
        let mut f =
            allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
        f["listenerPath"] = json!(sock.display().to_string());
        f["listenerMetadata"] = json!("berth-test-metadata");
        f
    });
    let _ = std::os::unix::net::UnixStream::connect(&sock); // unblock accept if the runtime never came
    let state = handle
        .join()
        .map_err(|_| Error("agent thread panicked".into()))?;
    let out = out?;
    let state = state.map_err(|e| Error(format!("agent: {e}")))?;
    ensure!(
        out.contains("No space left on device"),
        "the agent's ENOSPC should reach mkdir: {out:?}"
    );
    ensure!(
        state["metadata"] == "berth-test-metadata",
        "metadata not passed: {state}"
    );
    ensure!(state["fds"] == json!(["seccompFd"]), "fds field: {state}");
    ensure!(
        state["state"]["id"].is_string(),
        "container state missing: {state}"
    );
    pass()
}
