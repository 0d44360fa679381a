//! `run`: create and start in one call; in the foreground, forward signals
//! to the container, wait for it and delete it, returning its exit code
//! (128 + signal when killed, like a shell). A terminal without a console
//! socket is relayed to berth's own stdio.

use std::os::fd::AsFd;

use nix::unistd::Pid;

use super::create::{create_from, CreateOpts, Created};
use super::delete::Known;
use super::foreground::{self, Signals};
use super::Global;
use crate::config::Bundle;
use crate::error::Result;
use crate::tty::{self, ConsoleListener};

pub fn run(g: &Global, opts: &CreateOpts, detach: bool) -> Result<i32> {
    if !detach {
        // The init may be a grandchild (intermediate process): become its
        // reaper so we can wait for it.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let bundle = Bundle::load(&opts.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    // A terminal nobody asked to receive: berth relays it itself.
    let relay = if !detach && opts.console_socket.is_none() && terminal {
        Some(ConsoleListener::new()?)
    } else {
        None
    };
    let opts = &CreateOpts {
        hold_fifo: relay.is_none(),
        console_socket: relay
            .as_ref()
            .map(|r| r.path().to_path_buf())
            .or_else(|| opts.console_socket.clone()),
        ..opts.clone()
    };
    let mut created = create_from(g, opts, bundle)?;
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
    let held = created.fifo.take();
    if let Err(e) = super::start::release(&created.dir, &created.state, held) {
        drop(created);
        let _ = super::delete::delete(g, &opts.id, true);
        return Err(e);
    }
    super::start::poststart_with(&created.spec, &created.state);
    if detach {
        return Ok(0);
    }
    // Blocked only now: the init must not inherit a blocked signal mask.
    let signals = Signals::block()?;
    let Created {
        dir,
        state,
        spec,
        cgroup,
        ..
    } = created;
    // Release the lock: delete takes it again.
    drop(dir);
    let code = foreground::wait(pid, &signals, master)?;
    let known = Known {
        pid: state.pid,
        init_start_time: state.init_start_time,
        spec: &spec,
        cgroup: cgroup.as_ref(),
        reaped_alone: crate::namespaces::Plan::from_spec(&spec)
            .creates(oci_spec::runtime::LinuxNamespaceType::Pid),
    };
    super::delete::delete_known(g, &opts.id, true, Some(known))?;
    Ok(code)
}
