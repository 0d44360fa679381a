//! `create`: the spec's steps 1–4 of the lifecycle. On any failure nothing
//! is left behind: the init is killed, the cgroup and state directory go.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::Global;
use crate::affinity::Spread;
use crate::cgroups::Cgroup;
use crate::config::Bundle;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::namespaces::Plan;
use crate::state::{State, StateDir, Status, OCI_VERSION};
use crate::sync::Msg;
use crate::{hooks, process};

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `run` without a terminal to size first: open the exec fifo's read end
    /// as soon as it exists, so the init never blocks on it and goes on to
    /// execve right after `Created` instead of waiting for a `start` round
    /// trip ([`Created::fifo`]).
    pub hold_fifo: bool,
}

/// A created container, still holding its lock.
pub struct Created {
    pub dir: StateDir,
    pub state: State,
    pub spec: oci_spec::runtime::Spec,
    /// Its cgroup as made (`run` deletes through it without looking the
    /// host's cgroup layout up again).
    pub cgroup: Option<Cgroup>,
    /// The exec fifo's read end when [`CreateOpts::hold_fifo`] asked for it.
    pub fifo: Option<OwnedFd>,
}

pub fn create(g: &Global, opts: &CreateOpts) -> Result<Created> {
    create_from(g, opts, Bundle::load(&opts.bundle)?)
}

/// `create` with the bundle already loaded (`run` reads it first).
pub fn create_from(g: &Global, opts: &CreateOpts, bundle: Bundle) -> Result<Created> {
    let dir = StateDir::create(&g.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir),
        cgroup: None,
        init: None,
    };
    let (state, fifo) = build(g, opts, &bundle, &mut cleanup)?;
    let (dir, cgroup) = cleanup.disarm();
    Ok(Created {
        dir,
        state,
        spec: bundle.spec,
        cgroup,
        fifo,
    })
}

fn build(
    g: &Global,
    opts: &CreateOpts,
    bundle: &Bundle,
    cleanup: &mut Cleanup,
) -> Result<(State, Option<OwnedFd>)> {
    let dir = cleanup
        .dir
        .as_ref()
        .ok_or_else(|| Error::Other("state dir gone".into()))?;
    let console = opts
        .console_socket
        .as_deref()
        .map(connect_console)
        .transpose()?;

    let hk = bundle.spec.hooks().as_ref();
    let prestart = hooks::of_kind(hk, hooks::PRESTART);
    let create_runtime = hooks::of_kind(hk, hooks::CREATE_RUNTIME);
    let plan = Plan::from_spec(&bundle.spec);
    // The init makes most of its namespaces itself while the runtime makes
    // the cgroup below, instead of one after the other in the clone. Both
    // precede the init's join, so the new namespaces are charged where they
    // were before: not to the container.
    let late = plan.init_unshares();
    let pause_for_hooks = !prestart.is_empty() || !create_runtime.is_empty();
    // Last before the clone: it records the CPU the runtime is on.
    let spread = (!late.is_empty()).then(Spread::plan).flatten();
    let init = Init {
        spec: &bundle.spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        plan: &plan,
        console_socket: console,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        inherited: vec![dir.lock_fd()],
        unshare: late,
        spread,
        pause_for_hooks,
    };
    let (pid, chan) = process::spawn(&plan, late, |chan| crate::init::run(init, chan))?;
    if let Some(s) = spread {
        s.let_init_run();
    }
    cleanup.init = Some(pid);

    // While the init unshares its namespaces (about as long as this and the
    // cgroup together), then waits for `Join` and `Go`: what the init needs
    // only from `Go` on is made after the clone, not before it.
    let fifo = make_exec_fifo(dir)?;
    let held = if opts.hold_fifo {
        Some(super::start::open_fifo(dir)?)
    } else {
        None
    };
    let planned = rootless_may_skip(
        bundle,
        Cgroup::plan(&bundle.spec, &opts.id, g.systemd_cgroup),
    )?;
    let cgroup = match planned {
        Some(p) => rootless_may_skip(bundle, p.make())?,
        None => None,
    };
    let record = cgroup.as_ref().map(|c| c.record().clone());
    cleanup.cgroup = cgroup;
    if let Some(cg) = &cleanup.cgroup {
        match cg.self_join()? {
            Some(join) => {
                let (paths, fds) = join.parts();
                chan.send_with_fds(&Msg::Join(paths), &fds)?;
            }
            None => cg.add_task(pid)?,
        }
    }

    let mut state = State {
        oci_version: OCI_VERSION.into(),
        id: opts.id.clone(),
        status: Status::Creating,
        pid: pid.as_raw(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        created: crate::state::now_rfc3339(),
        owner: nix::unistd::geteuid().to_string(),
        init_start_time: crate::sys::process_start_time(pid.as_raw()).unwrap_or(0),
        cgroup: record,
    };
    let state_json = String::from_utf8_lossy(&state.to_oci_json()).into_owned();
    chan.send_with_fds(&Msg::Go(state_json.clone()), &[fifo.as_raw_fd()])?;
    drop(fifo);
    // The init is busy with its mounts: off the critical path.
    dir.save_config(&bundle.raw)?;

    if pause_for_hooks {
        chan.expect(Msg::MountsReady)?;
        hooks::run(hooks::PRESTART, prestart, state_json.as_bytes())?;
        hooks::run(hooks::CREATE_RUNTIME, create_runtime, state_json.as_bytes())?;
        chan.send(&Msg::HooksDone)?;
    }
    chan.expect(Msg::Created)?;

    state.status = Status::Created;
    dir.save(&state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok((state, held))
}

/// Rootless (not root on the host) and without `linux.resources`, a cgroup
/// we may not create is skipped, as runc does: nothing asked for a limit,
/// and the user may have no delegated cgroup.
fn rootless_may_skip<T>(
    bundle: &Bundle,
    step: std::result::Result<T, crate::cgroups::CgroupError>,
) -> Result<Option<T>> {
    match step {
        Ok(cg) => Ok(Some(cg)),
        Err(e) if !nix::unistd::geteuid().is_root() && !asks_for_limits(&bundle.spec) => {
            crate::log::debug(&format!("rootless: no cgroup: {e}"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn asks_for_limits(spec: &oci_spec::runtime::Spec) -> bool {
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return false;
    };
    // The default devices list is policy, not a limit a user asked for.
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

/// `exec.fifo`, and the O_PATH fd the init gets with `Go`: a
/// user-namespaced init may not be able to traverse the state directory.
fn make_exec_fifo(dir: &StateDir) -> Result<OwnedFd> {
    let fifo = dir.exec_fifo();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys("mkfifo", fifo.display(), e))?;
    // Writable by an init whose root is mapped to another host uid; the
    // umask must not take that away.
    nix::sys::stat::fchmodat(
        None,
        &fifo,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| Error::sys("chmod", fifo.display(), e))?;
    open_path(&fifo)
}

fn open_path(path: &Path) -> Result<OwnedFd> {
    let fd = crate::sys::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", path.display(), e))?;
    Ok(fd)
}

fn connect_console(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|e| Error::io("connect", path, e))?;
    Ok(OwnedFd::from(s))
}

/// Atomically, so a reader never sees an empty pid file.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
}

/// Undo a half-made container unless disarmed.
struct Cleanup {
    dir: Option<StateDir>,
    cgroup: Option<Cgroup>,
    init: Option<Pid>,
}

impl Cleanup {
    fn disarm(&mut self) -> (StateDir, Option<Cgroup>) {
        self.init = None;
        // build() only returns Ok with the dir in place.
        let dir = self.dir.take().expect("state dir present until disarm");
        (dir, self.cgroup.take())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.init.take() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            // Our child in the direct case; in the intermediate case it was
            // reparented and this fails harmlessly.
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}
