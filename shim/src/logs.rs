//! Container log file: CRI / json-file / raw writers, size rotation, rate limit, reopen.
//!
//! Memory is fixed: one output buffer allocated once. Each chunk read from the container is
//! formatted into it and written out before the next read, so nothing grows with the input.
//! Partial lines are written at once (CRI `P` records, json-file entries without "\n"), so there
//! is no per-stream line buffer either.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::cli::{LogFormat, RateLimit};
use crate::error::{Ctx, Result};
use crate::{note, sys, timefmt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }
    /// Header byte of an attach packet (conmon's STDOUT_PIPE / STDERR_PIPE).
    pub fn attach_tag(self) -> u8 {
        match self {
            Stream::Stdout => 2,
            Stream::Stderr => 3,
        }
    }
}

/// Output buffer: one 64 KiB read formats to at most ~100 KiB of CRI for ordinary lines;
/// pathological input (empty lines, JSON escapes) just flushes more often.
const OUT_CAP: usize = 128 * 1024;
/// Longest CRI record head: timestamp, " stdout ", tag, " ".
const CRI_HEAD: usize = timefmt::LEN + 10;
/// json-file splits long lines like Docker does (16 KiB per entry).
const JSON_PIECE: usize = 16 * 1024;

pub struct Log {
    path: PathBuf,
    fd: Option<OwnedFd>,
    format: LogFormat,
    max_size: u64,
    max_files: u32,
    size: u64,
    out: Vec<u8>,
    rate: Option<Bucket>,
    /// Bytes of container output that never reached the file (rate limit, write errors).
    pub dropped: u64,
    failing: bool,
    ts: [u8; timefmt::LEN],
    /// Set when the log is fsynced at exit: start writeback as we go so that the final fsync
    /// has little left to do (bytes written since the last kick).
    writeback: Option<u64>,
}

/// Start writeback of every this many bytes written (when fsync at exit is on).
const WRITEBACK_EVERY: u64 = 16 << 20;

struct Bucket {
    limit: RateLimit,
    tokens: u64,
    last_ms: u64,
    pending: u64,
    since: [u8; timefmt::LEN],
}

fn open_log(path: &Path) -> Result<(OwnedFd, u64)> {
    let fd = sys::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o640)
        .ctx("open", path.display())?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok((fd, size))
}

impl Log {
    /// Opens (creates) the file now, so an unwritable path fails before any container exists.
    pub fn open(
        path: &Path,
        format: LogFormat,
        max_size: u64,
        max_files: u32,
        rate: Option<RateLimit>,
    ) -> Result<Log> {
        let (fd, size) = open_log(path)?;
        Ok(Log {
            path: path.to_path_buf(),
            fd: Some(fd),
            format,
            max_size,
            max_files,
            size,
            out: Vec::with_capacity(OUT_CAP),
            rate: rate.map(|limit| Bucket {
                limit,
                tokens: limit.burst,
                last_ms: sys::monotonic_ms(),
                pending: 0,
                since: [b'0'; timefmt::LEN],
            }),
            dropped: 0,
            failing: false,
            ts: [b'0'; timefmt::LEN],
            writeback: None,
        })
    }

    /// Make the output buffer resident now rather than page by page as bigger reads come.
    pub fn prefault(&mut self) {
        self.out.resize(self.out.capacity(), 0);
        self.out.clear();
    }

    /// Format one chunk read from the container into the output buffer. The buffer is written
    /// out when full and by `flush`, which the event loop calls before it waits again: records
    /// of several reads go out in one write, and nothing waits while the shim sleeps.
    pub fn append(&mut self, stream: Stream, data: &[u8]) {
        // One timestamp per read: every line in it arrived at the same moment.
        let (s, n) = sys::now();
        timefmt::format(s, n, &mut self.ts);
        let data = self.rate_limit(data);
        match self.format {
            LogFormat::Raw => self.raw(data),
            LogFormat::Cri => self.cri(stream, data),
            LogFormat::JsonFile => self.json(stream, data),
        }
    }

    /// Passes what the token bucket allows (cut at a line end where possible), counts the rest,
    /// and writes the marker for an earlier drop once output flows again.
    fn rate_limit<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let Some(b) = self.rate.as_mut() else {
            return data;
        };
        let now = sys::monotonic_ms();
        let refill = (now - b.last_ms).saturating_mul(b.limit.bytes_per_sec) / 1000;
        if refill > 0 {
            b.tokens = (b.tokens + refill).min(b.limit.burst);
            b.last_ms = now;
        }
        let take = if data.len() as u64 <= b.tokens {
            data.len()
        } else {
            let allowed = &data[..b.tokens as usize];
            sys::memrchr(b'\n', allowed).map_or(0, |i| i + 1)
        };
        b.tokens -= take as u64;
        let dropped = (data.len() - take) as u64;
        if take > 0 && b.pending > 0 {
            self.marker();
        }
        if dropped > 0 {
            let b = self.rate.as_mut().expect("checked above");
            if b.pending == 0 {
                b.since = self.ts;
            }
            b.pending += dropped;
            self.dropped += dropped;
        }
        &data[..take]
    }

    /// One line saying how much the rate limit dropped and when.
    fn marker(&mut self) {
        let Some(b) = self.rate.as_mut() else { return };
        if b.pending == 0 {
            return;
        }
        let msg = format!(
            "berth-shim: log rate limit exceeded: dropped {} bytes between {} and {}\n",
            b.pending,
            String::from_utf8_lossy(&b.since),
            String::from_utf8_lossy(&self.ts)
        );
        b.pending = 0;
        match self.format {
            LogFormat::Raw => self.raw(msg.as_bytes()),
            LogFormat::Cri => self.cri(Stream::Stderr, msg.as_bytes()),
            LogFormat::JsonFile => self.json(Stream::Stderr, msg.as_bytes()),
        }
    }

    fn raw(&mut self, data: &[u8]) {
        if data.len() > OUT_CAP - self.out.len() {
            self.flush();
        }
        self.room(data.len());
        self.out.extend_from_slice(data);
    }

    fn cri(&mut self, stream: Stream, mut data: &[u8]) {
        // "TIMESTAMP stream F ": the same for every record of this read but the tag.
        let mut head = [0u8; CRI_HEAD];
        let name = stream.name();
        head[..timefmt::LEN].copy_from_slice(&self.ts);
        head[timefmt::LEN] = b' ';
        head[timefmt::LEN + 1..timefmt::LEN + 1 + name.len()].copy_from_slice(name);
        let tag_at = timefmt::LEN + 2 + name.len();
        head[tag_at - 1] = b' ';
        head[tag_at + 1] = b' ';
        let head_len = tag_at + 2;
        while !data.is_empty() {
            // The record keeps the content's own newline; a partial one gets ours.
            let (record, tag, rest) = match sys::memchr(b'\n', data) {
                Some(i) => (&data[..=i], b'F', &data[i + 1..]),
                None => (data, b'P', &data[data.len()..]),
            };
            self.room(head_len + record.len() + 1);
            head[tag_at] = tag;
            self.out.extend_from_slice(&head[..head_len]);
            self.out.extend_from_slice(record);
            if tag == b'P' {
                self.out.push(b'\n');
            }
            data = rest;
        }
    }

    fn json(&mut self, stream: Stream, mut data: &[u8]) {
        while !data.is_empty() {
            let end = match sys::memchr(b'\n', &data[..data.len().min(JSON_PIECE)]) {
                Some(i) => i + 1,
                None => data.len().min(JSON_PIECE),
            };
            let (piece, rest) = data.split_at(end);
            self.room(timefmt::LEN + 48 + 6 * piece.len());
            self.out.extend_from_slice(b"{\"log\":\"");
            json_escape(piece, &mut self.out);
            self.out.extend_from_slice(b"\",\"stream\":\"");
            self.out.extend_from_slice(stream.name());
            self.out.extend_from_slice(b"\",\"time\":\"");
            let ts = self.ts;
            self.out.extend_from_slice(&ts);
            self.out.extend_from_slice(b"\"}\n");
            data = rest;
        }
    }

    /// Make room for a record of `need` bytes: flush, and rotate first if the record would take
    /// the file over its size limit (so rotation always falls between records).
    fn room(&mut self, need: usize) {
        if self.out.len() + need > self.out.capacity() {
            self.flush();
        }
        if self.max_size > 0
            && self.size + (self.out.len() + need) as u64 > self.max_size
            && self.size + self.out.len() as u64 > 0
        {
            self.flush();
            self.rotate();
        }
    }

    pub fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let r = match &self.fd {
            Some(fd) => sys::write_all(fd.as_raw_fd(), &self.out),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        };
        match r {
            Ok(()) => {
                self.size += self.out.len() as u64;
                if let (Some(pending), Some(fd)) = (self.writeback.as_mut(), &self.fd) {
                    *pending += self.out.len() as u64;
                    if *pending >= WRITEBACK_EVERY {
                        sys::start_writeback(fd.as_raw_fd());
                        *pending = 0;
                    }
                }
                if self.failing {
                    note::warn(&format!("log {}: writing again", self.path.display()));
                    self.failing = false;
                }
            }
            Err(e) => {
                // Disk full or file gone: drop rather than buffer; say so once per episode.
                self.dropped += self.out.len() as u64;
                if !self.failing {
                    note::warn(&format!(
                        "log {}: write failed: {e}; dropping container output until it works",
                        self.path.display()
                    ));
                    self.failing = true;
                }
            }
        }
        self.out.clear();
    }

    fn rotate(&mut self) {
        if self.max_files == 0 {
            // conmon's behaviour without --log-rotate: start the file over.
            if let Err(e) = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|f| f.set_len(0))
            {
                note::warn(&format!(
                    "log {}: truncate failed: {e}",
                    self.path.display()
                ));
            }
            self.size = 0;
            return;
        }
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        for i in (1..self.max_files).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        if let Err(e) = std::fs::rename(&self.path, name(1)) {
            note::warn(&format!("log {}: rotate failed: {e}", self.path.display()));
        }
        self.reopen();
    }

    /// The log will be fsynced at exit: write it back progressively.
    pub fn sync_at_exit(&mut self) {
        self.writeback = Some(0);
    }

    /// Reopen the path (after external rotation, or our own).
    pub fn reopen(&mut self) {
        self.flush();
        match open_log(&self.path) {
            Ok((fd, size)) => {
                self.fd = Some(fd);
                self.size = size;
            }
            Err(e) => {
                note::warn(&format!("log reopen: {e}"));
                self.fd = None;
            }
        }
    }

    /// End of output: pending drop marker, flush, optionally fsync.
    pub fn finish(&mut self, sync: bool) {
        let (s, n) = sys::now();
        timefmt::format(s, n, &mut self.ts);
        self.marker();
        self.flush();
        if sync {
            if let Some(fd) = &self.fd {
                let _ = fsync(fd);
            }
        }
    }
}

fn fsync(fd: &OwnedFd) -> std::io::Result<()> {
    let f = std::fs::File::from(fd.try_clone()?);
    f.sync_all()
}

/// JSON string escaping; bytes >= 0x80 pass through (UTF-8 stays as is).
fn json_escape(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            c => out.push(c),
        }
    }
}

/// JSON string for small messages (exit file, sync pipe).
pub fn json_string(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len() + 2);
    v.push(b'"');
    json_escape(s.as_bytes(), &mut v);
    v.push(b'"');
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-shim-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn cri_splits_lines_and_partials() {
        let p = tmp("cri");
        let mut l = Log::open(&p, LogFormat::Cri, 0, 1, None).unwrap();
        l.append(Stream::Stdout, b"a\nbb\ncc");
        l.append(Stream::Stderr, b"c\n");
        l.flush();
        let s = std::fs::read_to_string(&p).unwrap();
        let recs: Vec<&str> = s.lines().map(|l| &l[timefmt::LEN + 1..]).collect();
        assert_eq!(
            recs,
            ["stdout F a", "stdout F bb", "stdout P cc", "stderr F c"]
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn json_escapes() {
        let p = tmp("json");
        let mut l = Log::open(&p, LogFormat::JsonFile, 0, 1, None).unwrap();
        l.append(Stream::Stdout, b"q\"\\\t\x01\n");
        l.flush();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(
            s.starts_with(r#"{"log":"q\"\\\t\u0001\n","stream":"stdout","time":""#),
            "{s}"
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn rotation_keeps_files_small() {
        let p = tmp("rot");
        let mut l = Log::open(&p, LogFormat::Raw, 1000, 2, None).unwrap();
        for _ in 0..50 {
            l.append(Stream::Stdout, &[b'x'; 99]);
            l.append(Stream::Stdout, b"\n");
        }
        l.flush();
        let p1 = PathBuf::from(format!("{}.1", p.display()));
        let p2 = PathBuf::from(format!("{}.2", p.display()));
        for f in [&p, &p1, &p2] {
            assert!(std::fs::metadata(f).unwrap().len() <= 1000);
            let _ = std::fs::remove_file(f);
        }
    }

    #[test]
    fn rate_limit_drops_and_marks() {
        let p = tmp("rate");
        let rl = RateLimit {
            bytes_per_sec: 1,
            burst: 10,
        };
        let mut l = Log::open(&p, LogFormat::Raw, 0, 1, Some(rl)).unwrap();
        l.append(Stream::Stdout, b"12345\n12345\n");
        assert_eq!(l.dropped, 6);
        l.finish(false);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.starts_with("12345\nberth-shim: log rate limit exceeded: dropped 6 bytes"));
        std::fs::remove_file(p).unwrap();
    }
}
