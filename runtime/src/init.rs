//! The container's init process, from clone to execve. Each phase is named
//! after the spec step it implements; the order is the order the spec and
//! the kernel need.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType as Ns, Spec};

use crate::cgroups::SelfJoin;
use crate::error::{Error, Result};
use crate::finalize::Finalize;
use crate::namespaces::Plan;
use crate::procfs::ProcFs;
use crate::rootfs::Rootfs;
use crate::sync::{Channel, Msg};
use crate::{hooks, identity};

pub struct Init<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Runtime fds the clone inherited that the init must not keep (the
    /// state directory lock).
    pub inherited: Vec<std::os::fd::RawFd>,
    /// New namespaces to unshare first thing (left out of the clone so that
    /// they overlap the runtime's cgroup work; `Plan::init_unshares`).
    pub unshare: CloneFlags,
    /// Keeps the init off the runtime's CPU while it unshares them.
    pub spread: Option<crate::affinity::Spread>,
    /// The runtime has prestart or createRuntime hooks to run between the
    /// init's mounts and its pivot_root (`MountsReady`/`HooksDone`).
    /// Without any, the init does not stop there: one round trip less.
    pub pause_for_hooks: bool,
}

/// Runs in the cloned child; never returns.
pub fn run(init: Init, chan: Channel) -> ! {
    for fd in &init.inherited {
        let _ = nix::unistd::close(*fd);
    }
    // Before joining the cgroup, as it was part of the clone before; a
    // failure is reported once the runtime listens (after `Go`).
    let early = if init.unshare.is_empty() {
        Ok(())
    } else {
        let moved = init.spread.filter(|s| s.leave());
        let made = unshare_mount_last(init.unshare);
        match moved {
            Some(s) => made.and_then(|()| s.restore_mask()),
            None => made,
        }
    };
    let mut created = false;
    let err = match init.phases(&chan, &mut created, early) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if created {
        // The runtime that created us is gone; stderr is the container's.
        eprintln!("berth init: {err}");
    } else {
        let mut msg = err.to_string();
        msg.truncate(3500);
        let _ = chan.send(&Msg::Failed(msg));
    }
    // SAFETY: _exit skips destructors of state shared with the parent.
    unsafe { libc::_exit(127) }
}

/// unshare(2) copies the mount table first, under the mount namespace lock
/// that the runtime's read of /proc/self/mountinfo (its cgroup plan, at the
/// same moment on the other CPU) also holds: the two waited for each other.
/// Copied after the slow network namespace, the table is free by then
/// (0.2 ms less per `run`, 4 x 200 alternating pairs; 0.05 ms when the
/// runtime reads mountinfo before the clone instead).
fn unshare_mount_last(flags: CloneFlags) -> Result<()> {
    let first = flags - CloneFlags::CLONE_NEWNS;
    for step in [first, flags & CloneFlags::CLONE_NEWNS] {
        if !step.is_empty() {
            unshare(step)
                .map_err(|e| Error::sys("unshare", crate::namespaces::describe(step), e))?;
        }
    }
    Ok(())
}

impl Init<'_> {
    fn phases(&self, chan: &Channel, created: &mut bool, early: Result<()>) -> Result<Infallible> {
        let process = self
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "required"))?;
        let (state_json, exec_fifo) = wait_for_go(chan)?;
        early?;
        // Idempotent; needed here when a rootless runtime had to leave the
        // clone dumpable to write its id maps (process::spawn).
        crate::selfexe::protect()?;
        self.enter_namespaces()?;
        // Before the rootfs can redirect /proc (see procfs.rs).
        let proc = ProcFs::open()?;
        let labels = crate::lsm::Labels::from_spec(self.spec)?;
        if !self.no_new_keyring {
            // Kernels without keyrings, or seccomp profiles of the caller
            // that deny keyctl, are not a reason to fail (runc ignores them).
            let _ = crate::sys::join_new_session_keyring();
        }
        let rootfs = Rootfs {
            spec: self.spec,
            path: self.rootfs,
            bundle: self.bundle,
            userns: self.userns(),
            netns: self.plan.creates(Ns::Network) || self.plan.joins(Ns::Network),
        };
        rootfs.prepare()?;
        // The agent's socket is a host path: connect while it is reachable.
        let listener = match self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
        {
            Some(s) => crate::seccomp::connect_listener(s)?,
            None => None,
        };
        if self.pause_for_hooks {
            chan.send(&Msg::MountsReady)?;
            chan.expect(Msg::HooksDone)?;
        }
        hooks::run(
            hooks::CREATE_CONTAINER,
            hooks::of_kind(self.spec.hooks().as_ref(), hooks::CREATE_CONTAINER),
            state_json.as_bytes(),
        )?;
        rootfs.enter(self.no_pivot)?;
        self.set_uts()?;
        // Before readonlyPaths makes /proc/sys read-only (runc's order).
        self.set_sysctl(&proc)?;
        rootfs.finish()?;
        if process.terminal().unwrap_or(false) {
            let socket = self
                .console_socket
                .as_ref()
                .ok_or_else(|| Error::config("process.terminal", "needs --console-socket"))?;
            let size = process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            crate::tty::setup_console(socket, size, true)?;
        }
        identity::set_rlimits(process.rlimits().as_deref().unwrap_or(&[]))?;
        identity::set_oom_score_adj(&proc, process.oom_score_adj())?;
        let seccomp = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref());
        let agent = match (seccomp, listener) {
            (Some(s), Some(socket)) => Some(crate::finalize::Agent {
                socket,
                seccomp: s,
                state_json: state_json.clone(),
            }),
            _ => None,
        };
        let last = Finalize::prepare(process, seccomp, self.userns(), self.preserve_fds)?
            .with_agent(agent);
        chan.send(&Msg::Created)?;
        *created = true;

        wait_for_start(&exec_fifo)?;
        hooks::run(
            hooks::START_CONTAINER,
            hooks::of_kind(self.spec.hooks().as_ref(), hooks::START_CONTAINER),
            state_json.as_bytes(),
        )?;
        // While the init may still change its own labels: before the user
        // switch, the capability drop and no_new_privs (as runc).
        labels.apply(&proc)?;
        last.exec()
    }

    fn userns(&self) -> bool {
        self.plan.creates(Ns::User) || self.plan.joins(Ns::User)
    }

    fn enter_namespaces(&self) -> Result<()> {
        // User, pid and time were entered by the intermediate process.
        crate::namespaces::join(
            self.plan,
            &[Ns::Network, Ns::Ipc, Ns::Uts, Ns::Mount, Ns::Cgroup],
        )?;
        if self.plan.creates(Ns::Cgroup) {
            unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| Error::sys("unshare", "cgroup namespace", e))?;
        }
        if self.plan.creates(Ns::User) || self.plan.joins(Ns::User) {
            // Become root of the user namespace (mapped by the parent, or by
            // whoever made the joined one): the host uid is unmapped there.
            let root_u = nix::unistd::Uid::from_raw(0);
            let root_g = nix::unistd::Gid::from_raw(0);
            nix::unistd::setresgid(root_g, root_g, root_g)
                .map_err(|e| Error::config("linux.gidMappings", format!("setresgid(0): {e}")))?;
            nix::unistd::setresuid(root_u, root_u, root_u)
                .map_err(|e| Error::config("linux.uidMappings", format!("setresuid(0): {e}")))?;
        }
        Ok(())
    }

    fn set_uts(&self) -> Result<()> {
        if let Some(h) = self.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h)
                .map_err(|e| Error::config("hostname", format!("sethostname: {e}")))?;
        }
        if let Some(d) = self.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            // SAFETY: setdomainname reads len bytes from a valid buffer.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Error::config("domainname", format!("setdomainname: {e}")));
            }
        }
        Ok(())
    }

    fn set_sysctl(&self, proc: &ProcFs) -> Result<()> {
        let Some(sysctl) = self.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
            return Ok(());
        };
        for (key, value) in sysctl {
            let field = || format!("linux.sysctl.{key}");
            let rel = crate::procfs::sysctl_path(key)
                .ok_or_else(|| Error::config(field(), "invalid key"))?;
            proc.write(&rel, value.as_bytes())
                .map_err(|e| Error::config(field(), format!("/proc/{rel}: {e}")))?;
        }
        Ok(())
    }
}

/// Wait for `Go` and the exec fifo's O_PATH fd it carries; join the cgroup
/// on the way if the runtime sends `Join` (first, so (nearly) everything
/// the init charges is inside the limits).
fn wait_for_go(chan: &Channel) -> Result<(String, OwnedFd)> {
    let (mut msg, mut fds) = chan.recv_with_fds()?;
    let mut joined = Ok(());
    if let Some(Msg::Join(paths)) = msg {
        joined = if fds.len() == paths.len() {
            SelfJoin::from_parts(paths, fds).join().map_err(Error::from)
        } else {
            Err(Error::Other(format!(
                "sync channel: {} cgroup files for {} paths",
                fds.len(),
                paths.len()
            )))
        };
        (msg, fds) = chan.recv_with_fds()?;
    }
    // A failed join is reported once the runtime listens for it.
    match msg {
        Some(Msg::Go(state)) => {
            joined?;
            let fifo = fds
                .pop()
                .filter(|_| fds.is_empty())
                .ok_or_else(|| Error::Other("sync channel: Go without the exec fifo".into()))?;
            Ok((state, fifo))
        }
        Some(other) => Err(Error::Other(format!(
            "sync channel: expected Go, got {other:?}"
        ))),
        None => Err(Error::Init(
            "runtime exited before the container was set up".into(),
        )),
    }
}

/// Block until `start` opens the exec fifo, then tell it we go on. The
/// write end is close-on-exec: `start` sees EOF once execve succeeded.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let w = crate::sys::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "exec fifo", e))?;
    nix::unistd::write(&w, b"0").map_err(|e| Error::sys("write", "exec fifo", e))?;
    // Kept open until execve closes it.
    std::mem::forget(w);
    Ok(())
}
