//! Log completeness, order, formats, rotation, rate limit, unwritable log.

mod common;

use common::*;

#[test]
fn cri_million_lines_interleaved_in_order() {
    let c = Ctx::new(
        "order",
        &[
            "sh",
            "-c",
            "seq 1 1000000 & seq 1 200000 | sed s/^/e/ >&2; wait",
        ],
    );
    let log = c.p("ctr.log");
    let exit = c.p("exit.json");
    c.start(&[
        "--log-path",
        log.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let rec = c.wait_exit(&exit, 120);
    assert_eq!(rec["exit_code"], 0);
    let (out, err) = cri_lines(&std::fs::read(&log).unwrap());
    assert_eq!(out.len(), 1_000_000);
    assert!(
        out == numbered("", 1_000_000),
        "stdout lines out of order or damaged"
    );
    assert!(
        err == numbered("e", 200_000),
        "stderr lines out of order or damaged"
    );
}

#[test]
fn cri_one_mib_line_and_partial_last_line() {
    let c = Ctx::new(
        "bigline",
        &[
            "sh",
            "-c",
            "head -c 1048576 /dev/zero | tr '\\0' x; echo; printf tail-no-newline",
        ],
    );
    let log = c.p("ctr.log");
    let out = c
        .shim(&["--log-path", log.to_str().unwrap(), "--foreground"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(&log).unwrap();
    let (lines, _) = cri_lines(&raw);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 1_048_576);
    assert!(lines[0].iter().all(|&b| b == b'x'));
    assert_eq!(lines[1], b"tail-no-newline");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains(" stdout P "),
        "long line not split into P records"
    );
    assert!(text.trim_end().ends_with(" stdout P tail-no-newline"));
}

#[test]
fn raw_binary_is_byte_exact() {
    let c = Ctx::new("raw", &["cat", "/blob"]);
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(c.bundle.join("rootfs/blob"), &blob).unwrap();
    let log = c.p("ctr.raw");
    let out = c
        .shim(&[
            "--log-path",
            log.to_str().unwrap(),
            "--log-format",
            "raw",
            "--foreground",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&log).unwrap() == blob,
        "raw log differs from the container's output"
    );
}

#[test]
fn json_file_format() {
    let c = Ctx::new(
        "json",
        &[
            "sh",
            "-c",
            "printf 'a\"b\\\\c\\tz\\n'; echo err >&2; printf part",
        ],
    );
    let log = c.p("ctr.json");
    let out = c
        .shim(&[
            "--log-path",
            log.to_str().unwrap(),
            "--log-format",
            "json-file",
            "--foreground",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |s: &str| {
        recs.iter()
            .find(|r| r["log"] == s)
            .unwrap_or_else(|| panic!("{s} not in {text}"))
    };
    assert_eq!(find("a\"b\\c\tz\n")["stream"], "stdout");
    assert_eq!(find("err\n")["stream"], "stderr");
    assert_eq!(find("part")["stream"], "stdout");
    assert!(recs
        .iter()
        .all(|r| r["time"].as_str().is_some_and(|t| t.ends_with('Z'))));
}

#[test]
fn rotation_by_size() {
    let c = Ctx::new("rotate", &["sh", "-c", "seq 1 200000"]);
    let log = c.p("ctr.log");
    let out = c
        .shim(&[
            "--log-path",
            log.to_str().unwrap(),
            "--log-max-size",
            "200000",
            "--log-max-files",
            "3",
            "--foreground",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut all = Vec::new();
    for f in [".3", ".2", ".1", ""] {
        let p = format!("{}{f}", log.display());
        let data = std::fs::read(&p).unwrap_or_else(|_| panic!("{p} missing"));
        assert!(data.len() <= 200_000, "{p} has {} bytes", data.len());
        all.extend(data);
    }
    assert!(!std::path::Path::new(&format!("{}.4", log.display())).exists());
    // The kept files are the newest, contiguous, and end with the last line.
    let (lines, _) = cri_lines(&all);
    let first: usize = String::from_utf8_lossy(&lines[0]).parse().unwrap();
    assert!(first > 1, "oldest output should have been rotated away");
    assert!(
        lines == numbered("", 200_000)[first - 1..],
        "rotated files are not contiguous"
    );
}

#[test]
fn rate_limit_drops_with_marker_and_never_blocks() {
    let c = Ctx::new("rate", &["sh", "-c", "seq 1 500000; echo last-line"]);
    let log = c.p("ctr.log");
    let exit = c.p("exit.json");
    let t0 = std::time::Instant::now();
    c.start(&[
        "--log-path",
        log.to_str().unwrap(),
        "--log-rate-limit",
        "50000:100000",
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let rec = c.wait_exit(&exit, 60);
    let secs = t0.elapsed().as_secs_f64();
    // 3.4 MB at 50 kB/s would take over a minute if the container were throttled instead.
    assert!(secs < 30.0, "container was slowed down");
    let text = std::fs::read_to_string(&log).unwrap();
    // What passed is bounded by burst + rate x time (payload bytes, without the CRI prefixes).
    let (out, err) = cri_lines(text.as_bytes());
    let passed: usize = out.iter().chain(err.iter()).map(|l| l.len() + 1).sum();
    let bound = 100_000.0 + 50_000.0 * (secs + 1.0) + 200.0;
    assert!(
        (passed as f64) < bound,
        "{passed} bytes passed in {secs:.1}s"
    );
    let dropped = rec["log_dropped_bytes"].as_u64().unwrap();
    assert_eq!(
        dropped as usize + passed,
        3_388_895 + 10 + marker_len(&text)
    );
    assert!(
        text.contains("berth-shim: log rate limit exceeded: dropped"),
        "no marker line"
    );
}

#[test]
fn unwritable_log_keeps_container_running_and_drops() {
    let c = Ctx::new("full", &["sh", "-c", "seq 1 100000; exit 4"]);
    let exit = c.p("exit.json");
    c.start(&[
        "--log-path",
        "/dev/full",
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    let rec = c.wait_exit(&exit, 60);
    assert_eq!(rec["exit_code"], 4);
    assert!(rec["log_dropped_bytes"].as_u64().unwrap() >= 588_895);
    let shim_log = std::fs::read_to_string(c.p("shim.log")).unwrap();
    assert!(shim_log.contains("write failed"), "shim log: {shim_log}");
    assert_eq!(
        shim_log.matches("write failed").count(),
        1,
        "error repeated: {shim_log}"
    );
}

#[test]
fn reopen_on_sigusr1() {
    let c = Ctx::new("reopen", &["sh", "-c", PRINT_UNTIL_STOP]);
    let log = c.p("ctr.log");
    let exit = c.p("exit.json");
    c.start(&[
        "--log-path",
        log.to_str().unwrap(),
        "--exit-file",
        exit.to_str().unwrap(),
    ]);
    // Rotate once the container has logged something, then let it finish: its last line
    // must land in the reopened file.
    wait_for(|| std::fs::metadata(&log).ok().filter(|m| m.len() > 0), 30);
    let old = c.p("ctr.log.old");
    std::fs::rename(&log, &old).unwrap();
    // SAFETY: signalling the shim this test started.
    unsafe { libc::kill(c.shim_pid(), libc::SIGUSR1) };
    wait_for(|| std::fs::metadata(&log).ok(), 30);
    c.signal_container("stop");
    c.wait_exit(&exit, 90);
    let mut all = std::fs::read(&old).unwrap();
    let newer = std::fs::read(&log).expect("log not reopened");
    assert!(!newer.is_empty());
    all.extend(newer);
    assert!(
        counted_then_end(&cri_lines(&all).0),
        "lines lost or damaged"
    );
}

/// Bytes of the marker lines (written by the shim, not the container).
fn marker_len(text: &str) -> usize {
    text.lines()
        .filter_map(|l| l.split_once(" stderr F "))
        .filter(|(_, m)| m.starts_with("berth-shim: log rate limit"))
        .map(|(_, m)| m.len() + 1)
        .sum()
}
