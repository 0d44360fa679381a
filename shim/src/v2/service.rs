//! What one shim process does for its containers (all the containers of a
//! pod under Kubernetes, grouped by the sandbox id): each task call carried
//! out through the runtime, the exits the reaper reports turned into state
//! and events, and `wait` answered from them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use containerd_shim::api::{self, Options};
use containerd_shim::monitor::{Subject, Topic};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::{Message, MessageDyn};
use containerd_shim::protos::topics;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::synchronous::monitor::monitor_subscribe;
use containerd_shim::{Context, ExitSignal};
use log::{info, warn};

use crate::bootstrap::unmount_rootfs;
use crate::error::{Error, Result};
use crate::process::{timestamp, Container, Process, Status, StdioPaths};
use crate::runtime::{self, Runtime};
use crate::stdio::{self, ConsoleSocket};
use crate::sys;

const RUNC_OPTIONS_TYPE: &str = "containerd.runc.v1.Options";

pub struct Inner {
    namespace: String,
    exit: Arc<ExitSignal>,
    publisher: RemotePublisher,
    containers: Mutex<HashMap<String, Container>>,
    /// Signalled on every exit; `wait` calls re-check their process.
    exited: Condvar,
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl Service {
    pub fn new(namespace: String, exit: Arc<ExitSignal>, publisher: RemotePublisher) -> Service {
        let inner = Arc::new(Inner {
            namespace,
            exit,
            publisher,
            containers: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
        });
        start_exit_thread(inner.clone());
        Service { inner }
    }

    /// The shim ends once it serves no container.
    pub(crate) fn shutdown_if_idle(&self) {
        if self.inner.lock().is_empty() {
            self.inner.exit.signal();
        }
    }

    pub(crate) fn init_pid(&self, cid: &str) -> u32 {
        self.inner.with(cid, |c| Ok(c.init.pid)).unwrap_or(0)
    }

    pub(crate) fn close_io_(&self, cid: &str, eid: &str) -> Result<()> {
        self.inner.with(cid, |c| {
            c.process(eid).map(drop).ok_or_else(|| not_found(cid, eid))
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        if let Err(e) = self
            .publisher
            .publish(Context::default(), topic, &self.namespace, event)
        {
            warn!("publish {topic}: {e}");
        }
    }

    /// The reaper saw `pid` end.
    fn on_exit(&self, pid: i32, code: i32) {
        let mut all = self.lock();
        let found = all
            .iter_mut()
            .find_map(|(cid, c)| c.by_pid(pid as u32).map(|(eid, p)| (cid.clone(), eid, p)));
        if runtime::note_exit(pid, code, found.is_some()) {
            return;
        }
        let Some((cid, eid, p)) = found else { return };
        let now = SystemTime::now();
        p.exited(code as u32, now);
        let ev = exit_event(&cid, &eid, pid as u32, code as u32, now);
        let deferred = p.starting;
        if deferred {
            p.deferred = Some(ev.clone());
        }
        let oom = all
            .get_mut(&cid)
            .and_then(|c| c.oom.as_mut())
            .is_some_and(|w| w.killed_since());
        drop(all);
        if oom {
            let mut o = TaskOOM::new();
            o.container_id = cid;
            self.publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(o));
        }
        self.exited.notify_all();
        if !deferred {
            self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        }
    }

    /// Record a new process's pid; it may have ended already.
    fn register(&self, cid: &str, eid: &str, pid: u32) {
        let mut all = self.lock();
        let Some(p) = all.get_mut(cid).and_then(|c| c.process_mut(eid)) else {
            return;
        };
        p.pid = pid;
        if let Some((code, at)) = runtime::take_early(pid as i32) {
            p.exited(code as u32, at);
            let ev = exit_event(cid, eid, pid, code as u32, at);
            if p.starting {
                p.deferred = Some(ev);
                drop(all);
                self.exited.notify_all();
                return;
            }
            drop(all);
            self.exited.notify_all();
            self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        }
    }

    /// The runtime a container was created with, and its bundle (where the
    /// runtime's log goes).
    fn runtime(&self, cid: &str) -> Result<(Runtime, PathBuf)> {
        self.with(cid, |c| Ok((c.runtime.clone(), c.bundle.clone())))
    }

    fn with<T>(&self, cid: &str, f: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
        let mut all = self.lock();
        let c = all
            .get_mut(cid)
            .ok_or_else(|| Error::NotFound(format!("container {cid}")))?;
        f(c)
    }
}

fn exit_event(cid: &str, eid: &str, pid: u32, code: u32, at: SystemTime) -> TaskExit {
    let mut ev = TaskExit::new();
    ev.container_id = cid.to_string();
    ev.id = if eid.is_empty() {
        cid.to_string()
    } else {
        eid.to_string()
    };
    ev.pid = pid;
    ev.exit_status = code;
    ev.exited_at = Some(timestamp(at)).into();
    ev
}

/// One thread per container with a memory cgroup: `/tasks/oom` as OOM kills
/// happen. It ends when the cgroup or the container is gone; the timeout
/// bounds how long it outlives a container whose cgroup never signals.
fn start_oom_thread(inner: Arc<Inner>, cid: String, pid: u32) {
    let Some(mut n) = crate::oom_notify::Notifier::new(pid) else {
        return;
    };
    std::thread::spawn(move || loop {
        let alive = n.wait(60_000);
        let mut all = inner.lock();
        let Some(c) = all.get_mut(&cid) else { return };
        if c.oom.as_mut().is_some_and(|w| w.killed_since()) {
            let mut o = TaskOOM::new();
            o.container_id = cid.clone();
            // Under the lock: the exit thread, which needs it, then publishes any exit after.
            inner.publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(o));
        }
        drop(all);
        if !alive {
            return;
        }
    });
}

fn start_exit_thread(inner: Arc<Inner>) {
    // Subscribed before any process exists: no exit can be missed.
    let sub = match monitor_subscribe(Topic::Pid) {
        Ok(s) => s,
        Err(e) => {
            warn!("no exit subscription: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        while let Ok(ev) = sub.rx.recv() {
            if let Subject::Pid(pid) = ev.subject {
                inner.on_exit(pid, ev.exit_code);
            }
        }
    });
}

fn not_found(cid: &str, eid: &str) -> Error {
    Error::NotFound(label(cid, eid))
}

/// A process's stdio, opened as containerd asked: the fifos themselves, or a
/// pty whose master the runtime sends over a console socket.
struct Prepared {
    io: stdio::Stdio,
    console: Option<ConsoleSocket>,
    keep: Vec<std::fs::File>,
    relay_in: Option<std::fs::File>,
    relay_out: Option<std::fs::File>,
}

fn prepare(paths: &StdioPaths) -> Result<Prepared> {
    if !paths.terminal {
        let mut io = stdio::open(&paths.stdin, &paths.stdout, &paths.stderr)?;
        let keep = std::mem::take(&mut io.keep);
        return Ok(Prepared {
            io,
            console: None,
            keep,
            relay_in: None,
            relay_out: None,
        });
    }
    let mut keep = Vec::new();
    let relay_in = if paths.stdin.is_empty() {
        None
    } else {
        Some(stdio::open_input(&paths.stdin, true)?)
    };
    let relay_out = stdio::open_output(&paths.stdout, &mut keep)?;
    Ok(Prepared {
        io: stdio::Stdio::default(),
        console: Some(ConsoleSocket::new()?),
        keep,
        relay_in,
        relay_out,
    })
}

/// After the runtime returned: take the pty master and start relaying. What
/// the process keeps: the master (for resizes) and the fifo read ends.
fn finish(p: Prepared) -> Result<(Option<std::fs::File>, Vec<std::fs::File>)> {
    let console = match &p.console {
        Some(sock) => {
            let master = sock.receive()?;
            stdio::relay(&master, p.relay_in, p.relay_out)?;
            Some(master)
        }
        None => None,
    };
    Ok((console, p.keep))
}

fn runc_options(
    any: Option<&containerd_shim::protos::protobuf::well_known_types::any::Any>,
) -> Result<Option<Options>> {
    let Some(any) = any else { return Ok(None) };
    if !any.type_url.ends_with(RUNC_OPTIONS_TYPE) {
        return Ok(None);
    }
    Options::parse_from_bytes(&any.value)
        .map(Some)
        .map_err(|e| Error::Invalid(format!("options: {e}")))
}

impl Service {
    pub(crate) fn create_(&self, req: api::CreateTaskRequest) -> Result<api::CreateTaskResponse> {
        let id = req.id.clone();
        let bundle = PathBuf::from(&req.bundle);
        if self.inner.lock().contains_key(&id) {
            return Err(Error::Exists(format!("container {id}")));
        }
        let opts = runc_options(req.options.as_ref())?;
        let rt = Runtime::from_options(opts.as_ref(), &self.inner.namespace);
        rt.save(&bundle)?;
        let rootfs = bundle.join("rootfs");
        for m in &req.rootfs {
            if let Err(e) = containerd_shim::mount::mount_rootfs(
                Some(m.type_.as_str()),
                Some(m.source.as_str()),
                &m.options,
                &rootfs,
            ) {
                unmount_rootfs(&bundle);
                return Err(Error::Shim(format!(
                    "mount rootfs {}: {e}",
                    rootfs.display()
                )));
            }
        }
        let paths = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mut init = Process::new(paths);
        let created = prepare(&init.stdio).and_then(|mut prep| {
            let io = std::mem::take(&mut prep.io);
            let console = prep.console.as_ref().map(ConsoleSocket::path);
            let pid = rt.create(
                &id,
                &bundle,
                &bundle.join("init.pid"),
                console.as_deref(),
                io,
            )?;
            match finish(prep) {
                Ok((console, keep)) => {
                    init.console = console;
                    init.keep = keep;
                    Ok(pid)
                }
                Err(e) => {
                    let _ = rt.simple("delete", &id, &bundle, &["--force"]);
                    Err(e)
                }
            }
        });
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                if !req.rootfs.is_empty() {
                    unmount_rootfs(&bundle);
                }
                return Err(e);
            }
        };
        self.inner.lock().insert(
            id.clone(),
            Container {
                bundle: bundle.clone(),
                runtime: rt,
                rootfs_mounted: !req.rootfs.is_empty(),
                init,
                execs: HashMap::new(),
                oom: crate::oom::OomWatch::new(pid as i32),
            },
        );
        self.inner.register(&id, "", pid);
        start_oom_thread(self.inner.clone(), id.clone(), pid);
        info!("created {id}, pid {pid}");

        let mut ev = TaskCreate::new();
        ev.container_id = id;
        ev.bundle = req.bundle;
        ev.rootfs = req.rootfs;
        let mut tio = TaskIO::new();
        tio.stdin = req.stdin;
        tio.stdout = req.stdout;
        tio.stderr = req.stderr;
        tio.terminal = req.terminal;
        ev.io = Some(tio).into();
        ev.pid = pid;
        self.inner
            .publish(topics::TASK_CREATE_EVENT_TOPIC, Box::new(ev));
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid;
        Ok(r)
    }

    pub(crate) fn start_(&self, req: api::StartRequest) -> Result<api::StartResponse> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        let (rt, bundle, pid, spec, paths) = self.inner.with(cid, |c| {
            let init_running = c.init.status == Status::Running;
            let (rt, bundle) = (c.runtime.clone(), c.bundle.clone());
            let p = c.process_mut(eid).ok_or_else(|| not_found(cid, eid))?;
            if p.status != Status::Created || p.starting {
                return Err(Error::Precondition(format!(
                    "{}: not created",
                    label(cid, eid)
                )));
            }
            if !eid.is_empty() && !init_running {
                return Err(Error::Precondition(format!(
                    "container {cid} is not running"
                )));
            }
            // Until the start event is out, an exit of this process waits (see on_exit).
            p.starting = true;
            Ok((rt, bundle, p.pid, p.spec.clone(), p.stdio.clone()))
        })?;
        let started = self.run_start(cid, eid, rt, bundle, pid, spec, paths);
        if let Ok((_, ev)) = &started {
            let topic = if eid.is_empty() {
                topics::TASK_START_EVENT_TOPIC
            } else {
                topics::TASK_EXEC_STARTED_EVENT_TOPIC
            };
            self.inner.publish(topic, ev.clone_box());
        }
        // The exit that came while starting goes out after the start event.
        let deferred = self
            .inner
            .with(cid, |c| {
                Ok(c.process_mut(eid).and_then(|p| {
                    p.starting = false;
                    p.deferred.take()
                }))
            })
            .ok()
            .flatten();
        if let Some(ev) = deferred {
            self.inner
                .publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        }
        let mut r = api::StartResponse::new();
        r.pid = started?.0;
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_start(
        &self,
        cid: &str,
        eid: &str,
        rt: Runtime,
        bundle: PathBuf,
        pid: u32,
        spec: Option<PathBuf>,
        paths: StdioPaths,
    ) -> Result<(u32, Box<dyn MessageDyn>)> {
        if eid.is_empty() {
            rt.simple("start", cid, &bundle, &[])?;
            self.inner.with(cid, |c| {
                if c.init.status == Status::Created {
                    c.init.status = Status::Running;
                }
                Ok(())
            })?;
            let mut ev = TaskStart::new();
            ev.container_id = cid.to_string();
            ev.pid = pid;
            return Ok((pid, Box::new(ev)));
        }
        let spec = spec
            .ok_or_else(|| Error::Precondition(format!("{}: no process spec", label(cid, eid))))?;
        let mut prep = prepare(&paths)?;
        let io = std::mem::take(&mut prep.io);
        let console = prep.console.as_ref().map(ConsoleSocket::path);
        let pid_file = bundle.join(format!("exec-{eid}.pid"));
        let pid = rt.exec(cid, &bundle, &spec, &pid_file, console.as_deref(), io);
        let _ = std::fs::remove_file(&spec);
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        let (console, keep) = finish(prep)?;
        self.inner.with(cid, |c| {
            if let Some(p) = c.execs.get_mut(eid) {
                p.status = Status::Running;
                p.console = console;
                p.keep = keep;
                p.spec = None;
            }
            Ok(())
        })?;
        self.inner.register(cid, eid, pid);
        let mut ev = TaskExecStarted::new();
        ev.container_id = cid.to_string();
        ev.exec_id = eid.to_string();
        ev.pid = pid;
        Ok((pid, Box::new(ev)))
    }

    pub(crate) fn delete_(&self, req: api::DeleteRequest) -> Result<api::DeleteResponse> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        let mut r = api::DeleteResponse::new();
        if !eid.is_empty() {
            let p = self.inner.with(cid, |c| {
                match c.execs.get(eid).map(|p| p.status) {
                    None => return Err(not_found(cid, eid)),
                    Some(Status::Running) | Some(Status::Paused) => {
                        return Err(Error::Precondition(format!(
                            "{}: still running",
                            label(cid, eid)
                        )))
                    }
                    _ => {}
                }
                c.execs.remove(eid).ok_or_else(|| not_found(cid, eid))
            })?;
            if let Some(spec) = &p.spec {
                let _ = std::fs::remove_file(spec);
            }
            r.pid = p.pid;
            r.exit_status = p.exit_status();
            r.exited_at = p.exited_at();
            return Ok(r);
        }
        let (rt, bundle, status) = self.inner.with(cid, |c| {
            Ok((c.runtime.clone(), c.bundle.clone(), c.init.status))
        })?;
        if matches!(status, Status::Running | Status::Paused) {
            return Err(Error::Precondition(format!(
                "container {cid}: still running"
            )));
        }
        // A created container's init waits for `start`: --force ends it.
        let force: &[&str] = if status == Status::Created {
            &["--force"]
        } else {
            &[]
        };
        if let Err(e) = rt.simple("delete", cid, &bundle, force) {
            warn!("{e}");
        }
        let c = {
            let mut all = self.inner.lock();
            all.remove(cid)
                .ok_or_else(|| Error::NotFound(format!("container {cid}")))?
        };
        if c.rootfs_mounted {
            unmount_rootfs(&bundle);
        }
        r.pid = c.init.pid;
        r.exit_status = c.init.exit_status();
        r.exited_at = c.init.exited_at();
        let mut ev = TaskDelete::new();
        ev.container_id = cid.to_string();
        ev.id = cid.to_string();
        ev.pid = r.pid;
        ev.exit_status = r.exit_status;
        ev.exited_at = r.exited_at.clone();
        self.inner
            .publish(topics::TASK_DELETE_EVENT_TOPIC, Box::new(ev));
        Ok(r)
    }

    pub(crate) fn state_(&self, req: api::StateRequest) -> Result<api::StateResponse> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        self.inner.with(cid, |c| {
            let bundle = c.bundle.display().to_string();
            let p = c.process(eid).ok_or_else(|| not_found(cid, eid))?;
            let mut r = api::StateResponse::new();
            r.id = if eid.is_empty() {
                cid.to_string()
            } else {
                eid.to_string()
            };
            r.exec_id = eid.to_string();
            r.bundle = bundle;
            r.pid = p.pid;
            r.status = p.status.api().into();
            r.stdin = p.stdio.stdin.clone();
            r.stdout = p.stdio.stdout.clone();
            r.stderr = p.stdio.stderr.clone();
            r.terminal = p.stdio.terminal;
            r.exit_status = p.exit_status();
            r.exited_at = p.exited_at();
            Ok(r)
        })
    }

    pub(crate) fn kill_(&self, req: api::KillRequest) -> Result<()> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        let (rt, bundle, pid, done) = self.inner.with(cid, |c| {
            let p = c.process(eid).ok_or_else(|| not_found(cid, eid))?;
            Ok((c.runtime.clone(), c.bundle.clone(), p.pid, p.exit.is_some()))
        })?;
        if done && !req.all {
            return Err(Error::NotFound(format!(
                "{}: process already finished",
                label(cid, eid)
            )));
        }
        if eid.is_empty() {
            return rt.kill(cid, &bundle, req.signal, req.all).map_err(|e| {
                // The container ended between our check and the runtime's.
                if self
                    .inner
                    .with(cid, |c| Ok(c.init.exit.is_some()))
                    .unwrap_or(false)
                {
                    Error::NotFound(format!("container {cid}: process already finished"))
                } else {
                    e
                }
            });
        }
        // An exec's pid is ours to signal: it is our child (reparented), so
        // it cannot be reused before we reap it.
        let sig = i32::try_from(req.signal)
            .map_err(|_| Error::Invalid(format!("signal {}", req.signal)))?;
        sys::kill(pid as i32, sig).map_err(|e| Error::sys("kill", label(cid, eid), e))
    }

    pub(crate) fn exec_(&self, req: api::ExecProcessRequest) -> Result<()> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("{}: no process spec", label(cid, eid))))?;
        self.inner.with(cid, |c| {
            if c.execs.contains_key(eid) {
                return Err(Error::Exists(label(cid, eid)));
            }
            if c.init.status != Status::Running {
                return Err(Error::Precondition(format!(
                    "container {cid} is not running"
                )));
            }
            let file = c.bundle.join(format!("exec-{eid}.json"));
            std::fs::write(&file, &spec.value)
                .map_err(|e| Error::sys("write", file.display().to_string(), e))?;
            let mut p = Process::new(StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            });
            p.spec = Some(file);
            c.execs.insert(eid.to_string(), p);
            Ok(())
        })?;
        let mut ev = TaskExecAdded::new();
        ev.container_id = cid.to_string();
        ev.exec_id = eid.to_string();
        self.inner
            .publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(ev));
        Ok(())
    }

    pub(crate) fn pause_resume(&self, cid: &str, pause: bool) -> Result<()> {
        let (rt, bundle) = self.inner.runtime(cid)?;
        rt.simple(if pause { "pause" } else { "resume" }, cid, &bundle, &[])?;
        self.inner.with(cid, |c| {
            if c.init.exit.is_none() {
                c.init.status = if pause {
                    Status::Paused
                } else {
                    Status::Running
                };
            }
            Ok(())
        })?;
        if pause {
            let mut ev = TaskPaused::new();
            ev.container_id = cid.to_string();
            self.inner
                .publish(topics::TASK_PAUSED_EVENT_TOPIC, Box::new(ev));
        } else {
            let mut ev = TaskResumed::new();
            ev.container_id = cid.to_string();
            self.inner
                .publish(topics::TASK_RESUMED_EVENT_TOPIC, Box::new(ev));
        }
        Ok(())
    }

    pub(crate) fn wait_(&self, req: api::WaitRequest) -> Result<api::WaitResponse> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        let mut all = self.inner.lock();
        loop {
            let p = all
                .get(cid)
                .and_then(|c| c.process(eid))
                .ok_or_else(|| not_found(cid, eid))?;
            if p.exit.is_some() {
                let mut r = api::WaitResponse::new();
                r.exit_status = p.exit_status();
                r.exited_at = p.exited_at();
                return Ok(r);
            }
            all = self
                .inner
                .exited
                .wait(all)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(crate) fn pids_(&self, req: api::PidsRequest) -> Result<api::PidsResponse> {
        let (rt, bundle) = self.inner.runtime(&req.id)?;
        let pids = rt.ps(&req.id, &bundle)?;
        let mut r = api::PidsResponse::new();
        r.processes = pids
            .into_iter()
            .map(|pid| {
                let mut p = ProcessInfo::new();
                p.pid = pid;
                p
            })
            .collect();
        Ok(r)
    }

    pub(crate) fn resize_(&self, req: api::ResizePtyRequest) -> Result<()> {
        let (cid, eid) = (req.id.as_str(), req.exec_id.as_str());
        self.inner.with(cid, |c| {
            let p = c.process(eid).ok_or_else(|| not_found(cid, eid))?;
            let Some(m) = &p.console else {
                return Err(Error::Precondition(format!(
                    "{}: no terminal",
                    label(cid, eid)
                )));
            };
            let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
            sys::set_winsize(
                std::os::fd::AsFd::as_fd(m),
                clamp(req.height),
                clamp(req.width),
            )
            .map_err(|e| Error::sys("ioctl TIOCSWINSZ", label(cid, eid), e))
        })
    }

    pub(crate) fn stats_(&self, req: api::StatsRequest) -> Result<api::StatsResponse> {
        let (rt, bundle) = self.inner.runtime(&req.id)?;
        let metrics = crate::metrics::from_runtime(&rt.stats(&req.id, &bundle)?);
        let any = containerd_shim::util::convert_to_any(Box::new(metrics))?;
        let mut r = api::StatsResponse::new();
        r.stats = Some(any).into();
        Ok(r)
    }

    pub(crate) fn update_(&self, req: api::UpdateTaskRequest) -> Result<()> {
        let res = req
            .resources
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("update {}: no resources", req.id)))?;
        let (rt, bundle) = self.inner.runtime(&req.id)?;
        rt.update(&req.id, &bundle, &res.value)
    }
}

fn label(cid: &str, eid: &str) -> String {
    if eid.is_empty() {
        format!("container {cid}")
    } else {
        format!("exec {eid} of {cid}")
    }
}
