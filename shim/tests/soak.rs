//! Soak: a container logging continuously (with rotation and attach clients coming and going)
//! must not make the shim grow. Ignored by default; run it with
//!   SOAK_SECS=600 RUNTIME=/usr/bin/runc cargo test -p berth-shim --release --test soak -- --ignored --nocapture
//! (SOAK_SECS=86400 for the 24 h run, see docs/shim.md). Memory is read after the first tenth of
//! the run (at most one minute) and at the end, from /proc/PID/smaps_rollup (a page-table walk,
//! exact to the page). The shim's anonymous memory (heap, buffers, stack) must be equal: every
//! fixed buffer is resident from the start and nothing else may stay. Total RSS must not be
//! higher: it also counts shared code and data pages of the binary and libc, which the kernel
//! may drop again under memory pressure (page cache, not the shim's own memory), so it can
//! only be bounded, not required equal.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mem {
    rss_kb: u64,
    anon_kb: u64,
}

fn rollup(pid: i32) -> Mem {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from smaps_rollup:\n{s}"))
    };
    Mem {
        rss_kb: field("Rss:"),
        anon_kb: field("Anonymous:"),
    }
}

fn status_line(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resident kB per mapping, for the report when RSS moved.
fn maps(pid: i32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out = String::new();
    let mut cur = String::new();
    for l in s.lines() {
        if l.split_whitespace()
            .next()
            .is_some_and(|w| w.contains('-') && !w.ends_with(':'))
        {
            cur = l
                .split_whitespace()
                .skip(1)
                .take(1)
                .chain(l.split_whitespace().skip(5))
                .collect::<Vec<_>>()
                .join(" ");
        } else if let Some(v) = l.strip_prefix("Rss:") {
            out.push_str(&format!("{:>8} {cur}\n", v.trim()));
        }
    }
    out
}

fn attach_briefly(path: &std::path::Path) {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    // SAFETY: fd was just created.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    for (d, s) in addr.sun_path.iter_mut().zip(path.to_str().unwrap().bytes()) {
        *d = s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
    // SAFETY: addr is a valid sockaddr_un.
    unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    };
    let mut buf = [0u8; 9000];
    for _ in 0..20 {
        // SAFETY: buf is writable.
        unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut _,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "long: set SOAK_SECS and run with --ignored"]
fn soak_rss_stays_flat() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let c = Ctx::new(
        "soak",
        &["sh", "-c", "i=0; while :; do i=$((i+1)); echo line-$i-abcdefghijklmnopqrstuvwxyz; echo err-$i >&2; [ $((i % 500)) = 0 ] && sleep 0.05; done"],
    );
    let log = c.p("ctr.log");
    let sock = c.p("attach.sock");
    let exit = c.p("exit.json");
    c.start(&[
        "--log-path",
        log.to_str().unwrap(),
        "--log-max-size",
        "5000000",
        "--log-max-files",
        "2",
        "--attach-socket",
        sock.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let pid = c.shim_pid();
    let t0 = Instant::now();
    let warm = Duration::from_secs((secs / 10).clamp(5, 60));
    let mut first = None;
    while t0.elapsed() < Duration::from_secs(secs) {
        attach_briefly(&sock);
        // Read memory only while no attach client is connected: a lagging client's backlog
        // is a legitimate, temporary mapping (freed when it catches up or leaves).
        std::thread::sleep(Duration::from_millis(500));
        if first.is_none() && t0.elapsed() >= warm {
            let m = rollup(pid);
            eprintln!(
                "soak: after {:?}: RSS {} kB, anonymous {} kB\n{}",
                t0.elapsed(),
                m.rss_kb,
                m.anon_kb,
                maps(pid)
            );
            first = Some(m);
        }
    }
    let end = rollup(pid);
    eprintln!("{}", maps(pid));
    eprintln!(
        "soak: at end ({secs}s): RSS {} kB, anonymous {} kB; {}; log size {}",
        end.rss_kb,
        end.anon_kb,
        status_line(pid, "VmHWM"),
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
    );
    let first = first.expect("run too short");
    assert_eq!(
        end.anon_kb, first.anon_kb,
        "the shim's anonymous memory changed from {} kB to {} kB",
        first.anon_kb, end.anon_kb
    );
    assert!(
        end.rss_kb <= first.rss_kb,
        "the shim's RSS grew from {} kB to {} kB",
        first.rss_kb,
        end.rss_kb
    );
    // The shim kept up: the container really logged all along (rotation keeps 3 files).
    let logged = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(c.p("ctr.log.1"))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(logged > 0, "no log output");
    assert!(
        std::fs::metadata(c.p("ctr.log.1")).is_ok(),
        "the log never rotated: the container did not log continuously"
    );
}
