//! Running the OCI runtime binary: create (or conmon's exec), start, kill, delete.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Ctx, Error, Result};
use crate::sys;

pub struct Runtime {
    pub path: PathBuf,
    pub global: Vec<String>,
}

/// `berth` next to this binary, else the first in PATH.
fn default_runtime() -> Option<PathBuf> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let p = dir.join("berth");
        if is_executable(&p) {
            return Some(p);
        }
    }
    find_in_path("berth")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Runtime {
    pub fn resolve(path: Option<&Path>, global: Vec<String>) -> Result<Runtime> {
        let path = match path {
            None => default_runtime().ok_or_else(|| {
                Error::Usage("--runtime: no 'berth' next to berth-shim or in PATH".into())
            })?,
            Some(p) if p.components().count() == 1 && !p.is_absolute() => {
                find_in_path(&p.to_string_lossy()).ok_or_else(|| {
                    Error::Usage(format!("--runtime: '{}' not found in PATH", p.display()))
                })?
            }
            Some(p) => {
                if !is_executable(p) {
                    return Err(Error::Usage(format!(
                        "--runtime: '{}' is not an executable file",
                        p.display()
                    )));
                }
                p.to_path_buf()
            }
        };
        Ok(Runtime { path, global })
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.global);
        sys::clean_signals_on_exec(&mut c);
        c
    }

    /// Run `args` (verb first) with the given stdio; returns the runtime's pid.
    pub fn spawn(
        &self,
        args: &[String],
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<i32> {
        let mut c = self.cmd();
        c.args(args).stdin(stdin).stdout(stdout).stderr(stderr);
        let child = c.spawn().ctx("exec", self.path.display())?;
        // `c` (and with it our copies of the child's stdio) is dropped here.
        Ok(child.id() as i32)
    }

    /// A short verb whose failure text (stderr) we want verbatim.
    pub fn run(&self, args: &[&str]) -> Result<()> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ctx("exec", self.path.display())?;
        if out.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
            Err(Error::Runtime(if text.is_empty() {
                format!("{} {}: {}", self.path.display(), args[0], out.status)
            } else {
                text
            }))
        }
    }
}

/// Read what is buffered on a pipe without blocking (the runtime's error text).
pub fn drain_text(fd: &OwnedFd) -> String {
    let _ = sys::set_nonblock(fd.as_raw_fd(), true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    while len < buf.len() {
        match sys::read(fd.as_raw_fd(), &mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    String::from_utf8_lossy(&buf[..len]).trim_end().to_string()
}
