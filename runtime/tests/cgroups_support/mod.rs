//! A small harness for the cgroup container tests: busybox bundles, a private
//! `--root`, and cleanup even when a test fails. The runtime under test comes
//! from `RUNTIME` (default: the berth binary cargo built).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn runtime() -> PathBuf {
    std::env::var_os("RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

pub fn is_runc() -> bool {
    runtime()
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("runc"))
}

pub fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static is needed for the test rootfs")
}

pub struct Container {
    pub id: String,
    pub cgroups_path: String,
    dir: PathBuf,
    root: PathBuf,
    /// Container init pids: orphans this test process must reap.
    pids: Mutex<Vec<i32>>,
}

/// Orphaned container processes come back to the test process, not to a
/// PID 1 that does not reap; each is reaped by pid when its test ends.
fn subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a process flag.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

impl Container {
    /// A bundle running `sh -c script` with `resources` as linux.resources.
    pub fn new(name: &str, script: &str, resources: Value) -> Container {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("berth-cgt-{}-{n}-{name}", std::process::id());
        let dir = std::env::temp_dir().join(&id);
        let root = dir.join("state");
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        std::fs::create_dir_all(&root).expect("mkdir root");
        std::fs::copy(busybox(), rootfs.join("bin/busybox")).expect("copy busybox");
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("symlink sh");
        let cgroups_path = format!("/{id}");
        let caps = json!(["CAP_KILL", "CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/busybox", "sh", "-c", script],
                "env": ["PATH=/bin"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "cgt",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
            ],
            "linux": {
                "resources": resources,
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "cgroupsPath": cgroups_path
            }
        });
        std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");
        Container {
            id,
            cgroups_path,
            dir,
            root,
            pids: Mutex::new(Vec::new()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Run the runtime with `args`, stdin closed, output captured.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn runtime")
    }

    /// `run`: the container's exit status and output.
    pub fn run(&self) -> Output {
        let bundle = self.dir.to_string_lossy().into_owned();
        self.rt(&["run", "--bundle", &bundle, &self.id])
    }

    /// `create` + `start`, detached. The container inherits the runtime's
    /// stdio, so create's stderr goes to a file: a pipe would stay open.
    pub fn start(&self) {
        let out = self.create();
        assert!(out.status.success(), "create: {}", text(&out.stderr));
        ok(&self.rt(&["start", &self.id]), "start");
        if let Some(pid) = self.state()["pid"].as_i64() {
            self.pids.lock().expect("lock").push(pid as i32);
        }
    }

    /// `create` only; stdout and stderr of the runtime (and the container).
    pub fn create(&self) -> Output {
        subreaper();
        let bundle = self.dir.to_string_lossy().into_owned();
        let err_path = self.dir.join("create.err");
        let err = std::fs::File::create(&err_path).expect("create.err");
        let status = self
            .cmd(&["create", "--bundle", &bundle, &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .expect("spawn create");
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("state json")
    }

    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn wait_status(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status() != want {
            assert!(Instant::now() < deadline, "never reached {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host file of this container's cgroup: `v1` = (controller, file).
    pub fn cgroup_file(&self, v1: (&str, &str), v2: &str) -> PathBuf {
        let rel = self.cgroups_path.trim_start_matches('/');
        if is_v2() {
            Path::new("/sys/fs/cgroup").join(rel).join(v2)
        } else {
            Path::new("/sys/fs/cgroup").join(v1.0).join(rel).join(v1.1)
        }
    }

    pub fn read_cgroup(&self, v1: (&str, &str), v2: &str) -> String {
        let p = self.cgroup_file(v1, v2);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Every cgroup directory of this container still on the host.
    pub fn cgroup_leftovers(&self) -> Vec<PathBuf> {
        let rel = self.cgroups_path.trim_start_matches('/');
        let mut found = Vec::new();
        let top = Path::new("/sys/fs/cgroup").join(rel);
        if top.exists() {
            found.push(top);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let p = e.path().join(rel);
                if p.exists() {
                    found.push(p);
                }
            }
        }
        found
    }

    pub fn state_leftover(&self) -> bool {
        self.root.join(&self.id).exists()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.rt(&["delete", "--force", &self.id]);
        if let Ok(pids) = self.pids.lock() {
            for &pid in pids.iter() {
                for _ in 0..100 {
                    // SAFETY: waitpid on a pid this test started; WNOHANG never blocks.
                    let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                    if r != 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
