//! `exec`: a new process in a created or running container. It joins every
//! namespace of the init (one setns on the init's pidfd, which the kernel
//! applies user namespace first), the init's cgroup, and ends like the init:
//! terminal, rlimits, capabilities, no_new_privs, seccomp, user, execve.
//!
//! The runtime forks a helper that joins the cgroup and the namespaces. A
//! joined pid namespace only applies to children, so the helper clones the
//! process with CLONE_PARENT (the process becomes the runtime's own child,
//! which can wait for it) and exits.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType as Ns, LinuxSeccomp, Process};

use super::exec_process::check_process;
pub use super::exec_process::{load_process, process_from_config, Overrides};
use super::foreground::{self, Signals};
use super::Global;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::finalize::{Agent, Finalize};
use crate::lsm::Labels;
use crate::procfs::ProcFs;
use crate::state::{State, StateDir, Status};
use crate::sync::{self, Channel, Msg};
use crate::{identity, namespaces};

#[derive(Debug, Clone)]
pub struct ExecOpts {
    pub id: String,
    /// The complete process to run (see [`process_from_config`]).
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

/// Run `opts.process` in container `opts.id`. Detached: 0 once it is
/// running; otherwise its exit code.
pub fn exec(g: &Global, opts: &ExecOpts) -> Result<i32> {
    let dir = StateDir::open(&g.root, &opts.id)?;
    let state = dir.load()?;
    check_status(&state, opts.ignore_paused)?;
    let spec = dir.load_config()?;
    let process = with_relayed_size(opts)?;
    let p = &process;
    check_process(p)?;
    let terminal = p.terminal().unwrap_or(false);
    check_terminal(terminal, opts)?;
    // Checked against the host's LSMs, from the host's /sys.
    let labels = {
        let mut with_process = spec.clone();
        with_process.set_process(Some(p.clone()));
        Labels::from_spec(&with_process)?
    };

    let pidfd = crate::sys::pidfd_open(state.pid)
        .map_err(|e| Error::io("pidfd_open", format!("pid {}", state.pid), e))?;
    // The pidfd names the process the state recorded, not a reused pid.
    if !state.init_alive() {
        return Err(wrong_state(&state.id, Status::Stopped));
    }
    let target = Target {
        pid: state.pid,
        flags: namespace_flags(state.pid)?,
        pidfd,
    };
    // A rootless container may have been refused a cgroup.
    let cgroup = state.cgroup.as_ref().map(Cgroup::open).transpose()?;
    let (console, relay) = console_ends(terminal, opts)?;
    let signals = if opts.detach {
        None
    } else {
        Some(Signals::block()?)
    };
    let userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == Ns::User));
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    // A seccomp agent's socket is a host path: connected before any setns.
    let agent_socket = seccomp
        .map(crate::seccomp::connect_listener)
        .transpose()?
        .flatten();
    // Before the container can see /proc: see procfs.rs.
    let proc = ProcFs::open()?;
    // Nothing forked below may expose the berth binary (selfexe.rs).
    crate::selfexe::protect()?;
    let tenant = Tenant {
        process: p,
        seccomp,
        agent_socket,
        state_json: String::from_utf8_lossy(&state.to_oci_json()).into_owned(),
        userns,
        preserve_fds: opts.preserve_fds,
        console,
        cgroup: cgroup.as_ref(),
        target: &target,
        signals: signals.as_ref(),
        lock_fd: dir.lock_fd(),
        labels: &labels,
        proc: &proc,
    };
    let pid = spawn(&tenant)?;
    drop(tenant);
    // Other commands (kill, delete) may act on the container from now on.
    drop(dir);
    let started = (|| {
        if let Some(path) = &opts.pid_file {
            super::create::write_pid_file(path, pid)?;
        }
        relay
            .as_ref()
            .map(|s| crate::tty::recv_fd(s.as_fd()).map(|(fd, _)| fd))
            .transpose()
    })();
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            // Never leave a process nobody waits for behind an error.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(e);
        }
    };
    match &signals {
        None => Ok(0),
        Some(s) => foreground::wait(pid, s, master),
    }
}

/// The process to run; with a terminal berth relays itself, sized like
/// berth's own terminal before the process can look at it.
fn with_relayed_size(opts: &ExecOpts) -> Result<Process> {
    let mut process = opts.process.clone();
    let relayed = opts.console_socket.is_none() && !opts.detach;
    if relayed && process.terminal() == Some(true) && process.console_size().is_none() {
        if let Some((rows, cols)) = crate::tty::size_of(std::io::stdin().as_fd()) {
            let size = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
                .map_err(|e| Error::Other(format!("console size: {e}")))?;
            process.set_console_size(Some(size));
        }
    }
    Ok(process)
}

/// (the process's console socket, berth's end when berth relays the
/// terminal itself).
fn console_ends(terminal: bool, opts: &ExecOpts) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    Ok(match (terminal, &opts.console_socket) {
        (true, Some(path)) => (Some(connect(path)?), None),
        (true, None) => {
            let (ours, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| Error::sys("socketpair", "console", e))?;
            (Some(theirs), Some(ours))
        }
        (false, _) => (None, None),
    })
}

fn wrong_state(id: &str, status: Status) -> Error {
    Error::WrongState {
        id: id.into(),
        status: status.to_string(),
        op: "exec",
    }
}

fn check_status(state: &State, ignore_paused: bool) -> Result<()> {
    match state.status {
        Status::Created | Status::Running => Ok(()),
        Status::Paused if ignore_paused => Ok(()),
        s => Err(wrong_state(&state.id, s)),
    }
}

/// runc's rules: a detached terminal needs somewhere to send the master;
/// a console socket is pointless without a terminal.
fn check_terminal(terminal: bool, opts: &ExecOpts) -> Result<()> {
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::config(
            "process.terminal",
            "a detached exec with a terminal needs --console-socket",
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::config(
            "--console-socket",
            "only valid with a terminal (--tty or process.terminal)",
        ));
    }
    Ok(())
}

fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|e| Error::io("connect", path, e))?;
    Ok(OwnedFd::from(s))
}

/// The init to join: its pidfd and the namespaces it does not share with
/// us (setns refuses to "join" our own user namespace).
struct Target {
    pid: i32,
    flags: CloneFlags,
    pidfd: OwnedFd,
}

const NAMESPACES: [(&str, Ns); 8] = [
    ("user", Ns::User),
    ("mnt", Ns::Mount),
    ("pid", Ns::Pid),
    ("net", Ns::Network),
    ("ipc", Ns::Ipc),
    ("uts", Ns::Uts),
    ("cgroup", Ns::Cgroup),
    ("time", Ns::Time),
];

fn namespace_flags(pid: i32) -> Result<CloneFlags> {
    let mut flags = CloneFlags::empty();
    for (name, t) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let Ok(theirs) = std::fs::metadata(&theirs) else {
            // A namespace type this kernel does not have.
            continue;
        };
        let ours = format!("/proc/self/ns/{name}");
        let ours = std::fs::metadata(&ours).map_err(|e| Error::io("stat", ours, e))?;
        if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
            flags |= namespaces::flag(t);
        }
    }
    Ok(flags)
}

/// Join the init's namespaces: all at once through its pidfd, or (kernels
/// before 5.8) one by one through /proc, user namespace first.
fn join(t: &Target) -> Result<()> {
    if t.flags.is_empty() {
        return Ok(());
    }
    match nix::sched::setns(t.pidfd.as_fd(), t.flags) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(Error::sys("setns", format!("pidfd of {}", t.pid), e)),
    }
    // Opened before any is joined: /proc/PID means nothing in the
    // container's mount namespace.
    let mut files = Vec::new();
    for (name, ty) in NAMESPACES {
        let flag = namespaces::flag(ty);
        if t.flags.contains(flag) {
            let path = format!("/proc/{}/ns/{name}", t.pid);
            let f = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            files.push((f, flag, path));
        }
    }
    for (f, flag, path) in files {
        nix::sched::setns(f.as_fd(), flag).map_err(|e| Error::sys("setns", path, e))?;
    }
    Ok(())
}

/// What the forked helper and the process need.
struct Tenant<'a> {
    process: &'a Process,
    seccomp: Option<&'a LinuxSeccomp>,
    /// Where the notify listener goes (`SCMP_ACT_NOTIFY`), with the state.
    agent_socket: Option<OwnedFd>,
    state_json: String,
    userns: bool,
    preserve_fds: u32,
    console: Option<OwnedFd>,
    cgroup: Option<&'a Cgroup>,
    target: &'a Target,
    signals: Option<&'a Signals>,
    lock_fd: std::os::fd::RawFd,
    labels: &'a Labels,
    proc: &'a ProcFs,
}

/// Fork the helper; the pid of the process once it has called execve.
fn spawn(t: &Tenant) -> Result<Pid> {
    let (parent, child) = sync::pair()?;
    // SAFETY: the runtime is single-threaded; the child only runs our code
    // and leaves through execve or _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", "exec helper", e))? {
        nix::unistd::ForkResult::Child => {
            drop(parent);
            helper(t, child)
        }
        nix::unistd::ForkResult::Parent { child: helper } => {
            drop(child);
            let r = wait_for_exec(&parent);
            let _ = nix::sys::wait::waitpid(helper, None);
            r
        }
    }
}

fn wait_for_exec(chan: &Channel) -> Result<Pid> {
    let pid = match chan.recv()? {
        Some(Msg::InitPid(p)) => Pid::from_raw(p),
        Some(Msg::Failed(e)) => return Err(Error::Init(e)),
        Some(other) => return Err(Error::Other(format!("sync channel: unexpected {other:?}"))),
        None => return Err(Error::Init("exec helper exited early".into())),
    };
    // The channel is close-on-exec: end of file means execve succeeded.
    let err = match chan.recv() {
        Ok(None) => return Ok(pid),
        Ok(Some(Msg::Failed(e))) => Error::Init(e),
        Ok(Some(other)) => Error::Other(format!("sync channel: unexpected {other:?}")),
        Err(e) => e,
    };
    let _ = nix::sys::wait::waitpid(pid, None);
    Err(err)
}

/// In the helper: cgroup, namespaces, clone the process; never returns.
fn helper(t: &Tenant, chan: Channel) -> ! {
    // Held by the runtime only: the lock must go when it lets go.
    let _ = nix::unistd::close(t.lock_fd);
    let r = (|| -> Result<Option<Pid>> {
        if let Some(s) = t.signals {
            s.restore()?;
        }
        if let Some(cg) = t.cgroup {
            cg.join_self()?;
        }
        join(t.target)?;
        crate::sys::clone_fork(libc::CLONE_PARENT)
            .map_err(|e| Error::sys("clone", "exec process", e))
    })();
    match r {
        Ok(None) => {
            let err = match t.run() {
                Ok(never) => match never {},
                Err(e) => e,
            };
            fail(&chan, err, 127)
        }
        Ok(Some(pid)) => {
            let _ = chan.send(&Msg::InitPid(pid.as_raw()));
            // SAFETY: _exit skips destructors of state shared with the parent.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fail(&chan, e, 1),
    }
}

fn fail(chan: &Channel, err: Error, code: i32) -> ! {
    let mut msg = err.to_string();
    msg.truncate(3500);
    let _ = chan.send(&Msg::Failed(msg));
    // SAFETY: _exit skips destructors of state shared with the parent.
    unsafe { libc::_exit(code) }
}

impl Tenant<'_> {
    /// In the process, inside every namespace of the container.
    fn run(&self) -> Result<Infallible> {
        let p = self.process;
        // As the init: not the host's session keyring (errors ignored, as
        // there).
        let _ = crate::sys::join_new_session_keyring();
        match &self.console {
            Some(socket) => {
                let size = p
                    .console_size()
                    .map(|b| (b.height() as u16, b.width() as u16));
                crate::tty::setup_console(socket, size, false)?;
            }
            // Its own session, as runc does: berth's terminal signals are
            // forwarded, not delivered by the kernel.
            None => {
                nix::unistd::setsid().map_err(|e| Error::sys("setsid", "exec", e))?;
            }
        }
        identity::set_rlimits(p.rlimits().as_deref().unwrap_or(&[]))?;
        identity::set_oom_score_adj(self.proc, p.oom_score_adj())?;
        // args[0] and PATH entries are looked up from the process's cwd.
        crate::finalize::chdir(p.cwd())?;
        let agent = match (self.seccomp, &self.agent_socket) {
            (Some(seccomp), Some(socket)) => Some(Agent {
                socket: socket
                    .try_clone()
                    .map_err(|e| Error::io("dup", "seccomp agent socket", e))?,
                seccomp,
                state_json: self.state_json.clone(),
            }),
            _ => None,
        };
        let last =
            Finalize::prepare(p, self.seccomp, self.userns, self.preserve_fds)?.with_agent(agent);
        // Before the user switch, the capability drop and no_new_privs, as
        // in the init.
        self.labels.apply(self.proc)?;
        last.exec()
    }
}
