//! The last steps of every container process, shared by the init and by
//! `exec`: what can fail on bad config is checked in [`Finalize::prepare`]
//! (before the runtime reports success); [`Finalize::exec`] then drops
//! privileges in the order the kernel needs and calls execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use oci_spec::runtime::{LinuxSeccomp, Process};

use crate::error::{Error, Result};
use crate::{capabilities, identity, seccomp};

pub struct Finalize<'a> {
    process: &'a Process,
    caps: Option<capabilities::Sets>,
    filter: Option<seccomp::Program>,
    /// Where the notify listener fd goes (`SCMP_ACT_NOTIFY`): the agent's
    /// socket, connected before pivot_root, the seccomp config and the
    /// state JSON to send with it.
    agent: Option<Agent<'a>>,
    exe: CString,
    /// The process is in a user namespace (setgroups may be denied there).
    userns: bool,
    preserve_fds: u32,
}

pub struct Agent<'a> {
    pub socket: OwnedFd,
    pub seccomp: &'a LinuxSeccomp,
    pub state_json: String,
}

impl<'a> Finalize<'a> {
    /// Hand the notify listener fd to a seccomp agent once installed.
    pub fn with_agent(mut self, agent: Option<Agent<'a>>) -> Self {
        self.agent = agent;
        self
    }

    fn install_seccomp(&self) -> Result<()> {
        let Some(f) = &self.filter else { return Ok(()) };
        let listener = seccomp::install(f)?;
        if let (Some(fd), Some(agent)) = (listener, &self.agent) {
            let state: serde_json::Value =
                serde_json::from_str(&agent.state_json).unwrap_or_default();
            let pid = state["pid"].as_i64().unwrap_or(0) as i32;
            seccomp::send_listener_fd(&agent.socket, &fd, agent.seccomp, pid, &agent.state_json)?;
        }
        Ok(())
    }

    /// Translate capabilities, compile the seccomp filter and find the
    /// executable, in the container's mount namespace.
    pub fn prepare(
        process: &'a Process,
        seccomp: Option<&LinuxSeccomp>,
        userns: bool,
        preserve_fds: u32,
    ) -> Result<Finalize<'a>> {
        let caps = capabilities::from_spec(process.capabilities().as_ref())?;
        let filter = match seccomp {
            Some(s) => Some(seccomp::compile(s)?),
            None => None,
        };
        let exe = find_executable(process)?;
        Ok(Finalize {
            process,
            caps,
            filter,
            agent: None,
            exe,
            userns,
            preserve_fds,
        })
    }

    /// Bounding set, seccomp, cwd, user, capabilities, no_new_privs, fds,
    /// execve. Returns only on failure.
    pub fn exec(self) -> Result<Infallible> {
        let process = self.process;
        let nnp = process.no_new_privileges().unwrap_or(false);
        if let Some(c) = &self.caps {
            capabilities::drop_bounding(c)?;
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which
        // the user switch may take away: load it now (runc does the same).
        if !nnp {
            self.install_seccomp()?;
        }
        set_keepcaps(true)?;
        chdir(process.cwd())?;
        identity::switch_user(process, self.userns)?;
        set_keepcaps(false)?;
        match &self.caps {
            Some(c) => capabilities::apply(c)?,
            None => capabilities::clear_inherited()?,
        }
        // Before the filter goes in: a profile may deny close_range or
        // rt_sigaction, and these are the runtime's calls, not the user's.
        crate::sys::cloexec_from(3 + self.preserve_fds)
            .map_err(|e| Error::sys("close_range", "fds", e))?;
        reset_signals();
        if nnp {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(Error::sys(
                    "prctl(PR_SET_NO_NEW_PRIVS)",
                    "",
                    nix::errno::Errno::last(),
                ));
            }
            self.install_seccomp()?;
        }
        exec(&self.exe, process)
    }
}

/// The user's program starts with every signal at its default action and
/// none blocked. execve keeps ignored dispositions and the mask: without
/// this the container would inherit SIGPIPE ignored (Rust's runtime sets
/// that in berth) and whatever the caller blocked (a shim's signalfd
/// blocks SIGCHLD, and a shell in the container then never reaps).
fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always valid; numbers the kernel
        // rejects (glibc's reserved RT signals) are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

fn set_keepcaps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(Error::sys(
            "prctl(PR_SET_KEEPCAPS)",
            "",
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

pub fn chdir(cwd: &Path) -> Result<()> {
    // Resolved inside the new root with magic links refused, so neither
    // `..` nor /proc/self/fd/N (a leaked host directory, CVE-2024-21626)
    // can take it outside.
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", "/", e))?;
    // SAFETY: fresh fd from open(2), owned by nobody else.
    let root: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(root) };
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let rel = cwd.strip_prefix("/").unwrap_or(cwd);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let dir = crate::sys::openat2(&root, rel, how)
        .map_err(|e| Error::config("process.cwd", format!("{}: {e}", cwd.display())))?;
    nix::unistd::fchdir(dir.as_raw_fd())
        .map_err(|e| Error::config("process.cwd", format!("chdir {}: {e}", cwd.display())))?;
    // Belt and braces: a cwd outside the root makes getcwd fail or say
    // "(unreachable)".
    match nix::unistd::getcwd() {
        Ok(p) if p.starts_with("/") => Ok(()),
        _ => Err(Error::config(
            "process.cwd",
            format!("{} is outside the container's root", cwd.display()),
        )),
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// args[0] as execve will find it, looked up in the process's PATH.
fn find_executable(p: &Process) -> Result<CString> {
    let arg0 = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| Error::config("process.args", "must not be empty"))?;
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![PathBuf::from(arg0)]
    } else {
        let path = p
            .env()
            .iter()
            .flatten()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
            .collect()
    };
    for c in &candidates {
        if nix::unistd::access(c, nix::unistd::AccessFlags::X_OK).is_ok() && !c.is_dir() {
            return CString::new(c.as_os_str().as_encoded_bytes())
                .map_err(|_| Error::config("process.args[0]", "contains a NUL byte"));
        }
    }
    Err(Error::config(
        "process.args[0]",
        format!("{arg0:?}: executable file not found in $PATH"),
    ))
}

fn exec(exe: &CString, p: &Process) -> Result<Infallible> {
    let to_c = |s: &String| {
        CString::new(s.as_bytes())
            .map_err(|_| Error::config("process", format!("{s:?} contains a NUL byte")))
    };
    let args = p
        .args()
        .iter()
        .flatten()
        .map(to_c)
        .collect::<Result<Vec<_>>>()?;
    let env = p
        .env()
        .iter()
        .flatten()
        .map(to_c)
        .collect::<Result<Vec<_>>>()?;
    let e = nix::unistd::execve(exe, &args, &env).unwrap_err();
    Err(Error::sys("execve", exe.to_string_lossy(), e))
}
