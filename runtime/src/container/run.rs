//! `run`: create and start in one call; in the foreground, forward signals
//! to the container, wait for it and delete it, returning its exit code
//! (128 + signal when killed, like a shell). A terminal without a console
//! socket is relayed to berth's own stdio.

use std::os::fd::AsFd;
use std::path::Path;

use nix::unistd::Pid;

use super::create::{create, CreateOpts};
use super::foreground::{self, Signals};
use super::Global;
use crate::error::Result;
use crate::tty::{self, ConsoleListener};

pub fn run(g: &Global, opts: &CreateOpts, detach: bool) -> Result<i32> {
    if !detach {
        // The init may be a grandchild (intermediate process): become its
        // reaper so we can wait for it.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // A terminal nobody asked to receive: berth relays it itself.
    let relay = if !detach && opts.console_socket.is_none() && wants_terminal(&opts.bundle) {
        Some(ConsoleListener::new()?)
    } else {
        None
    };
    let opts = &CreateOpts {
        console_socket: relay
            .as_ref()
            .map(|r| r.path().to_path_buf())
            .or_else(|| opts.console_socket.clone()),
        ..opts.clone()
    };
    let created = create(g, opts)?;
    let pid = Pid::from_raw(created.state.pid);
    let master = match relay.as_ref().map(ConsoleListener::receive).transpose() {
        Ok(m) => m,
        Err(e) => {
            drop(created);
            let _ = super::delete::delete(g, &opts.id, true);
            return Err(e);
        }
    };
    drop(relay);
    if let Some(m) = &master {
        // Before the process starts, so its first look at the size is right.
        tty::copy_size(std::io::stdin().as_fd(), m.as_fd())?;
    }
    if let Err(e) = super::start::release(&created.dir, &created.state) {
        drop(created);
        let _ = super::delete::delete(g, &opts.id, true);
        return Err(e);
    }
    super::start::poststart(&created.dir, &created.state);
    if detach {
        return Ok(0);
    }
    // Blocked only now: the init must not inherit a blocked signal mask.
    let signals = Signals::block()?;
    // Release the lock: delete takes it again.
    drop(created);
    let code = foreground::wait(pid, &signals, master)?;
    super::delete::delete(g, &opts.id, true)?;
    Ok(code)
}

/// process.terminal of the bundle's config; a config that does not parse
/// is left for `create` to report.
fn wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
        .is_some_and(|v| v["process"]["terminal"] == serde_json::Value::Bool(true))
}
