//! The runtime under test, driven only through its runc-compatible command line.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Bundle;
use crate::tempdir::{self, TempDir};
use crate::{leftovers, reaper, Error, Result};

/// Longest any single runtime command may take before the test fails and the command is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmd: String,
    /// Exit code, or 128 + signal number when killed.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The output, or an error showing the command and what it printed.
    pub fn ok(self) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error(format!("{self}")))
        }
    }

    /// The output if the command failed, an error if it succeeded.
    pub fn failed(self) -> Result<Output> {
        if self.success() {
            Err(Error(format!("expected failure, got success: {self}")))
        } else {
            Ok(self)
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}; stdout: {:?}; stderr: {:?}",
            self.cmd,
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Path of the runtime binary: env RUNTIME, else the freshly built berth.
pub fn binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(v) = std::env::var_os("RUNTIME").filter(|v| !v.is_empty()) else {
        let release = workspace.join("target/release/berth");
        let debug = workspace.join("target/debug/berth");
        return if std::env::var_os("BERTH_PROFILE").is_some_and(|p| p == "release") {
            release
        } else {
            debug
        };
    };
    let p = PathBuf::from(&v);
    if p.is_absolute() {
        return p;
    }
    if p.components().count() == 1 {
        // A bare name: look it up in PATH like a shell would.
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let c = dir.join(&p);
                if c.is_file() {
                    return c;
                }
            }
        }
        return p;
    }
    if p.exists() {
        return p;
    }
    workspace.join(p)
}

/// The runtime's `--version` output (first line), cached.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        reaper::output(Command::new(binary()).arg("--version").stdin(Stdio::null()))
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    })
}

/// Whether berth's own promises (one-line errors naming the field...) are asserted.
/// BERTH_STRICT=1/0 overrides detection by `--version`.
pub fn is_berth() -> bool {
    match std::env::var("BERTH_STRICT").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => version().to_lowercase().contains("berth"),
    }
}

/// One test's view of the runtime: its own temporary directory and `--root`, the ids and
/// bundles it made, all cleaned up on drop.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    tmp: TempDir,
    ids: Mutex<Vec<String>>,
    cgroups: Mutex<Vec<String>>,
    seq: Mutex<u32>,
}

impl Runtime {
    pub fn new() -> Result<Runtime> {
        reaper::init();
        let tmp = TempDir::new("rt")?;
        let root = tmp.path().join("state");
        Ok(Runtime {
            bin: binary(),
            root,
            tmp,
            ids: Mutex::new(Vec::new()),
            cgroups: Mutex::new(Vec::new()),
            seq: Mutex::new(0),
        })
    }

    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    fn next(&self) -> u32 {
        let mut s = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        *s += 1;
        *s
    }

    /// A container id unique on this machine; contains "berth" like every cgroup we make.
    pub fn new_id(&self) -> String {
        let id = format!("berth-{}-{}", std::process::id(), tempdir::unique());
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.clone());
        id
    }

    /// A bundle in this test's directory running `args`, with its own cgroup path.
    pub fn bundle(&self, args: &[&str]) -> Result<Bundle> {
        let n = tempdir::unique();
        let cg = format!("/berth-test-{}-{n}", std::process::id());
        self.cgroups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(cg.clone());
        let mut b = Bundle::create(&self.tmp.path().join(format!("bundle-{n}")), args, &cg)?;
        // Lets cleanup and the leftovers check find the container's processes by environment.
        let env = b.config["process"]["env"].as_array_mut();
        if let Some(env) = env {
            env.push(Value::String(format!("{}={cg}", leftovers::MARKER_ENV)));
        }
        b.save()?;
        Ok(b)
    }

    /// Runs the runtime with `--root` and `args`.
    pub fn cmd(&self, args: &[&str]) -> Result<Output> {
        self.cmd_timeout(args, COMMAND_TIMEOUT)
    }

    pub fn cmd_timeout(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        let mut full: Vec<String> = vec!["--root".into(), self.root.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        self.exec(&full, timeout)
    }

    /// Runs the runtime with `--root` and `args`, with `files` open (read-only, not
    /// close-on-exec) as fds 3, 4, ... of the runtime process, as a caller leaking fds would.
    pub fn cmd_with_fds(&self, files: &[&Path], args: &[&str]) -> Result<Output> {
        let mut full: Vec<String> = vec!["--root".into(), self.root.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        self.exec_inner(&full, files, COMMAND_TIMEOUT)
    }

    /// Runs the runtime with exactly `args` (no --root added).
    pub fn exec(&self, args: &[String], timeout: Duration) -> Result<Output> {
        self.exec_inner(args, &[], timeout)
    }

    fn exec_inner(&self, args: &[String], files: &[&Path], timeout: Duration) -> Result<Output> {
        let n = self.next();
        let out_p = self.tmp.path().join(format!("cmd-{n}.out"));
        let err_p = self.tmp.path().join(format!("cmd-{n}.err"));
        let mut cmd = if files.is_empty() {
            Command::new(&self.bin)
        } else {
            // The shell opens the fds without O_CLOEXEC and execs the runtime in its place.
            let opens: Vec<String> = files
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{}<'{}'", i + 3, f.display()))
                .collect();
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("exec {}; exec \"$0\" \"$@\"", opens.join(" ")))
                .arg(&self.bin);
            c
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out_p)?)
            .stderr(File::create(&err_p)?);
        let shown = format!("{} {}", self.bin.display(), args.join(" "));
        let mut child = reaper::spawn(&mut cmd)
            .map_err(|e| Error(format!("cannot execute {}: {e}", self.bin.display())))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    reaper::release(child.id());
                    return Err(Error(format!("waiting for `{shown}`: {e}")));
                }
            }
        };
        reaper::release(child.id());
        let stdout = fs::read_to_string(&out_p).unwrap_or_default();
        let stderr = fs::read_to_string(&err_p).unwrap_or_default();
        let _ = fs::remove_file(&out_p);
        let _ = fs::remove_file(&err_p);
        let Some(status) = status else {
            return Err(Error(format!(
                "`{shown}` did not finish within {timeout:?}; stderr: {stderr:?}"
            )));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Ok(Output {
            cmd: shown,
            code,
            stdout,
            stderr,
        })
    }

    pub fn create(&self, id: &str, b: &Bundle) -> Result<Output> {
        self.create_with(id, b, &[])
    }

    pub fn create_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Result<Output> {
        let dir = b.dir.display().to_string();
        let mut args = vec!["create", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    pub fn start(&self, id: &str) -> Result<Output> {
        self.cmd(&["start", id])
    }

    /// `run` in the foreground: returns when the container has exited.
    pub fn run(&self, id: &str, b: &Bundle) -> Result<Output> {
        self.run_with(id, b, &[])
    }

    pub fn run_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Result<Output> {
        let dir = b.dir.display().to_string();
        let mut args = vec!["run", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    /// Runs `b` in the foreground under a fresh id and returns its stdout, failing the test
    /// unless the container exits 0.
    pub fn run_ok(&self, b: &Bundle) -> Result<String> {
        let id = self.new_id();
        let out = self.run(&id, b)?.ok()?;
        Ok(out.stdout)
    }

    pub fn state(&self, id: &str) -> Result<Value> {
        let out = self.cmd(&["state", id])?.ok()?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| Error(format!("state output is not JSON ({e}): {:?}", out.stdout)))
    }

    pub fn status(&self, id: &str) -> Result<String> {
        let s = self.state(id)?;
        Ok(s["status"].as_str().unwrap_or_default().to_owned())
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<Output> {
        self.cmd(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Result<Output> {
        self.cmd(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Result<Output> {
        self.cmd(&["delete", "--force", id])
    }

    /// Polls `state` until the container reports `status`.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.status(id)?;
            if last == status {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(Error(format!(
            "container {id} still {last:?} after {timeout:?}, expected {status:?}"
        )))
    }

    /// Creates and starts `b` under a fresh id, returning the id.
    pub fn start_new(&self, b: &Bundle) -> Result<String> {
        let id = self.new_id();
        self.create(&id, b)?.ok()?;
        self.start(&id)?.ok()?;
        Ok(id)
    }

    /// Everything a failed or finished container may have left: see `leftovers::check`.
    pub fn assert_no_leftovers(&self, id: &str, b: &Bundle) -> Result {
        leftovers::check(self, id, b)
    }

    fn cgroup_paths(&self) -> Vec<String> {
        self.cgroups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Polls until `path` exists.
pub fn wait_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    path.exists()
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for id in &ids {
            let _ = self.cmd_timeout(&["delete", "--force", id], Duration::from_secs(10));
        }
        // Whatever survived: our container processes, found by marker env or cgroup.
        for cg in self.cgroup_paths() {
            leftovers::kill_processes(&cg);
            leftovers::remove_cgroups(&cg);
        }
    }
}
