//! Thin, safe wrappers over the few libc calls the shim needs. All unsafe code lives here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor just returned by the kernel, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

pub fn set_nonblock(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we hold; no memory is passed.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) }).map(|_| ())
}

pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; no memory is passed.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(|_| ())
}

/// Grow a pipe's kernel buffer (fewer wakeups at high throughput). Best effort.
/// Ask for a pipe buffer of `size` bytes; returns the size the pipe has afterwards (the kernel
/// refuses more than pipe-max-size, or anything once the user's pipe pages are over the soft
/// limit, without CAP_SYS_RESOURCE).
pub fn set_pipe_size(fd: RawFd, size: i32) -> usize {
    // SAFETY: fcntl on a descriptor we hold; no memory is passed.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) };
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    r.max(0) as usize
}

pub enum Fork {
    Parent(i32),
    Child,
}

/// fork(2). The shim is single-threaded, so the child may keep running Rust code.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the process has one thread; the child continues with a consistent address space.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

pub fn setsid() {
    // SAFETY: no arguments; failing (already a group leader) is harmless.
    unsafe { libc::setsid() };
}

pub fn set_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

pub fn getpid() -> i32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: pid > 0, so this never signals a process group or everything.
    cvt(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// Wait status of a reaped child.
#[derive(Clone, Copy, Debug)]
pub struct Status(pub libc::c_int);

impl Status {
    pub fn exit_code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }
    pub fn signal(self) -> Option<i32> {
        libc::WIFSIGNALED(self.0).then(|| libc::WTERMSIG(self.0))
    }
    /// The shell convention: code, or 128 + signal.
    pub fn code(self) -> i32 {
        self.exit_code()
            .unwrap_or_else(|| 128 + self.signal().unwrap_or(0))
    }
}

/// waitpid(pid, WNOHANG); pid -1 means any child.
pub fn try_wait(pid: i32) -> io::Result<Option<(i32, Status)>> {
    let mut st = 0;
    // SAFETY: st is a valid int.
    let r = cvt(unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) })?;
    Ok((r > 0).then_some((r, Status(st))))
}

pub fn wait(pid: i32) -> io::Result<Status> {
    let mut st = 0;
    loop {
        // SAFETY: st is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r >= 0 {
            return Ok(Status(st));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Block these signals and return a signalfd delivering them.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: as above.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    // SAFETY: set is valid, old mask not requested.
    cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: set is valid; -1 asks for a new descriptor.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    Ok(owned(fd))
}

/// Next pending signal number from a signalfd, if any.
pub fn read_signal(fd: RawFd) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let n = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is a writable buffer of n bytes.
    let r = unsafe { libc::read(fd, &mut info as *mut _ as *mut libc::c_void, n) };
    (r as usize == n).then_some(info.ssi_signo as i32)
}

pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid slice of pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for buf.len() bytes.
    cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) })
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is readable for buf.len() bytes.
    cvt_size(unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) })
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: plain descriptor numbers.
    cvt(unsafe { libc::dup2(from, to) }).map(|_| ())
}

/// First occurrence of `c` in `s` (glibc's vectorised memchr).
pub fn memchr(c: u8, s: &[u8]) -> Option<usize> {
    // SAFETY: s is readable for s.len() bytes; the result points into s or is null.
    let p = unsafe { libc::memchr(s.as_ptr() as *const libc::c_void, c as i32, s.len()) };
    (!p.is_null()).then(|| p as usize - s.as_ptr() as usize)
}

pub fn memrchr(c: u8, s: &[u8]) -> Option<usize> {
    // SAFETY: as memchr.
    let p = unsafe { libc::memrchr(s.as_ptr() as *const libc::c_void, c as i32, s.len()) };
    (!p.is_null()).then(|| p as usize - s.as_ptr() as usize)
}

/// Current wall-clock time: (seconds, nanoseconds).
pub fn now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

pub fn monotonic_ms() -> u64 {
    monotonic_us() / 1000
}

pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + b.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A listening unix socket of `kind` (SOCK_STREAM / SOCK_SEQPACKET) bound at `path`.
pub fn unix_listen(path: &Path, kind: i32, mode: u32) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    // SAFETY: plain integer arguments.
    let fd = owned(cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?);
    let _ = std::fs::remove_file(path);
    // SAFETY: addr is a valid sockaddr_un of len bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    let cp = cpath(path)?;
    // SAFETY: cp is a valid C string.
    cvt(unsafe { libc::chmod(cp.as_ptr(), mode) })?;
    // SAFETY: fd is a bound socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 16) })?;
    Ok(fd)
}

pub fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address buffers are allowed.
    let r = cvt(unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    })?;
    Ok(owned(r))
}

/// One SEQPACKET message made of a one-byte header and `data`; never blocks.
pub fn send_packet(fd: RawFd, header: u8, data: &[u8]) -> io::Result<()> {
    let h = [header];
    let iov = [
        libc::iovec {
            iov_base: h.as_ptr() as *mut libc::c_void,
            iov_len: 1,
        },
        libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        },
    ];
    // SAFETY: msghdr is plain data; we fill the iovec fields with valid buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 2;
    // SAFETY: msg points at valid iovecs that outlive the call.
    cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
        .map(|_| ())
}

/// Receive one descriptor passed with SCM_RIGHTS (the runtime's pty master).
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Room for one cmsghdr carrying a few ints, 8-byte aligned.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at valid buffers for the duration of the call.
    cvt_size(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) })?;
    // SAFETY: CMSG_FIRSTHDR reads msg, which recvmsg filled.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no descriptor in console-socket message",
        ));
    }
    // SAFETY: cmsg points into cbuf, checked non-null above.
    let (level, ty) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || ty != libc::SCM_RIGHTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "console-socket message is not SCM_RIGHTS",
        ));
    }
    let mut fd: libc::c_int = -1;
    // SAFETY: CMSG_DATA points at at least one int inside cbuf.
    unsafe {
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg),
            &mut fd as *mut _ as *mut u8,
            std::mem::size_of::<libc::c_int>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(owned(fd))
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a valid winsize for TIOCSWINSZ.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let cp = cpath(path)?;
    // SAFETY: cp is a valid C string.
    match cvt(unsafe { libc::mkfifo(cp.as_ptr(), mode) }) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            std::fs::remove_file(path)?;
            // SAFETY: as above.
            cvt(unsafe { libc::mkfifo(cp.as_ptr(), mode) }).map(|_| ())
        }
        r => r.map(|_| ()),
    }
}

/// Open with raw flags (O_CLOEXEC added).
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let cp = cpath(path)?;
    // SAFETY: cp is a valid C string.
    let fd = cvt(unsafe { libc::open(cp.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    Ok(owned(fd))
}

/// Whether `fd` is a valid open descriptor (for fds inherited through the environment).
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no memory.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Take ownership of an inherited descriptor number (from _OCI_SYNCPIPE and friends).
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 || !fd_is_open(fd) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    set_cloexec(fd)?;
    Ok(owned(fd))
}

pub fn set_oom_score_adj(v: i32) {
    let _ = std::fs::write("/proc/self/oom_score_adj", v.to_string());
}

/// Drop the resident pages of our executable code (and the shared libraries'): most of it ran
/// once during setup (argument parsing, spawning the runtime) and would otherwise stay in RSS
/// for the container's whole life. Only `r-xp` file mappings are touched: they are never
/// written, so the kernel simply faults the few pages the poll loop uses back in from the page
/// cache. Data, relocated (RELRO) and anonymous mappings are left alone.
pub fn trim_code_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: a clean, private, read-only file mapping: MADV_DONTNEED only unmaps its pages,
        // which refault unchanged from the file; no memory we hold references into changes.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}

/// Make `cmd`'s child start with an empty signal mask and default SIGPIPE: the monitor blocks
/// the signals it reads from its signalfd and ignores SIGPIPE, and both would otherwise be
/// inherited by the runtime and, through runtimes that do not reset them, by the container.
pub fn clean_signals_on_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (sigemptyset, sigprocmask, signal) on stack data.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        })
    };
}

/// Ask the kernel to start writing back the file's dirty pages, without waiting.
pub fn start_writeback(fd: RawFd) {
    // SAFETY: integer arguments only; offset 0 and length 0 mean the whole file.
    unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}
