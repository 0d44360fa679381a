//! Reaping of orphaned container processes.
//!
//! `create` leaves the container's init behind as an orphan. PID 1 on the test machines does
//! not reap, so this process becomes a child subreaper and reaps every child that is not a
//! runtime command it is itself waiting for (those are registered while they run).

use std::collections::HashSet;
use std::process::{Child, Command};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

static OWNED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
static START: Once = Once::new();

/// Makes this process a subreaper and starts the reaping thread (idempotent).
pub fn init() {
    START.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            eprintln!("berth-tests: PR_SET_CHILD_SUBREAPER failed: {e}");
        }
        let _ = thread::Builder::new()
            .name("reaper".into())
            .spawn(reap_loop);
    });
}

fn owned() -> std::sync::MutexGuard<'static, Option<HashSet<i32>>> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Spawns a command whose exit status its caller will collect itself.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    init();
    // Held across fork so the reaper cannot take the child's status before it is registered.
    let mut guard = owned();
    let child = cmd.spawn()?;
    guard
        .get_or_insert_with(HashSet::new)
        .insert(child.id() as i32);
    Ok(child)
}

/// Called once the caller has waited for a child started by `spawn`.
pub fn release(pid: u32) {
    if let Some(set) = owned().as_mut() {
        set.remove(&(pid as i32));
    }
}

fn reap_loop() {
    loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        match waitid(Id::All, flags) {
            Ok(status) => {
                let Some(pid) = status_pid(&status) else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let mine = owned().as_ref().is_some_and(|s| s.contains(&pid.as_raw()));
                if mine {
                    // Its owner is about to collect it.
                    thread::sleep(Duration::from_millis(5));
                } else {
                    let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn status_pid(s: &WaitStatus) -> Option<Pid> {
    match *s {
        WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _) => Some(p),
        _ => s.pid(),
    }
}

/// `Command::output` for a child the reaper must leave alone.
pub fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = spawn(cmd)?;
    let pid = child.id();
    let out = child.wait_with_output();
    release(pid);
    out
}
