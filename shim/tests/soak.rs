//! Soak: a container logging continuously (with rotation and attach clients coming and going)
//! must not make the shim grow. Ignored by default; run it with
//!   SOAK_SECS=600 RUNTIME=/usr/bin/runc cargo test -p berth-shim --test soak -- --ignored --nocapture
//! (SOAK_SECS=86400 for the 24 h run). RSS is sampled after the first tenth of the run (at most
//! one minute) and at the end; they must be equal (one page of slack).

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::*;

fn rss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
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
        std::thread::sleep(Duration::from_millis(500));
        if first.is_none() && t0.elapsed() >= warm {
            first = Some(rss_kb(pid));
            eprintln!("soak: RSS after {:?}: {} kB", warm, first.unwrap());
        }
    }
    let end = rss_kb(pid);
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = hwm
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .to_string();
    eprintln!(
        "soak: RSS at end ({secs}s): {end} kB; {hwm}; log size {}",
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
    );
    let first = first.expect("run too short");
    assert!(end <= first + 4, "RSS grew from {first} kB to {end} kB");
}
