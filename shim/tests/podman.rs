//! conmon compatibility, end to end: podman with `--conmon berth-shim`, a private store, an
//! image imported from a busybox tarball (no registry needed).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let d = |n: &str| self.dir.join(n).display().to_string();
        let mut c = Command::new("podman");
        c.args([
            "--root",
            &d("root"),
            "--runroot",
            &d("runroot"),
            "--tmpdir",
            &d("tmp"),
        ])
        .args(["--conmon", SHIM])
        .arg("--runtime")
        .arg(runtime())
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .args(["--storage-driver", "vfs"]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
        // Whatever podman left mounted below our directory (shm, overlay) goes first.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&self.dir))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Ulimits the host allows us to set (root lacks CAP_SYS_RESOURCE here; podman's defaults
/// would be refused by the runtime).
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn podman_runs_containers_through_berth_shim() {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("SKIP podman_runs_containers_through_berth_shim: podman not installed");
        return;
    }
    let c = Ctx::new("podman", &["true"]);
    let pm = Podman { dir: c.p("podman") };
    std::fs::create_dir_all(pm.dir.join("tmp")).unwrap();
    let tar = c.p("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(c.bundle.join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let image = format!("localhost/{}:latest", c.id);
    let o = pm.run(&["import", tar.to_str().unwrap(), &image]);
    assert!(o.status.success(), "{}", text(&o));

    // Foreground: attach socket (stdout and stderr told apart), exit code through the exit dir.
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(ULIMITS);
    args.extend([
        &image,
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; exit 7",
    ]);
    let o = pm.run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(126) && err.contains("not implemented") {
        eprintln!("SKIP podman_runs_containers_through_berth_shim: the runtime cannot run podman's config: {err}");
        return;
    }
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "to-stdout\n",
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("to-stderr"),
        "{}",
        text(&o)
    );

    // stdin through the attach socket.
    let mut args = vec!["run", "-i", "--rm", "--net", "none"];
    args.extend(ULIMITS);
    args.extend([&image, "sh", "-c", "read x; echo got-$x"]);
    let mut child = pm
        .cmd()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "got-hello\n",
        "{}",
        text(&o)
    );

    // Detached: the k8s-file log, wait, inspect, exec.
    let name = format!("{}-d", c.id);
    let mut args = vec!["run", "-d", "--name", &name, "--net", "none"];
    args.extend(ULIMITS);
    // The container runs until the exec tells it to finish (at most a minute), so that exec
    // finds it running however slow podman is on a loaded machine.
    args.extend([
        &image,
        "sh",
        "-c",
        "echo one; echo two; i=0; while [ ! -e /tmp/go ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done; exit 5",
    ]);
    let o = pm.run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let o = pm.run(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo in-exec; touch /tmp/go; exit 9",
    ]);
    assert_eq!(o.status.code(), Some(9), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "in-exec\n",
        "{}",
        text(&o)
    );
    let o = pm.run(&["wait", &name]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "5",
        "{}",
        text(&o)
    );
    let o = pm.run(&["logs", &name]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "one\ntwo\n",
        "{}",
        text(&o)
    );
    let o = pm.run(&[
        "inspect",
        &name,
        "--format",
        "{{.State.ExitCode}} {{.State.Status}}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "5 exited",
        "{}",
        text(&o)
    );

    // The runtime's error reaches podman's user verbatim.
    let o = pm.run(&["run", "--rm", "--net", "none", &image, "true"]);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("rlimit") || err.contains("create"),
            "{}",
            text(&o)
        );
    }
}
