//! The monitor: create the container with its stdio, report its pid, run the event loop, then
//! the exit record, exit files, --rm and conmon's exit command.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::attach::Attach;
use crate::cli::Config;
use crate::control::Fifo;
use crate::error::{Ctx, Error, Result};
use crate::event_loop::{Io, Loop, MIN_COALESCE_PIPE, STDIN_BUF};
use crate::exit::{write_atomic, ExitInfo};
use crate::logs::Log;
use crate::oom::OomWatch;
use crate::report::Reporter;
use crate::spawn::{drain_text, Runtime};
use crate::sys::{self, Status};
use crate::{mem, note, timefmt};

/// One read from the container: the only data buffer of the shim besides the log's.
const READ_BUF: usize = 64 * 1024;
/// Container stdout/stderr pipes: room for ~4 ms of output at full speed, so that the loop can
/// read them in big chunks (see event_loop's coalescing). 1 MiB is the default pipe-max-size.
const PIPE_SIZE: i32 = 1 << 20;

/// What the caller gave us besides the config.
pub struct Env {
    pub reporter: Reporter,
    pub start_pipe: Option<OwnedFd>,
    pub attach_pipe: Option<OwnedFd>,
}

/// Files the monitor creates and removes again (also on failure, by Drop).
#[derive(Default)]
struct Scratch {
    files: Vec<PathBuf>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn scratch_path(kind: &str, id: &str) -> PathBuf {
    let short: String = id.chars().take(24).collect();
    std::env::temp_dir().join(format!("berth-shim-{}-{short}.{kind}", sys::getpid()))
}

fn conmon_attach_dir(cfg: &Config, scratch: &mut Scratch) -> Result<Option<PathBuf>> {
    let Some(cm) = &cfg.conmon else {
        return Ok(None);
    };
    if cm.full_attach {
        return Ok(Some(cfg.bundle.clone()));
    }
    let (Some(dir), Some(uuid)) = (&cm.socket_dir, &cm.cuuid) else {
        return Ok(None);
    };
    // conmon's layout: SOCKET_DIR/CUUID is a symlink to the bundle, the socket is in there.
    let mut base = dir
        .join(uuid)
        .into_os_string()
        .into_string()
        .unwrap_or_default();
    if base.len() == 107 {
        base.pop();
    }
    let base = PathBuf::from(base);
    let _ = std::fs::remove_file(&base);
    std::os::unix::fs::symlink(&cfg.bundle, &base).ctx("symlink", base.display())?;
    scratch.files.push(base.clone());
    Ok(Some(base))
}

pub fn run(cfg: &Config, rt: &Runtime, log: Option<Log>, env: &mut Env) -> Result<i32> {
    let sigfd = sys::signalfd(&[
        libc::SIGCHLD,
        libc::SIGUSR1,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
    ])
    .ctx("signalfd", "")?;
    let mut scratch = Scratch::default();
    let conmon = cfg.conmon.as_ref();
    let exec = conmon.is_some_and(|c| c.exec);

    // ---- stdio
    let (mut child_in, mut child_out) = (Stdio::null(), Stdio::null());
    let mut out_pipe = 0;
    let mut io = Io {
        out: None,
        err: None,
        stdin: None,
        tty: None,
        _master: None,
    };
    if !cfg.terminal {
        if cfg.stdin {
            let (r, w) = sys::pipe().ctx("pipe", "stdin")?;
            sys::set_nonblock(w.as_raw_fd(), true).ctx("fcntl", "stdin")?;
            child_in = Stdio::from(r);
            io.stdin = Some(w);
        }
        let (r, w) = sys::pipe().ctx("pipe", "stdout")?;
        out_pipe = sys::set_pipe_size(r.as_raw_fd(), PIPE_SIZE);
        child_out = Stdio::from(w);
        io.out = Some(r);
    }
    // stderr is always a pipe: it also carries the runtime's own error messages.
    let (r, w) = sys::pipe().ctx("pipe", "stderr")?;
    let err_pipe = sys::set_pipe_size(r.as_raw_fd(), PIPE_SIZE);
    let child_err = Stdio::from(w);
    io.err = Some(r);

    let console = if cfg.terminal {
        let p = scratch_path("console", &cfg.id);
        let l = sys::unix_listen(&p, libc::SOCK_STREAM, 0o700).ctx("bind", p.display())?;
        scratch.files.push(p.clone());
        Some((l, p))
    } else {
        None
    };

    // ---- attach socket and control FIFOs, before the container can print anything
    let mut attach = None;
    let mut fifos = Vec::new();
    if let Some(p) = &cfg.attach_socket {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        attach = Some(Attach::listen(dir, &name)?);
    } else if let Some(dir) = conmon_attach_dir(cfg, &mut scratch)? {
        attach = Some(Attach::listen(&dir, "attach")?);
    }
    if let Some(p) = &cfg.control_fifo {
        fifos.push(Fifo::create(p, true)?);
    }
    if conmon.is_some() {
        fifos.push(Fifo::create(&cfg.bundle.join("ctl"), false)?);
        fifos.push(Fifo::create(&cfg.bundle.join("winsz"), false)?);
    }
    let stdin_fifo = match &cfg.stdin_fifo {
        Some(p) => {
            Some(sys::open(p, libc::O_RDONLY | libc::O_NONBLOCK, 0).ctx("open", p.display())?)
        }
        None => None,
    };
    if let Some(fd) = env.attach_pipe.take() {
        // conmon's exec --exec-attach: the caller attaches, then tells us to go on.
        let _ = sys::write_all(fd.as_raw_fd(), b"{\"data\": 0}\n");
        if let Some(sp) = env.start_pipe.take() {
            let mut b = [0u8; 256];
            let _ = sys::read(sp.as_raw_fd(), &mut b);
        }
    }

    // ---- create
    let pidfile = match &cfg.container_pidfile {
        Some(p) => p.clone(),
        None => {
            let p = scratch_path("pid", &cfg.id);
            scratch.files.push(p.clone());
            p
        }
    };
    let _ = std::fs::remove_file(&pidfile);
    let args = runtime_args(cfg, &pidfile, console.as_ref().map(|c| c.1.as_path()));
    let rpid = rt.spawn(&args, child_in, child_out, child_err)?;
    let st = sys::wait(rpid).ctx("waitpid", "runtime")?;
    if st.exit_code() != Some(0) {
        let text = io.err.as_ref().map(drain_text).unwrap_or_default();
        return Err(Error::Runtime(if text.is_empty() {
            format!(
                "{} {} {}: exited with {}",
                rt.path.display(),
                args[0],
                cfg.id,
                st.code()
            )
        } else {
            text
        }));
    }
    if let Some((l, _)) = &console {
        let master = sys::accept(l.as_raw_fd())
            .and_then(|c| {
                sys::set_nonblock(c.as_raw_fd(), false)?;
                sys::recv_fd(c.as_raw_fd())
            })
            .map_err(|e| Error::Runtime(format!("runtime did not send a terminal: {e}")))?;
        sys::set_nonblock(master.as_raw_fd(), true).ctx("fcntl", "pty")?;
        io.tty = Some(master.as_raw_fd());
        io.out = Some(master.try_clone().ctx("dup", "pty")?);
        if cfg.stdin {
            io.stdin = Some(master.try_clone().ctx("dup", "pty")?);
        }
        io._master = Some(master);
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ctx("read", pidfile.display())?
        .trim()
        .parse()
        .map_err(|_| Error::Runtime(format!("{}: not a pid", pidfile.display())))?;
    if conmon.is_none() {
        if let Err(e) = rt.run(&["start", &cfg.id]) {
            let _ = rt.run(&["delete", "--force", &cfg.id]);
            return Err(e);
        }
    }
    let started_at = timefmt::now_string();
    let mut oom = OomWatch::new(pid);
    env.reporter.pid(pid);
    if !exec {
        env.reporter.close();
    }
    for fd in [io.out.as_ref(), io.err.as_ref()].into_iter().flatten() {
        let _ = sys::set_nonblock(fd.as_raw_fd(), true);
    }

    let sync = conmon.is_some() && !cfg.no_sync_log;
    let mut log = log;
    if let (Some(l), true) = (log.as_mut(), sync) {
        l.sync_at_exit();
    }
    // Every fixed buffer resident from the start: RSS is then flat for the container's life
    // instead of creeping up as larger reads touch more of them (docs/shim.md).
    if let Some(l) = log.as_mut() {
        l.prefault();
    }
    let mut buf = vec![0u8; READ_BUF];
    mem::prefault(&mut buf);
    let mut pending = Vec::with_capacity(STDIN_BUF);
    if io.stdin.is_some() {
        pending.resize(STDIN_BUF, 0);
        pending.clear();
    }
    let mut lp = Loop {
        pid,
        io,
        log,
        attach,
        fifos,
        stdin_fifo,
        pending,
        buf,
        status: None,
        finished_at: String::new(),
        close_stdin_on_detach: conmon.is_some() && !cfg.leave_stdin_open,
        coalesce: !cfg.terminal && out_pipe.min(err_pipe) >= MIN_COALESCE_PIPE,
        hold_until: 0,
        last_output: 0,
    };
    lp.run(sigfd.as_raw_fd())?;
    let mut dropped = 0;
    if let Some(log) = lp.log.as_mut() {
        log.finish(sync);
        dropped = log.dropped;
    }
    drop(lp.attach.take());
    let status = lp.status.unwrap_or(Status(0));
    let info = ExitInfo {
        id: cfg.id.clone(),
        pid,
        status,
        oom_killed: oom.as_mut().is_some_and(OomWatch::killed_since),
        started_at,
        finished_at: lp.finished_at.clone(),
        log_dropped_bytes: dropped,
    };
    finish(cfg, rt, &info, env)?;
    drop(scratch);
    Ok(info.code())
}

fn runtime_args(cfg: &Config, pidfile: &Path, console: Option<&Path>) -> Vec<String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut a: Vec<String> = Vec::new();
    let cm = cfg.conmon.as_ref();
    if let Some(cm) = cm.filter(|c| c.exec) {
        let spec = cm.exec_process_spec.as_deref().unwrap_or(Path::new(""));
        a.extend([
            "exec".into(),
            "--pid-file".into(),
            s(pidfile),
            "--process".into(),
            s(spec),
        ]);
        a.push("--detach".into());
    } else {
        a.extend([
            "create".into(),
            "--bundle".into(),
            s(&cfg.bundle),
            "--pid-file".into(),
            s(pidfile),
        ]);
        if cm.is_some_and(|c| c.no_pivot) {
            a.push("--no-pivot".into());
        }
        if cm.is_some_and(|c| c.no_new_keyring) {
            a.push("--no-new-keyring".into());
        }
    }
    if let Some(cm) = cm {
        a.extend(cm.runtime_opts.iter().cloned());
    }
    if let Some(c) = console {
        a.extend(["--console-socket".into(), s(c)]);
    }
    a.push(cfg.id.clone());
    a
}

/// Exit files, --rm, conmon's exit command.
fn finish(cfg: &Config, rt: &Runtime, info: &ExitInfo, env: &mut Env) -> Result<()> {
    if let Some(p) = &cfg.exit_file {
        write_atomic(p, info.to_json().as_bytes())?;
    }
    if let Some(cm) = &cfg.conmon {
        let code = info.code().to_string();
        if info.oom_killed {
            let _ = std::fs::write(cfg.bundle.join("oom"), b"");
            if let Some(d) = &cm.persist_dir {
                let _ = std::fs::write(d.join("oom"), b"");
            }
        }
        if let Some(d) = &cm.persist_dir {
            write_atomic(&d.join("exit"), code.as_bytes())?;
        }
        if let Some(d) = &cm.exit_dir {
            write_atomic(&d.join(&cfg.id), code.as_bytes())?;
        }
        if cm.exec {
            env.reporter.status(info.code());
        }
        if let Some(cmd) = &cm.exit_command {
            if cm.exit_delay > 0 {
                std::thread::sleep(std::time::Duration::from_secs(cm.exit_delay));
            }
            let mut c = std::process::Command::new(cmd);
            sys::clean_signals_on_exec(&mut c);
            let r = c
                .args(&cm.exit_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Err(e) = r {
                note::warn(&format!("exit command {cmd}: {e}"));
            }
        }
    }
    if cfg.rm {
        if let Err(e) = rt.run(&["delete", "--force", &cfg.id]) {
            note::warn(&format!("--rm: {e}"));
        }
    }
    Ok(())
}
