//! Driving the runc-compatible runtime binary. Every call runs it to the end
//! and reads its error from its JSON log (`--log`), because during `create`
//! and `exec` its stderr is the container's.
//!
//! The shim is the children's reaper (containerd-shim's signal thread calls
//! waitpid(-1)), so a command's exit is taken from the reaper's events, with
//! a subscription made before the spawn: no exit can slip between the two.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use containerd_shim::api::Options;
use containerd_shim::monitor::Topic;
use containerd_shim::synchronous::monitor::{monitor_subscribe, wait_pid};

use crate::error::{Error, Result};
use crate::stdio;

/// Where a `delete` in a fresh process (containerd's cleanup of a dead shim)
/// finds the runtime the container was created with.
const SETTINGS_FILE: &str = "berth-shim-v2.json";
const LOG_FILE: &str = "log.json";
const DEFAULT_ROOT: &str = "/run/containerd/berth";

#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl Runtime {
    /// From the runc options containerd sends with a create (`BinaryName`,
    /// `Root`, `SystemdCgroup`), as containerd-shim-runc-v2 reads them. The
    /// default binary is the berth installed next to this shim, else berth on
    /// PATH; the default root is per namespace, so equal ids in two
    /// namespaces never meet.
    pub fn from_options(opts: Option<&Options>, namespace: &str) -> Runtime {
        let binary = match opts.map(|o| o.binary_name.as_str()) {
            Some(b) if !b.is_empty() => PathBuf::from(b),
            _ => default_binary(),
        };
        let root = match opts.map(|o| o.root.as_str()) {
            Some(r) if !r.is_empty() => PathBuf::from(r),
            _ => PathBuf::from(DEFAULT_ROOT),
        };
        Runtime {
            binary,
            root: root.join(namespace),
            systemd_cgroup: opts.is_some_and(|o| o.systemd_cgroup),
        }
    }

    pub fn save(&self, bundle: &Path) -> Result<()> {
        let v = serde_json::json!({
            "binary": self.binary,
            "root": self.root,
            "systemd_cgroup": self.systemd_cgroup,
        });
        let p = bundle.join(SETTINGS_FILE);
        std::fs::write(&p, v.to_string())
            .map_err(|e| Error::sys("write", p.display().to_string(), e))
    }

    pub fn load(bundle: &Path) -> Result<Runtime> {
        let p = bundle.join(SETTINGS_FILE);
        let raw = std::fs::read(&p).map_err(|e| Error::sys("read", p.display().to_string(), e))?;
        let v: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(PathBuf::from);
        match (s("binary"), s("root")) {
            (Some(binary), Some(root)) => Ok(Runtime {
                binary,
                root,
                systemd_cgroup: v
                    .get("systemd_cgroup")
                    .and_then(|x| x.as_bool())
                    .unwrap_or(false),
            }),
            _ => Err(Error::Invalid(format!(
                "{}: binary or root missing",
                p.display()
            ))),
        }
    }

    fn command(&self, bundle: &Path) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c.arg("--log")
            .arg(bundle.join(LOG_FILE))
            .args(["--log-format", "json"]);
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        io: stdio::Stdio,
    ) -> Result<u32> {
        let mut c = self.command(bundle);
        c.arg("create").arg("--bundle").arg(bundle);
        self.run_process(c, "create", id, bundle, pid_file, console, io)
    }

    pub fn exec(
        &self,
        id: &str,
        bundle: &Path,
        process: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        io: stdio::Stdio,
    ) -> Result<u32> {
        let mut c = self.command(bundle);
        c.args(["exec", "--detach", "--process"]).arg(process);
        self.run_process(c, "exec", id, bundle, pid_file, console, io)
    }

    /// `create` and `exec`: the process gets `io`, and its pid comes back
    /// through `pid_file`.
    #[allow(clippy::too_many_arguments)]
    fn run_process(
        &self,
        mut c: Command,
        verb: &'static str,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        io: stdio::Stdio,
    ) -> Result<u32> {
        c.arg("--pid-file").arg(pid_file);
        if let Some(s) = console {
            c.arg("--console-socket").arg(s);
        }
        c.arg(id);
        with_stdio(&mut c, io);
        self.run(c, verb, id, bundle, None)?;
        read_pid(pid_file)
    }

    pub fn simple(
        &self,
        verb: &'static str,
        id: &str,
        bundle: &Path,
        extra: &[&str],
    ) -> Result<()> {
        let mut c = self.command(bundle);
        c.arg(verb).args(extra).arg(id);
        quiet(&mut c);
        self.run(c, verb, id, bundle, None).map(drop)
    }

    pub fn kill(&self, id: &str, bundle: &Path, signal: u32, all: bool) -> Result<()> {
        let mut c = self.command(bundle);
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(id).arg(signal.to_string());
        quiet(&mut c);
        self.run(c, "kill", id, bundle, None).map(drop)
    }

    pub fn update(&self, id: &str, bundle: &Path, resources: &[u8]) -> Result<()> {
        let mut c = self.command(bundle);
        c.args(["update", "--resources", "-"]).arg(id);
        quiet(&mut c);
        c.stdin(Stdio::piped());
        self.run(c, "update", id, bundle, Some(resources)).map(drop)
    }

    pub fn ps(&self, id: &str, bundle: &Path) -> Result<Vec<u32>> {
        self.output_json(&["ps", "--format", "json"], id, bundle)
    }

    pub fn stats(&self, id: &str, bundle: &Path) -> Result<serde_json::Value> {
        self.output_json(&["events", "--stats"], id, bundle)
    }

    /// The JSON a command (`args[0]`, its verb) prints on stdout.
    fn output_json<T: serde::de::DeserializeOwned>(
        &self,
        args: &[&'static str],
        id: &str,
        bundle: &Path,
    ) -> Result<T> {
        let verb = args[0];
        let mut c = self.command(bundle);
        c.args(args).arg(id);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let out = self.run(c, verb, id, bundle, None)?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            verb,
            id: id.to_string(),
            msg: format!("unreadable output: {e}"),
        })
    }

    /// Run to the end; stdout when piped. An error carries the runtime's own
    /// last error line.
    fn run(
        &self,
        mut c: Command,
        verb: &'static str,
        id: &str,
        bundle: &Path,
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let log = bundle.join(LOG_FILE);
        let log_len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let sub = monitor_subscribe(Topic::Pid).map_err(|e| Error::Shim(e.to_string()))?;
        let mut child = c
            .spawn()
            .map_err(|e| Error::sys("exec", self.binary.display().to_string(), e))?;
        let pid = child.id() as i32;
        claim(pid);
        // Dropping the Command closes the parent's copies of the stdio now:
        // containerd must see end-of-file when the container's last writer goes.
        drop(c);
        if let (Some(mut w), Some(data)) = (child.stdin.take(), input) {
            let _ = w.write_all(data);
        }
        let mut out = Vec::new();
        if let Some(mut r) = child.stdout.take() {
            let _ = r.read_to_end(&mut out);
        }
        let code = wait_pid(pid, sub);
        release(pid);
        if code == 0 {
            return Ok(out);
        }
        let msg = last_error(&log, log_len).unwrap_or_else(|| format!("exit status {code}"));
        Err(Error::Runtime {
            verb,
            id: id.to_string(),
            msg,
        })
    }
}

fn default_binary() -> PathBuf {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let b = dir.join("berth");
        if b.is_file() {
            return b;
        }
    }
    PathBuf::from("berth")
}

fn with_stdio(c: &mut Command, io: stdio::Stdio) {
    c.stdin(io.stdin.map_or_else(Stdio::null, Stdio::from));
    c.stdout(io.stdout.map_or_else(Stdio::null, Stdio::from));
    c.stderr(io.stderr.map_or_else(Stdio::null, Stdio::from));
}

fn quiet(c: &mut Command) {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

fn read_pid(path: &Path) -> Result<u32> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| Error::sys("read", path.display().to_string(), e))?;
    s.trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("{}: not a pid: {:?}", path.display(), s.trim())))
}

/// The `msg` of the last error line the runtime appended to its JSON log.
fn last_error(log: &Path, from: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    let new = text.get(from as usize..).unwrap_or(&text);
    new.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v.get("level")?.as_str()? == "error")
            .then(|| v.get("msg")?.as_str().map(str::to_string))?
    })
}

/// Exits the reaper reported for pids nobody knew yet, and the pids of
/// runtime commands (their exits belong to `run`, not to a container).
#[derive(Default)]
pub struct Reaped {
    commands: HashSet<i32>,
    early: HashMap<i32, (i32, SystemTime)>,
}

/// Unknown exits kept at most: orphans of a container without its own pid
/// namespace are reparented to the shim and die unknown.
const EARLY_MAX: usize = 1024;

fn reaped() -> MutexGuard<'static, Reaped> {
    static R: OnceLock<Mutex<Reaped>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn claim(pid: i32) {
    reaped().commands.insert(pid);
}

/// After `run` has its exit: if the exit thread filed it as unknown before
/// `claim`, take it back; otherwise the exit thread drops the claim.
fn release(pid: i32) {
    let mut r = reaped();
    if r.early.remove(&pid).is_some() {
        r.commands.remove(&pid);
    }
}

/// For the exit thread: is this a runtime command's exit (ignore it)?
/// Otherwise it is a container process's, or filed for `take_early`.
pub fn note_exit(pid: i32, code: i32, known: bool) -> bool {
    let mut r = reaped();
    if r.commands.remove(&pid) {
        return true;
    }
    if !known {
        if r.early.len() >= EARLY_MAX {
            if let Some(oldest) = r.early.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k) {
                r.early.remove(&oldest);
            }
        }
        r.early.insert(pid, (code, SystemTime::now()));
    }
    false
}

/// An exit that came before its process was registered.
pub fn take_early(pid: i32) -> Option<(i32, SystemTime)> {
    reaped().early.remove(&pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_reads_only_what_this_command_appended() {
        let dir = std::env::temp_dir().join(format!("berth-v2-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(LOG_FILE);
        let old = "{\"level\":\"error\",\"msg\":\"an earlier command's error\",\"time\":\"t\"}\n";
        std::fs::write(&log, old).unwrap();
        let from = old.len() as u64;
        assert_eq!(last_error(&log, from), None);
        let new = "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n\
                   {\"level\":\"warning\",\"msg\":\"noise\",\"time\":\"t\"}\n\
                   {\"level\":\"error\",\"msg\":\"mounts[2].destination: must be absolute\",\"time\":\"t\"}\n\
                   {\"level\":\"info\",\"msg\":\"after\",\"time\":\"t\"}\n";
        std::fs::write(&log, format!("{old}{new}")).unwrap();
        assert_eq!(
            last_error(&log, from).as_deref(),
            Some("mounts[2].destination: must be absolute")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Pids far above pid_max, so no real exit in this test process can meet them.
    #[test]
    fn a_command_exit_is_never_a_container_exit_whatever_the_order() {
        // The reaper's event after the claim: the exit thread drops it.
        claim(90_000_001);
        assert!(note_exit(90_000_001, 0, false));
        release(90_000_001);
        assert_eq!(take_early(90_000_001), None);
        // The event before the claim: filed as unknown, taken back by release.
        assert!(!note_exit(90_000_002, 1, false));
        claim(90_000_002);
        release(90_000_002);
        assert_eq!(take_early(90_000_002), None);
        assert!(!reaped().commands.contains(&90_000_002));
    }

    #[test]
    fn an_exit_before_registration_is_kept_for_it() {
        assert!(!note_exit(90_000_003, 137, false));
        assert_eq!(take_early(90_000_003).map(|e| e.0), Some(137));
        assert_eq!(take_early(90_000_003), None);
        // A known process's exit is applied by the caller, not filed.
        assert!(!note_exit(90_000_004, 0, true));
        assert_eq!(take_early(90_000_004), None);
    }
}
