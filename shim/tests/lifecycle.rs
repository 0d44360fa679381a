//! Exit status, OOM, attach, terminal, control, surviving the caller, bad input.

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn exit_code_in_foreground_and_exit_file() {
    let c = Ctx::new("code", &["sh", "-c", "exit 42"]);
    let exit = c.p("exit.json");
    let out = c
        .shim(&[
            "--foreground",
            "--exit-file",
            exit.to_str().unwrap(),
            "--rm",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(42));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["pid"].as_i64().unwrap() > 0);
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&exit).unwrap()).unwrap();
    assert_eq!(rec["exit_code"], 42);
    assert_eq!(rec["signal"], serde_json::Value::Null);
    assert_eq!(rec["oom_killed"], false);
    assert!(rec["started_at"].as_str().unwrap() <= rec["finished_at"].as_str().unwrap());
    assert!(!c.runtime_list().contains(&c.id), "--rm left the container");
}

#[test]
fn killed_by_signal() {
    let c = Ctx::new("signal", &["sleep", "100"]);
    let exit = c.p("exit.json");
    let mut shim = c
        .shim(&["--foreground", "--exit-file", exit.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(shim.stdout.as_mut().unwrap(), &mut first).unwrap();
    let st = Command::new(runtime())
        .arg("--root")
        .arg(&c.root)
        .args(["kill", &c.id, "KILL"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(shim.wait().unwrap().code(), Some(137));
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&exit).unwrap()).unwrap();
    assert_eq!(rec["signal"], 9);
    assert_eq!(rec["exit_code"], 137);
}

#[test]
fn oom_kill_is_reported() {
    if !memory_cgroup() {
        eprintln!("SKIP oom_kill_is_reported: no memory cgroup controller on this host");
        return;
    }
    let c = Ctx::new("oom", &["sh", "-c", "tail /dev/zero"]);
    c.config(|v| {
        v["linux"]["resources"] =
            serde_json::json!({"memory": {"limit": 16777216, "swap": 16777216}});
    });
    let exit = c.p("exit.json");
    let out = c
        .shim(&[
            "--foreground",
            "--exit-file",
            exit.to_str().unwrap(),
            "--rm",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("cgroup") && !exit.exists() {
        eprintln!(
            "SKIP oom_kill_is_reported: the runtime cannot set a memory limit here: {stderr}"
        );
        return;
    }
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&exit).unwrap()).unwrap();
    assert_eq!(rec["signal"], 9, "{rec}");
    assert_eq!(rec["oom_killed"], true, "{rec}");
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(ctrl.path().join("berth-shim-test"));
    }
}

fn connect(path: &Path) -> OwnedFd {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: fd was just created.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    for (d, s) in addr.sun_path.iter_mut().zip(path.to_str().unwrap().bytes()) {
        *d = s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
    // SAFETY: addr is a valid sockaddr_un.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    };
    assert_eq!(
        r,
        0,
        "connect {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    fd
}

/// All stdout packets (tag 2) until the shim closes the socket.
fn read_all(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: buf is writable.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
        if n <= 0 {
            return out;
        }
        if buf[0] == 2 {
            out.extend_from_slice(&buf[1..n as usize]);
        }
    }
}

#[test]
fn attach_two_readers_and_stdin() {
    let c = Ctx::new(
        "attach",
        &[
            "sh",
            "-c",
            "sleep 1; read x; echo got-$x; seq 1 5000; echo done",
        ],
    );
    let sock = c.p("attach.sock");
    let exit = c.p("exit.json");
    c.start(&[
        "--stdin",
        "--attach-socket",
        sock.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let a = connect(&sock);
    let b = connect(&sock);
    let msg = b"hello\n";
    // SAFETY: msg is readable.
    let n = unsafe { libc::send(a.as_raw_fd(), msg.as_ptr() as *const _, msg.len(), 0) };
    assert_eq!(n, msg.len() as isize);
    let tb = std::thread::spawn(move || read_all(&b));
    let out_a = read_all(&a);
    let out_b = tb.join().unwrap();
    let rec = c.wait_exit(&exit, 30);
    assert_eq!(rec["exit_code"], 0);
    let mut expect = b"got-hello\n".to_vec();
    for i in 1..=5000 {
        expect.extend(format!("{i}\n").bytes());
    }
    expect.extend(b"done\n");
    assert!(out_a == expect, "reader a got {} bytes", out_a.len());
    assert!(out_b == expect, "reader b got {} bytes", out_b.len());
}

#[test]
fn stuck_reader_blocks_nothing() {
    let c = Ctx::new("stuck", &["sh", "-c", "sleep 0.5; seq 1 3000000"]);
    let sock = c.p("attach.sock");
    let log = c.p("ctr.log");
    let exit = c.p("exit.json");
    c.start(&[
        "--attach-socket",
        sock.to_str().unwrap(),
        "--log-path",
        log.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let never_reads = connect(&sock);
    let t0 = Instant::now();
    let rec = c.wait_exit(&exit, 60);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(rec["exit_code"], 0);
    let (lines, _) = cri_lines(&std::fs::read(&log).unwrap());
    assert!(
        lines == numbered("", 3_000_000),
        "log incomplete with a stuck reader"
    );
    drop(never_reads);
}

#[test]
fn terminal_and_resize() {
    // Wait (up to 30 s) for the resize instead of sleeping a fixed time; a resize that never
    // arrives shows up as the wrong size.
    let c = Ctx::new(
        "tty",
        &[
            "sh",
            "-c",
            "tty; i=0; while [ \"$(stty size)\" != '33 77' ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.1; done; stty size",
        ],
    );
    c.config(|v| v["process"]["terminal"] = true.into());
    let log = c.p("ctr.log");
    let ctl = c.p("ctl");
    let exit = c.p("exit.json");
    c.start(&[
        "--terminal",
        "--log-path",
        log.to_str().unwrap(),
        "--control-fifo",
        ctl.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let mut f = std::fs::OpenOptions::new().write(true).open(&ctl).unwrap();
    f.write_all(b"resize 33 77\n").unwrap();
    let rec = c.wait_exit(&exit, 30);
    assert_eq!(rec["exit_code"], 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 77"), "{text}");
}

#[test]
fn close_stdin_by_control() {
    let c = Ctx::new("eof", &["sh", "-c", "cat; echo stdin-closed"]);
    let log = c.p("ctr.log");
    let ctl = c.p("ctl");
    let fifo = c.p("stdin");
    let exit = c.p("exit.json");
    // SAFETY: path is a valid C string.
    let cpath = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    c.start(&[
        "--stdin-fifo",
        fifo.to_str().unwrap(),
        "--log-path",
        log.to_str().unwrap(),
        "--control-fifo",
        ctl.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"via-fifo\n").unwrap();
    // Close only once the line went through (cat echoed it into the log).
    wait_for(
        || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains("via-fifo"))
        },
        30,
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ctl)
        .unwrap()
        .write_all(b"close-stdin\n")
        .unwrap();
    let rec = c.wait_exit(&exit, 30);
    assert_eq!(rec["exit_code"], 0);
    let (lines, _) = cri_lines(&std::fs::read(&log).unwrap());
    assert_eq!(lines, vec![b"via-fifo".to_vec(), b"stdin-closed".to_vec()]);
    drop(w);
}

#[test]
fn outlives_its_caller() {
    let c = Ctx::new("orphan", &["sh", "-c", PRINT_UNTIL_STOP]);
    let log = c.p("ctr.log");
    let exit = c.p("exit.json");
    let args: Vec<String> = c
        .base_args()
        .into_iter()
        .chain(["--log-path".into(), log.display().to_string()])
        .chain(["--exit-file".into(), exit.display().to_string()])
        .collect();
    // The caller: a shell that starts the shim and then lingers; we kill it with SIGKILL.
    let mut caller = Command::new("sh")
        .arg("-c")
        .arg("\"$@\"; sleep 60")
        .arg("sh")
        .arg(SHIM)
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.shim_pid();
    caller.kill().unwrap();
    caller.wait().unwrap();
    // The container is running and logging with its caller gone.
    let size_then = wait_for(
        || {
            std::fs::metadata(&log)
                .ok()
                .map(|m| m.len())
                .filter(|&n| n > 0)
        },
        30,
    );
    // SAFETY: signal 0 only checks that the shim is alive.
    assert_eq!(
        unsafe { libc::kill(pid, 0) },
        0,
        "shim died with its caller"
    );
    // The container's last line is only written now, after its caller died.
    c.signal_container("stop");
    let rec = c.wait_exit(&exit, 90);
    assert_eq!(rec["exit_code"], 0);
    let data = std::fs::read(&log).unwrap();
    assert!(data.len() as u64 > size_then, "log stopped growing");
    assert!(
        counted_then_end(&cri_lines(&data).0),
        "log incomplete:\n{}",
        String::from_utf8_lossy(&data)
    );
}

fn leftovers(c: &Ctx) -> Vec<String> {
    let mut v = Vec::new();
    if !c.runtime_list().trim().is_empty() {
        v.push(format!("container: {}", c.runtime_list()));
    }
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&c.id) && !stat.contains(") Z ") {
            v.push(format!("process {}", p.file_name().to_string_lossy()));
        }
    }
    for f in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with("berth-shim-") && name.contains(&c.id) {
            v.push(format!("file {name}"));
        }
    }
    v
}

#[test]
fn bad_input_fails_cleanly() {
    let c = Ctx::new("bad", &["true"]);
    let run = |args: &[&str]| {
        let mut cmd = Command::new(SHIM);
        cmd.args(["--id", &c.id, "--runtime-root", c.root.to_str().unwrap()])
            .args(args);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let rt = runtime().display().to_string();
    let b = c.bundle.to_str().unwrap();

    let (code, err) = run(&["--bundle", "/nonexistent-bundle", "--runtime", &rt]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--bundle /nonexistent-bundle"), "{err}");

    let (code, err) = run(&["--bundle", b, "--runtime", "/nonexistent/runtime"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--runtime") && err.contains("/nonexistent/runtime"),
        "{err}"
    );

    let (code, err) = run(&[
        "--bundle",
        b,
        "--runtime",
        &rt,
        "--log-path",
        "/nonexistent/dir/x.log",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--log-path") && err.contains("/nonexistent/dir/x.log"),
        "{err}"
    );

    // The runtime's own error text comes through verbatim.
    c.config(|v| v["root"]["path"] = "/nonexistent-rootfs-for-shim-test".into());
    let (code, err) = run(&["--bundle", b, "--runtime", &rt]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nonexistent-rootfs-for-shim-test"), "{err}");

    let (code, err) = run(&["--bundle", b, "--runtime", &rt, "--log-format", "xml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--log-format"), "{err}");

    // The failed shim's processes may take a moment to be gone on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !leftovers(&c).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(&c), Vec::<String>::new());
}

#[test]
fn report_on_sync_fd() {
    use std::os::unix::process::CommandExt;
    let c = Ctx::new("syncfd", &["true"]);
    let exit = c.p("exit.json");
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wfd = w.as_raw_fd();
    let mut cmd = c.shim(&["--sync-fd", "7", "--exit-file", exit.to_str().unwrap()]);
    // SAFETY: dup2 is async-signal-safe; it runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wfd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let out = cmd.output().unwrap();
    drop(w);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "report went to stdout");
    let mut report = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut report).unwrap();
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(v["pid"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(c.wait_exit(&exit, 30)["exit_code"], 0);
}
