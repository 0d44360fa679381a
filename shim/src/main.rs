//! berth-shim: per-container monitor (stdio, logs, exit status, attach), conmon-compatible.
#![deny(unsafe_code)]

mod attach;
mod cli;
mod control;
mod error;
mod event_loop;
mod exit;
mod logs;
#[allow(unsafe_code)]
mod mem;
mod monitor;
mod note;
mod oom;
mod report;
mod spawn;
#[allow(unsafe_code)]
mod sys;
mod timefmt;

use std::os::fd::{AsRawFd, OwnedFd};

use cli::{Config, LogFormat, Parsed};
use error::{Ctx, Error, Result};
use report::{Proto, Reporter};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match cli::parse(args) {
        Ok(Parsed::Run(c)) => c,
        Ok(Parsed::Help) => {
            print!("{}", cli::USAGE);
            return;
        }
        Ok(Parsed::Version) => {
            print!("{}", cli::VERSION);
            return;
        }
        Err(e) => {
            eprintln!("berth-shim: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(run(&cfg));
}

fn env_fd(name: &str) -> Result<Option<OwnedFd>> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    let n: i32 = v
        .parse()
        .map_err(|_| Error::Usage(format!("{name}: not a descriptor number: '{v}'")))?;
    sys::adopt_fd(n).ctx("fcntl", name).map(Some)
}

/// Checks that need no container: a failure here is reported before anything exists.
fn validate(cfg: &Config) -> Result<(spawn::Runtime, Option<logs::Log>)> {
    if cfg.conmon.as_ref().is_none_or(|c| !c.exec) {
        let conf = cfg.bundle.join("config.json");
        if !conf.is_file() {
            return Err(Error::Usage(format!(
                "--bundle {}: no config.json there",
                cfg.bundle.display()
            )));
        }
    }
    let rt = spawn::Runtime::resolve(cfg.runtime.as_deref(), runtime_globals(cfg))?;
    for p in [&cfg.exit_file].into_iter().flatten() {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err(Error::Usage(format!(
                "--exit-file {}: no such directory",
                p.display()
            )));
        }
    }
    let log = match &cfg.log_path {
        Some(p) => Some(
            logs::Log::open(
                p,
                cfg.log_format.unwrap_or(LogFormat::Cri),
                cfg.log_max_size,
                cfg.log_max_files,
                cfg.rate_limit,
            )
            .map_err(|e| Error::Usage(format!("--log-path: {e}")))?,
        ),
        None => None,
    };
    Ok((rt, log))
}

fn runtime_globals(cfg: &Config) -> Vec<String> {
    let mut g = Vec::new();
    if cfg
        .conmon
        .as_ref()
        .is_some_and(|c| c.systemd_cgroup && !c.exec)
    {
        g.push("--systemd-cgroup".to_string());
    }
    g.extend(cfg.runtime_args.iter().cloned());
    g
}

fn run(cfg: &Config) -> i32 {
    sys::ignore_sigpipe();
    let conmon = cfg.conmon.as_ref();
    // conmon's pipes come first: even a usage error is reported through the sync pipe.
    let (sync_pipe, start_pipe, attach_pipe) = match (|| {
        Ok::<_, Error>((
            env_fd("_OCI_SYNCPIPE")?,
            env_fd("_OCI_STARTPIPE")?,
            env_fd("_OCI_ATTACHPIPE")?,
        ))
    })() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            return 1;
        }
    };
    let proto = match conmon {
        Some(c) if c.api_version >= 1 => Proto::Conmon("data"),
        Some(c) if c.exec => Proto::Conmon("exit_code"),
        Some(_) => Proto::Conmon("pid"),
        None => Proto::Own,
    };
    let mut reporter = Reporter {
        fd: sync_pipe,
        proto,
    };
    let (rt, log) = match validate(cfg) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            reporter.error(&e.to_string());
            return 1;
        }
    };
    if let Some(sp) = &start_pipe {
        // conmon protocol: wait until the caller has placed us in our cgroup.
        let mut b = [0u8; 256];
        let _ = sys::read(sp.as_raw_fd(), &mut b);
    }
    let start_pipe = if conmon.is_some_and(|c| c.exec_attach) {
        start_pipe
    } else {
        None
    };
    if conmon.is_some() {
        if !conmon.is_some_and(|c| c.sync) {
            // conmon: one fork; the parent writes the monitor's pid and returns at once.
            match sys::fork() {
                Ok(sys::Fork::Parent(pid)) => {
                    if let Some(p) = &cfg.shim_pidfile {
                        if let Err(e) = std::fs::write(p, pid.to_string()) {
                            eprintln!("berth-shim: write {}: {e}", p.display());
                            return 1;
                        }
                    }
                    return 0;
                }
                Ok(sys::Fork::Child) => {}
                Err(e) => {
                    eprintln!("berth-shim: fork: {e}");
                    return 1;
                }
            }
        }
    } else if cfg.foreground {
        let fd = match cfg.sync_fd {
            Some(n) => sys::adopt_fd(n).ctx("fcntl", "--sync-fd"),
            None => {
                use std::os::fd::AsFd;
                std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .ctx("dup", "stdout")
            }
        };
        match fd {
            Ok(fd) => reporter.fd = Some(fd),
            Err(e) => {
                eprintln!("berth-shim: {e}");
                return 1;
            }
        }
    } else {
        match detach(cfg) {
            Ok(Detached::Caller(code)) => return code,
            Ok(Detached::Monitor(fd)) => reporter.fd = Some(fd),
            Err(e) => {
                eprintln!("berth-shim: {e}");
                return 1;
            }
        }
    }
    become_monitor(cfg, conmon.is_some());
    let mut env = monitor::Env {
        reporter,
        start_pipe,
        attach_pipe,
    };
    match monitor::run(cfg, &rt, log, &mut env) {
        Ok(code) => code,
        Err(e) => {
            note::warn(&e.to_string());
            env.reporter.error(&e.to_string());
            1
        }
    }
}

enum Detached {
    /// In the caller's process: exit with this code.
    Caller(i32),
    /// In the monitor: report through this pipe.
    Monitor(OwnedFd),
}

/// Own mode: double fork. The caller's process waits for the monitor's report on a pipe and
/// prints it; the middle process (setsid) exits at once so the monitor is nobody's child.
fn detach(cfg: &Config) -> Result<Detached> {
    let (r, w) = sys::pipe().ctx("pipe", "report")?;
    match sys::fork().ctx("fork", "")? {
        sys::Fork::Parent(mid) => {
            drop(w);
            let _ = sys::wait(mid);
            let mut msg = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = sys::read(r.as_raw_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                msg.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&msg).into_owned();
            if text.starts_with("{\"pid\":") {
                let out = cfg.sync_fd.unwrap_or(1);
                let _ = sys::write_all(out, text.as_bytes());
                Ok(Detached::Caller(0))
            } else {
                let err = extract_error(&text)
                    .unwrap_or_else(|| "monitor exited before reporting".to_string());
                eprintln!("berth-shim: {err}");
                if let Some(n) = cfg.sync_fd {
                    let _ = sys::write_all(n, text.as_bytes());
                }
                Ok(Detached::Caller(1))
            }
        }
        sys::Fork::Child => {
            drop(r);
            sys::setsid();
            match sys::fork().ctx("fork", "")? {
                sys::Fork::Parent(_) => std::process::exit(0),
                sys::Fork::Child => Ok(Detached::Monitor(w)),
            }
        }
    }
}

/// The text of `{"error":"..."}` (JSON-unescaped enough for a message line).
fn extract_error(text: &str) -> Option<String> {
    let s = text
        .trim()
        .strip_prefix("{\"error\":\"")?
        .strip_suffix("\"}")?;
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let h: String = chars.by_ref().take(4).collect();
                if let Some(c) = u32::from_str_radix(&h, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(c) => out.push(c),
            None => {}
        }
    }
    Some(out)
}

/// Subreaper, own pid file, stdio away from the caller.
fn become_monitor(cfg: &Config, conmon: bool) {
    if conmon {
        sys::setsid();
    }
    if let Err(e) = sys::set_subreaper() {
        note::warn(&format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"));
    }
    // The kernel should pick the container, not its monitor, when memory runs out.
    sys::set_oom_score_adj(-1000);
    let detached = conmon || !cfg.foreground;
    if let Some(p) = &cfg.shim_pidfile {
        if !conmon || conmon_sync(cfg) {
            let _ = std::fs::write(p, sys::getpid().to_string());
        }
    }
    if detached {
        if let Ok(null) = sys::open(std::path::Path::new("/dev/null"), libc::O_RDWR, 0) {
            let _ = sys::dup2(null.as_raw_fd(), 0);
            let _ = sys::dup2(null.as_raw_fd(), 1);
            let log = cfg.shim_log.as_ref().and_then(|p| {
                sys::open(p, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o640).ok()
            });
            let _ = sys::dup2(log.as_ref().unwrap_or(&null).as_raw_fd(), 2);
        }
    }
}

fn conmon_sync(cfg: &Config) -> bool {
    cfg.conmon.as_ref().is_some_and(|c| c.sync)
}
