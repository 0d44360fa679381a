//! Shared fixtures: busybox-static bundles, unique ids, a temporary runtime root, cleanup on drop.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The runtime under test: $RUNTIME, else the workspace's freshly built berth.
pub fn runtime() -> PathBuf {
    if let Some(r) = std::env::var_os("RUNTIME").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for p in ["target/debug/berth", "target/release/berth"] {
        if ws.join(p).exists() {
            return ws.join(p);
        }
    }
    PathBuf::from("berth")
}

/// Tests start detached shims; they are reparented to us, so we must reap them.
pub fn subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

pub struct Ctx {
    pub id: String,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// linux.cgroupsPath of the bundle: under a parent of the tests' own, which goes with the
    /// last test (berth keeps its shared `/berth` parent, so the default path would leave it).
    pub cgroup: String,
}

const CG_PARENT: &str = "/berth-shim-test";

impl Ctx {
    pub fn new(tag: &str, args: &[&str]) -> Ctx {
        subreaper();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("bst-{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root");
        let bundle = dir.join("bundle");
        let cgroup = format!("{CG_PARENT}/{id}");
        make_bundle(&bundle, args, &cgroup);
        Ctx {
            id,
            dir,
            root,
            bundle,
            cgroup,
        }
    }

    pub fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Edit config.json.
    pub fn config(&self, f: impl FnOnce(&mut Value)) {
        let path = self.bundle.join("config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    /// Own-CLI arguments common to every test.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--id".into(),
            self.id.clone(),
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--runtime".into(),
            runtime().display().to_string(),
            "--runtime-root".into(),
            self.root.display().to_string(),
            "--shim-pid-file".into(),
            self.p("shim.pid").display().to_string(),
            "--shim-log".into(),
            self.p("shim.log").display().to_string(),
        ]
    }

    pub fn shim(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(SHIM);
        c.args(self.base_args()).args(extra);
        c
    }

    /// Start detached; returns the caller's output (`{"pid":N}`).
    pub fn start(&self, extra: &[&str]) -> Output {
        let out = self.shim(extra).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "shim failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn shim_pid(&self) -> i32 {
        wait_for(|| std::fs::read_to_string(self.p("shim.pid")).ok(), 10)
            .trim()
            .parse()
            .unwrap()
    }

    /// Wait until the detached shim exited (and reap it) and return the exit record.
    pub fn wait_exit(&self, exit_file: &Path, secs: u64) -> Value {
        let pid = self.shim_pid();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let mut st = 0;
            // SAFETY: st is a valid int; the shim was reparented to us (subreaper).
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if r == pid || (r < 0 && !Path::new(&format!("/proc/{pid}")).exists()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shim {pid} still running after {secs}s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        serde_json::from_slice(&std::fs::read(exit_file).expect("exit file")).unwrap()
    }

    /// Create `rootfs/tmp/NAME`: the container sees it (tests use it to tell a container to
    /// go on, instead of sleeping for a time that a loaded machine may not keep).
    pub fn signal_container(&self, name: &str) {
        std::fs::write(self.bundle.join("rootfs/tmp").join(name), b"").unwrap();
    }

    pub fn runtime_list(&self) -> String {
        let out = Command::new(runtime())
            .arg("--root")
            .arg(&self.root)
            .args(["list", "-q"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let rt = runtime();
        let _ = Command::new(&rt)
            .arg("--root")
            .arg(&self.root)
            .args(["kill", &self.id, "KILL"])
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(50));
        let _ = Command::new(&rt)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
        if let Ok(pid) = std::fs::read_to_string(self.p("shim.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: a pid this test started (read from its own pid file).
                if pid > 0 && unsafe { libc::kill(pid, 0) } == 0 {
                    let cmd =
                        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if cmd.contains(&self.id) {
                        // SAFETY: as above, and it is still our shim.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    // SAFETY: reaping our own (reparented) child.
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                }
            }
        }
        // The container's cgroup (delete removed it unless something failed), then the tests'
        // parent, which stays while other tests still have theirs in it. /sys/fs/cgroup itself
        // is the v2 hierarchy, each directory in it a v1 one.
        let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            roots.extend(rd.flatten().map(|e| e.path()));
        }
        for cg in [self.cgroup.as_str(), CG_PARENT] {
            for r in &roots {
                let _ = std::fs::remove_dir(r.join(cg.trim_start_matches('/')));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn wait_for<T>(mut f: impl FnMut() -> Option<T>, secs: u64) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox-static is needed (apt-get install busybox-static)");
}

/// A busybox-static rootfs and a minimal config.json running `args` in cgroup `cgroup`.
pub fn make_bundle(dir: &Path, args: &[&str], cgroup: &str) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"],
                "effective": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"],
                "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]
            },
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "shimtest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroup,
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"]
        }
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// CRI log → per stream, the reassembled lines (P records joined up to their F).
pub fn cri_lines(log: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut pout, mut perr): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    for rec in log.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
        let mut parts = rec.splitn(4, |&b| b == b' ');
        let ts = parts.next().unwrap();
        assert_eq!(
            ts.len(),
            30,
            "timestamp in {:?}",
            String::from_utf8_lossy(rec)
        );
        let stream = parts.next().unwrap();
        let tag = parts.next().unwrap();
        let body = parts.next().unwrap_or(b"");
        let (lines, partial) = match stream {
            b"stdout" => (&mut out, &mut pout),
            b"stderr" => (&mut err, &mut perr),
            s => panic!("stream {:?}", String::from_utf8_lossy(s)),
        };
        partial.extend_from_slice(body);
        match tag {
            b"F" => lines.push(std::mem::take(partial)),
            b"P" => {}
            t => panic!("tag {:?}", String::from_utf8_lossy(t)),
        }
    }
    if !pout.is_empty() {
        out.push(pout);
    }
    if !perr.is_empty() {
        err.push(perr);
    }
    (out, err)
}

/// A container script that prints 1, 2, ... every 0.1 s until the test calls
/// `signal_container("stop")` (or a minute passed), then `end`.
pub const PRINT_UNTIL_STOP: &str =
    "i=0; while [ ! -e /tmp/stop ] && [ $i -lt 600 ]; do i=$((i+1)); echo $i; sleep 0.1; done; echo end";

/// Lines 1..n then "end", as PRINT_UNTIL_STOP writes them (n at least 1).
pub fn counted_then_end(lines: &[Vec<u8>]) -> bool {
    let n = lines.len().saturating_sub(1);
    n >= 1 && lines[..n] == numbered("", n)[..] && lines[n] == b"end"
}

pub fn numbered(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

/// Does this host let the runtime put a memory limit on a container (cgroup v1 or v2)?
pub fn memory_cgroup() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
}
