//! Real-kernel tests: fork, install the filter in the child, make the
//! filtered syscall, and report through the exit status. Need root (or
//! no_new_privs, which the child sets) and a kernel with seccomp.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::LinuxSeccomp;

use super::{compile, connect_listener, install, send_listener_fd, Program};

fn program(json: &str) -> Program {
    let s: LinuxSeccomp = serde_json::from_str(json).expect("test profile parses");
    compile(&s).expect("compiles")
}

/// Returns -errno on failure, like the raw syscall ABI.
fn raw(nr: libc::c_long, a0: u64) -> i64 {
    // SAFETY: only called with syscalls that take integer arguments.
    let r = unsafe { libc::syscall(nr, a0) };
    if r == -1 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        r
    }
}

/// Forks; the child installs `program`, runs `f` and exits with its code.
fn in_child(program: &Program, f: impl FnOnce(Option<OwnedFd>) -> i32) -> (Pid, WaitStatus) {
    // SAFETY: the child only makes syscalls and allocates (glibc's malloc
    // is reset across fork) before _exit; it never returns to the harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: plain prctl; so the test also works without root.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                match install(program) {
                    Ok(fd) => f(fd),
                    Err(_) => 100,
                }
            }))
            .unwrap_or(101);
            // SAFETY: leaves the child without running the harness's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => (child, waitpid(child, None).expect("waitpid")),
    }
}

fn exited(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        other => panic!("child did not exit normally: {other:?}"),
    }
}

#[test]
fn errno_with_errno_ret() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    let (_, st) = in_child(&p, |_| match raw(libc::SYS_getppid, 0) {
        -42 => 0,
        _ => 1,
    });
    assert_eq!(exited(st), 0);
}

#[test]
fn default_errno_ret() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":77,"syscalls":[
            {"names":["exit_group","exit"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    // Only exit is allowed; the exit status carries what getppid returned.
    let (_, st) = in_child(&p, |_| -raw(libc::SYS_getppid, 0) as i32);
    assert_eq!(exited(st), 77);
}

#[test]
fn kill_process() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let (_, st) = in_child(&p, |_| {
        raw(libc::SYS_getppid, 0);
        1
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
}

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SYS_SECCOMP in <asm-generic/siginfo.h>: the signal came from a filter.
    const SYS_SECCOMP: i32 = 1;
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(if code == SYS_SECCOMP { 7 } else { 8 }) }
}

#[test]
fn trap_sends_sigsys_to_a_handler() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_TRAP"}]}"#,
    );
    let (_, st) = in_child(&p, |_| {
        // SAFETY: installs a handler that only calls _exit.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
        }
        raw(libc::SYS_getppid, 0);
        1
    });
    assert_eq!(exited(st), 7);
}

#[test]
fn log_lets_the_call_through() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_LOG"},
                        {"names":["exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let me = std::process::id() as i64;
    let (_, st) = in_child(&p, |_| {
        let ppid = raw(libc::SYS_getppid, 0);
        let denied = raw(libc::SYS_getpid, 0);
        match (ppid == me, denied) {
            (true, -1) => 0,
            (false, _) => 1,
            _ => 2,
        }
    });
    assert_eq!(exited(st), 0);
}

#[test]
fn masked_eq_compares_all_64_bits() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":33,"args":[
                {"index":0,"value":4294967551,"valueTwo":4294967296,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    let (_, st) = in_child(&p, |_| {
        let high = 0x1_0000_0000u64;
        let mut code = 0;
        if raw(libc::SYS_umask, high) != -33 {
            code |= 1;
        }
        if raw(libc::SYS_umask, high | 0o22 << 8) != -33 {
            code |= 2; // bits outside the mask do not matter
        }
        if raw(libc::SYS_umask, high | 1) < 0 {
            code |= 4;
        }
        if raw(libc::SYS_umask, 0) < 0 {
            code |= 8; // low half equal, high half not
        }
        code
    });
    assert_eq!(exited(st), 0);
}

#[test]
fn docker_default_profile_loads_and_filters() {
    let p = program(include_str!(
        "../../../tests/fixtures/seccomp/docker-default.json"
    ));
    let (_, st) = in_child(&p, |_| {
        let mut code = 0;
        if raw(libc::SYS_getpid, 0) <= 0 {
            code |= 1;
        }
        if raw(libc::SYS_unshare, libc::CLONE_NEWUSER as u64) != -i64::from(libc::EPERM) {
            code |= 2;
        }
        if raw(libc::SYS_clone3, 0) != -i64::from(libc::ENOSYS) {
            code |= 4;
        }
        // SAFETY: getcwd into a local buffer.
        let mut buf = [0u8; 64];
        if unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) } < 0 {
            code |= 8;
        }
        code
    });
    assert_eq!(exited(st), 0);
}

fn socket_path() -> PathBuf {
    std::env::temp_dir().join(format!("berth-seccomp-test-{}.sock", std::process::id()))
}

/// The agent side: receive the state and the fd, then answer one
/// notification for getppid with 4242.
fn agent(listener: &UnixListener) -> (serde_json::Value, libc::seccomp_data) {
    let (conn, _) = listener.accept().expect("accept");
    let mut buf = vec![0u8; 8192];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (len, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let fd = msg
            .cmsgs()
            .expect("cmsgs")
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd in SCM_RIGHTS");
        (msg.bytes, fd)
    };
    // SAFETY: SCM_RIGHTS gave this process a new fd.
    let notify_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let state: serde_json::Value = serde_json::from_slice(&buf[..len]).expect("state JSON");

    // SAFETY: seccomp_notif is plain data; the ioctls fill and read the
    // structs passed by pointer.
    unsafe {
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        assert_eq!(
            libc::ioctl(
                notify_fd.as_fd().as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut req
            ),
            0,
            "NOTIF_RECV: {}",
            std::io::Error::last_os_error()
        );
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        resp.val = 4242;
        assert_eq!(
            libc::ioctl(
                notify_fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp
            ),
            0,
            "NOTIF_SEND: {}",
            std::io::Error::last_os_error()
        );
        (state, req.data)
    }
}

#[test]
fn notify_hands_the_fd_to_the_agent() {
    let path = socket_path();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind listener");
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{}","listenerMetadata":"meta",
            "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}}]}}"#,
        path.display()
    );
    let seccomp: LinuxSeccomp = serde_json::from_str(&json).expect("parses");
    let p = compile(&seccomp).expect("compiles");
    assert!(p.notifies());
    let state = serde_json::json!({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":1,"bundle":"/b"});
    let state_json = state.to_string();
    let agent_thread = std::thread::spawn(move || agent(&listener));
    // As the init does: connect while the host path is reachable, then
    // install and hand the listener fd over.
    let sock = connect_listener(&seccomp)
        .expect("connect")
        .expect("notifies");
    let (_, st) = in_child(&p, move |fd| {
        let Some(fd) = fd else { return 10 };
        if send_listener_fd(&sock, &fd, &seccomp, 4321, &state_json).is_err() {
            return 11;
        }
        drop(fd);
        match raw(libc::SYS_getppid, 0) {
            4242 => 0,
            _ => 12,
        }
    });
    let (got, data) = agent_thread.join().expect("agent");
    let _ = std::fs::remove_file(&path);
    assert_eq!(exited(st), 0);
    assert_eq!(got["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(got["metadata"], "meta");
    assert_eq!(got["pid"], 4321);
    assert_eq!(got["state"], state);
    assert_eq!(i64::from(data.nr), libc::SYS_getppid);
}
