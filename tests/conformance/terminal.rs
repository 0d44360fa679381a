//! `process.terminal` and `exec --tty`: the pty master handed over a console socket as runc
//! hands it (SCM_RIGHTS), a working terminal inside (/dev/console too), consoleSize, and
//! `run`/`exec -t` relaying the terminal when the runtime is itself run on one.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{ensure, ensure_eq, reaper, Bundle, Error, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

use crate::common::{pass, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "terminal.console-socket",
            create_terminal_over_console_socket
        ),
        case!("terminal.console-socket", exec_tty_over_console_socket),
        case!("terminal.relay", run_relays_terminal),
        case!("terminal.relay", exec_tty_relays_terminal),
    ]
}

fn wait_readable(fd: &OwnedFd, deadline: Instant) -> Result<bool, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(Error(format!("poll: {e}"))),
    }
}

/// The one fd of the first message on the console socket, and its payload.
fn receive_master(listener: &UnixListener) -> Result<(OwnedFd, String), Error> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + SHORT;
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                ensure!(
                    Instant::now() < deadline,
                    "nothing connected to the console socket"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    };
    conn.set_nonblocking(false)?;
    let conn = OwnedFd::from(conn);
    ensure!(
        wait_readable(&conn, deadline)?,
        "no message on the console socket"
    );
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error(format!("recvmsg: {e}")))?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| Error(format!("cmsgs: {e}")))? {
        if let ControlMessageOwned::ScmRights(r) = c {
            // SAFETY: the kernel installed these fds in this process for us.
            fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let n = msg.bytes;
    ensure_eq!(fds.len(), 1, "fds in the console message");
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    Ok((fds.remove(0), name))
}

/// Reads `fd` until the text contains `needle`; everything read so far.
fn read_until(fd: &OwnedFd, needle: &str, timeout: Duration) -> Result<String, Error> {
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while !text.contains(needle) {
        ensure!(
            Instant::now() < deadline,
            "terminal never showed {needle:?}; got {text:?}"
        );
        if !wait_readable(fd, deadline)? {
            continue;
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                ensure!(
                    text.contains(needle),
                    "terminal closed before {needle:?}: {text:?}"
                );
            }
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(Error(format!("read pty: {e}"))),
        }
    }
    Ok(text)
}

fn type_in(fd: &OwnedFd, text: &str) -> Result<(), Error> {
    nix::unistd::write(fd, text.as_bytes()).map_err(|e| Error(format!("write pty: {e}")))?;
    Ok(())
}

fn terminal_bundle(rt: &Runtime, args: &[&str]) -> Result<Bundle, Error> {
    let mut b = rt.bundle(args)?;
    b.config["process"]["terminal"] = json!(true);
    if let Some(env) = b.config["process"]["env"].as_array_mut() {
        env.push(json!("TERM=xterm"));
    }
    b.save()?;
    Ok(b)
}

fn create_terminal_over_console_socket(rt: &Runtime) -> Outcome {
    let mut b = terminal_bundle(rt, &["sh"])?;
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    b.save()?;
    let sock = rt.tmp().join("console.sock");
    let listener = UnixListener::bind(&sock)?;
    let id = rt.new_id();
    let s = sock.display().to_string();
    rt.create_with(&id, &b, &["--console-socket", &s])?.ok()?;
    let (master, _name) = receive_master(&listener)?;
    rt.start(&id)?.ok()?;
    type_in(
        &master,
        "tty; stty size; grep ' /dev/console ' /proc/self/mountinfo; echo end-$((6*7))\n",
    )?;
    let out = read_until(&master, "end-42", SHORT)?;
    ensure!(out.contains("/dev/pts/"), "`tty` inside: {out:?}");
    ensure!(out.contains("33 111"), "consoleSize not applied: {out:?}");
    ensure!(
        out.lines()
            .any(|l| l.contains(" /dev/console ") && l.contains("devpts")),
        "/dev/console is not the pty: {out:?}"
    );
    type_in(&master, "exit 5\n")?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn exec_tty_over_console_socket(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["sleep", "1000"])?;
    let id = rt.start_new(&b)?;
    let sock = rt.tmp().join("exec-console.sock");
    let listener = UnixListener::bind(&sock)?;
    let s = sock.display().to_string();
    rt.cmd(&["exec", "-d", "--tty", "--console-socket", &s, &id, "sh"])?
        .ok()?;
    let (master, _) = receive_master(&listener)?;
    type_in(&master, "tty; echo exec-$((6*7))\n")?;
    let out = read_until(&master, "exec-42", SHORT)?;
    ensure!(
        out.contains("/dev/pts/"),
        "`tty` in the exec'd shell: {out:?}"
    );
    type_in(&master, "exit\n")?;
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

/// The runtime with its stdio on a fresh pty of `rows` x `cols`; our master end.
fn spawn_on_pty(rt: &Runtime, args: &[&str]) -> Result<(Child, OwnedFd), Error> {
    let ws = nix::pty::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).map_err(|e| Error(format!("openpty: {e}")))?;
    let mut cmd = Command::new(&rt.bin);
    cmd.arg("--root").arg(&rt.root).args(args);
    cmd.stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave));
    let child = reaper::spawn(&mut cmd)?;
    // The slave copies went to the child with `cmd`.
    drop(cmd);
    Ok((child, pty.master))
}

fn wait_child(mut child: Child, master: &OwnedFd) -> Result<i32, Error> {
    let deadline = Instant::now() + SHORT;
    let r = loop {
        // Keep the pty drained so the runtime never blocks writing to it.
        let _ = read_until(master, "\u{0}never", Duration::from_millis(20));
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s.code().unwrap_or(-1)),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(Error("the runtime did not exit".into()));
            }
            Ok(None) => {}
            Err(e) => break Err(e.into()),
        }
    };
    reaper::release(child.id());
    r
}

/// Prints the tty, the window size at first look and once it is set (runc 1.1 sets it only
/// after the process started), echoes a typed line, prints the size once it followed the
/// user's terminal to 40x120 (see `resize`), and ends with `end`.
fn size_script(end: &str) -> String {
    format!(
        "tty; echo first=$(stty size 2>&1); i=0; \
         while [ -z \"$(stty size 2>/dev/null)\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
         echo size=$(stty size); echo ready; read x; echo got-$x; i=0; \
         while [ \"$(stty size)\" != \"40 120\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
         echo after=$(stty size); {end}"
    )
}

/// The user resizes their terminal to 40x120: the size changes and the runtime, whose
/// terminal it is, gets SIGWINCH (sent by hand: the pty is not its controlling terminal).
fn resize(master: &OwnedFd, runtime_pid: u32) -> Result<(), Error> {
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize from our stack.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Error(format!(
            "TIOCSWINSZ: {}",
            std::io::Error::last_os_error()
        )));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runtime_pid as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .map_err(|e| Error(format!("kill -WINCH: {e}")))
}

fn check_size(out: &str) -> Result<(), Error> {
    ensure!(
        out.contains("after=40 120"),
        "window size did not follow SIGWINCH: {out:?}"
    );
    ensure!(
        out.contains("size=30 100"),
        "window size of the user's terminal: {out:?}"
    );
    // berth sets it before the process starts.
    ensure!(
        !berth_tests::runtime::is_berth() || out.contains("first=30 100"),
        "window size not set before the process started: {out:?}"
    );
    Ok(())
}

fn run_relays_terminal(rt: &Runtime) -> Outcome {
    let b = terminal_bundle(rt, &["sh", "-c", &size_script("exit 3")])?;
    let id = rt.new_id();
    let dir = b.dir.display().to_string();
    let (child, master) = spawn_on_pty(rt, &["run", "--bundle", &dir, &id])?;
    let out = read_until(&master, "ready", SHORT);
    let out = out.and_then(|o| {
        resize(&master, child.id())?;
        type_in(&master, "hello\n")?;
        Ok(o + &read_until(&master, "after=", SHORT)?)
    });
    let code = wait_child(child, &master)?;
    let out = out?;
    ensure!(out.contains("/dev/pts/"), "`tty` inside: {out:?}");
    check_size(&out)?;
    ensure_eq!(code, 3, "exit code of run with a terminal");
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn exec_tty_relays_terminal(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["sleep", "1000"])?;
    let id = rt.start_new(&b)?;
    let (child, master) =
        spawn_on_pty(rt, &["exec", "-t", &id, "sh", "-c", &size_script("exit 4")])?;
    let out = read_until(&master, "ready", SHORT);
    let out = out.and_then(|o| {
        resize(&master, child.id())?;
        type_in(&master, "hi\n")?;
        Ok(o + &read_until(&master, "after=", SHORT)?)
    });
    let code = wait_child(child, &master)?;
    let out = out?;
    ensure!(out.contains("/dev/pts/"), "`tty` in exec: {out:?}");
    check_size(&out)?;
    ensure_eq!(code, 4, "exit code of exec -t");
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
