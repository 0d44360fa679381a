//! conmon mode, as podman and log-throughput.sh drive it: a container writes N MiB of 100-byte
//! lines as fast as it can (`yes | head -c`); the k8s-file log must hold exactly those bytes
//! once the CRI prefixes are stripped and P records joined, and the shim's peak RSS must stay
//! under 2 MiB. N is 64 by default; `SHIM_LOG_MIB=1024` gives the issue's 1 GiB figure
//! (`make bench` runs it so, with the release build).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LINE: &str =
    "log-line-000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const PEAK_RSS_LIMIT_KB: u64 = 2048;

fn hwm_kb(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}

/// Content of a CRI log with prefixes stripped and partial records joined: checks every line
/// against LINE as it goes (the log is 1.4x the payload: not read into memory) and returns
/// (complete lines, bytes of the unterminated last line).
fn check_cri_payload(path: &std::path::Path) -> (u64, usize) {
    let f = std::fs::File::open(path).unwrap();
    let mut r = BufReader::with_capacity(1 << 20, f);
    let (mut lines, mut partial) = (0u64, Vec::<u8>::new());
    let mut rec = Vec::new();
    let mut n = 0u64;
    loop {
        rec.clear();
        if r.read_until(b'\n', &mut rec).unwrap() == 0 {
            break;
        }
        n += 1;
        assert_eq!(rec.pop(), Some(b'\n'), "record {n} not terminated");
        let mut parts = rec.splitn(4, |&b| b == b' ');
        let (ts, stream, tag) = (parts.next(), parts.next(), parts.next());
        let body = parts.next().unwrap_or(b"");
        assert_eq!(ts.map(|t| t.len()), Some(30), "record {n}: timestamp");
        assert_eq!(stream, Some(&b"stdout"[..]), "record {n}: stream");
        partial.extend_from_slice(body);
        match tag {
            Some(b"F") => {
                assert!(
                    partial == LINE.as_bytes(),
                    "record {n}: line {} damaged: {:?}",
                    lines + 1,
                    String::from_utf8_lossy(&partial)
                );
                lines += 1;
                partial.clear();
            }
            Some(b"P") => assert!(partial.len() <= LINE.len(), "record {n}: line too long"),
            t => panic!("record {n}: tag {t:?}"),
        }
    }
    assert!(
        LINE.as_bytes().starts_with(&partial),
        "last partial line damaged"
    );
    (lines, partial.len())
}

#[test]
fn conmon_mode_log_is_complete_and_peak_rss_small() {
    let mib: u64 = std::env::var("SHIM_LOG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let bytes = mib << 20;
    let payload = format!("yes {LINE} | head -c {bytes}");
    let c = Ctx::new("cmlog", &["sh", "-c", &payload]);
    let (log, exit_dir, sock) = (c.p("ctr.log"), c.p("exit"), c.p("sock"));
    for d in [&exit_dir, &sock] {
        std::fs::create_dir_all(d).unwrap();
    }
    let rt = runtime();
    let st = Command::new(SHIM)
        .args(["--api-version", "1", "-c", &c.id, "-u", &c.id, "-n", &c.id])
        .arg("-r")
        .arg(&rt)
        .arg("-b")
        .arg(&c.bundle)
        .arg("-p")
        .arg(c.p("pidfile"))
        // Where Ctx's cleanup looks for a shim to kill.
        .arg("-P")
        .arg(c.p("shim.pid"))
        .arg("-l")
        .arg(format!("k8s-file:{}", log.display()))
        .arg("--exit-dir")
        .arg(&exit_dir)
        .arg("--socket-dir-path")
        .arg(&sock)
        .arg(format!("--runtime-arg=--root={}", c.root.display()))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "shim: {st}");
    let pid = c.shim_pid();
    wait_for(
        || {
            std::fs::metadata(c.p("pidfile"))
                .ok()
                .filter(|m| m.len() > 0)
        },
        30,
    );
    let t0 = Instant::now();
    let st = Command::new(&rt)
        .arg("--root")
        .arg(&c.root)
        .args(["start", &c.id])
        .status()
        .unwrap();
    assert!(st.success(), "{} start: {st}", rt.display());
    // The monitor was reparented to us (subreaper): watch its peak RSS until it exits.
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(h) = hwm_kb(pid) {
            peak = peak.max(h);
        }
        let mut status = 0;
        // SAFETY: status is a valid int; pid is our (reparented) child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        assert!(Instant::now() < deadline, "shim still running after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t0.elapsed().as_secs_f64();
    let code = std::fs::read_to_string(exit_dir.join(&c.id)).expect("exit file");
    assert_eq!(code.trim(), "0", "container exit code");
    let size = std::fs::metadata(&log).unwrap().len();
    let (lines, rest) = check_cri_payload(&log);
    eprintln!(
        "conmon mode: {mib} MiB in {secs:.2} s ({:.0} MiB/s), log {size} bytes, shim peak RSS {peak} kB",
        mib as f64 / secs
    );
    assert_eq!(
        lines * (LINE.len() as u64 + 1) + rest as u64,
        bytes,
        "payload bytes in the log"
    );
    assert!(peak > 0, "peak RSS never read");
    assert!(
        peak < PEAK_RSS_LIMIT_KB,
        "shim peak RSS {peak} kB (limit {PEAK_RSS_LIMIT_KB} kB)"
    );
}
