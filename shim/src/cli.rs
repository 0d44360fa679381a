//! Command line: the shim's own options and conmon's, parsed by one hand-rolled parser
//! (clap would cost resident memory in a process that lives as long as its container).

use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Cri,
    JsonFile,
    Raw,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub bytes_per_sec: u64,
    pub burst: u64,
}

#[derive(Debug, Default)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    /// None: `berth` next to this binary, else from PATH.
    pub runtime: Option<PathBuf>,
    /// Global runtime options placed before the verb (`--root DIR`, `--runtime-arg`).
    pub runtime_args: Vec<String>,
    pub terminal: bool,
    pub stdin: bool,
    pub leave_stdin_open: bool,
    pub stdin_fifo: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub rate_limit: Option<RateLimit>,
    pub exit_file: Option<PathBuf>,
    pub attach_socket: Option<PathBuf>,
    pub control_fifo: Option<PathBuf>,
    pub container_pidfile: Option<PathBuf>,
    pub shim_pidfile: Option<PathBuf>,
    pub shim_log: Option<PathBuf>,
    pub sync_fd: Option<i32>,
    pub foreground: bool,
    pub rm: bool,
    pub no_sync_log: bool,
    pub conmon: Option<Conmon>,
}

/// What only conmon's command line carries.
#[derive(Debug, Default)]
pub struct Conmon {
    pub cuuid: Option<String>,
    pub exit_dir: Option<PathBuf>,
    pub persist_dir: Option<PathBuf>,
    pub socket_dir: Option<PathBuf>,
    pub full_attach: bool,
    pub api_version: i32,
    pub exec: bool,
    pub exec_attach: bool,
    pub exec_process_spec: Option<PathBuf>,
    pub runtime_opts: Vec<String>,
    pub systemd_cgroup: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub log_rotate: bool,
    pub exit_command: Option<String>,
    pub exit_args: Vec<String>,
    pub exit_delay: u64,
    pub timeout: u64,
    pub sync: bool,
}

pub enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

pub const USAGE: &str = "\
usage: berth-shim --id ID --bundle DIR [options]
       berth-shim -c ID -u UUID -r RUNTIME -b DIR ... (conmon command line)

  --id ID                    container id
  --bundle DIR               OCI bundle (config.json)
  --runtime PATH             OCI runtime (default: berth next to this binary, else PATH)
  --runtime-root DIR         the runtime's --root
  --runtime-arg ARG          extra global runtime argument (repeatable)
  --terminal                 give the container a pty (runtime --console-socket)
  --stdin                    keep a stdin pipe; fed from --stdin-fifo and attach clients
  --stdin-fifo PATH          FIFO whose data goes to the container's stdin
  --log-path FILE            container output file
  --log-format cri|json-file|raw   (default cri)
  --log-max-size BYTES       rotate at this size (0: never)
  --log-max-files N          rotated files kept (FILE.1 .. FILE.N, default 1)
  --log-rate-limit BPS[:BURST]     drop output above this rate, with a marker line
  --exit-file FILE           JSON exit record, written atomically
  --attach-socket PATH       SOCK_SEQPACKET socket for attach clients
  --control-fifo PATH        FIFO for control commands (resize, close-stdin, reopen)
  --pid-file FILE            container pid file (default: a temporary one)
  --shim-pid-file FILE       pid of the shim
  --shim-log FILE            the shim's own messages (default: stderr until detached)
  --sync-fd N                report {\"pid\":N} / {\"error\":..} on fd N instead of stdout
  --foreground               do not detach; exit with the container's exit code
  --rm                       delete the container after it exits
  --no-sync-log              do not fsync the log at exit
  --version, --help
";

/// The version podman and cri-o parse (`conmon version X.Y.Z`): we speak conmon 2.1's protocol.
pub const VERSION: &str = concat!(
    "conmon version 2.1.6\ncommit: berth-shim ",
    env!("CARGO_PKG_VERSION"),
    "\nberth-shim ",
    env!("CARGO_PKG_VERSION"),
    "\n"
);

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| usage(format!("{opt}: invalid number '{v}'")))
}

fn parse_rate(v: &str) -> Result<RateLimit> {
    let (r, b) = match v.split_once(':') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let bytes_per_sec: u64 = num("--log-rate-limit", r)?;
    let burst = match b {
        Some(b) => num("--log-rate-limit", b)?,
        None => bytes_per_sec,
    };
    if bytes_per_sec == 0 || burst == 0 {
        return Err(usage("--log-rate-limit: rate and burst must be positive"));
    }
    Ok(RateLimit {
        bytes_per_sec,
        burst,
    })
}

/// conmon's `-l [DRIVER:]PATH`: k8s-file (CRI) is the only file driver.
fn conmon_log_path(c: &mut Config, v: &str) -> Result<()> {
    let (driver, path) = match v.split_once(':') {
        Some((d, p)) => (d, Some(p)),
        None if matches!(v, "none" | "off" | "null" | "journald" | "passthrough") => (v, None),
        None => ("k8s-file", Some(v)),
    };
    match driver {
        "k8s-file" => {
            let p = path.filter(|p| !p.is_empty());
            let p = p.ok_or_else(|| usage("--log-path: k8s-file requires a filename"))?;
            c.log_path = Some(PathBuf::from(p));
            c.log_format = Some(LogFormat::Cri);
        }
        // Drivers we do not implement: output is still drained (never blocks the container).
        "none" | "off" | "null" | "journald" | "passthrough" => {}
        other => return Err(usage(format!("--log-path: unknown log driver '{other}'"))),
    }
    Ok(())
}

pub fn parse(args: Vec<String>) -> Result<Parsed> {
    let mut c = Config {
        log_max_files: 1,
        ..Default::default()
    };
    let mut cm = Conmon::default();
    let mut conmon_mode = false;
    let mut runtime_root: Option<String> = None;
    let mut log_size_max: Option<i64> = None;
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        macro_rules! val {
            () => {
                match inline.clone() {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| usage(format!("{name}: missing value")))?,
                }
            };
        }
        macro_rules! flag {
            () => {{
                if inline.is_some() {
                    return Err(usage(format!("{name}: takes no value")));
                }
                true
            }};
        }
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            // ---- own options
            "--id" => c.id = val!(),
            "--bundle" | "-b" => c.bundle = PathBuf::from(val!()),
            "--runtime" | "-r" => c.runtime = Some(PathBuf::from(val!())),
            "--runtime-root" => runtime_root = Some(val!()),
            "--runtime-arg" => c.runtime_args.push(val!()),
            "--terminal" | "-t" => c.terminal = flag!(),
            "--stdin" | "-i" => c.stdin = flag!(),
            "--leave-stdin-open" => c.leave_stdin_open = flag!(),
            "--stdin-fifo" => c.stdin_fifo = Some(PathBuf::from(val!())),
            "--log-format" => {
                c.log_format = Some(match val!().as_str() {
                    "cri" | "k8s-file" => LogFormat::Cri,
                    "json-file" | "json" => LogFormat::JsonFile,
                    "raw" => LogFormat::Raw,
                    other => return Err(usage(format!("--log-format: unknown format '{other}'"))),
                })
            }
            "--log-max-size" => c.log_max_size = num(&name, &val!())?,
            "--log-max-files" => c.log_max_files = num(&name, &val!())?,
            "--log-rate-limit" => c.rate_limit = Some(parse_rate(&val!())?),
            "--exit-file" => c.exit_file = Some(PathBuf::from(val!())),
            "--attach-socket" => c.attach_socket = Some(PathBuf::from(val!())),
            "--control-fifo" => c.control_fifo = Some(PathBuf::from(val!())),
            "--pid-file" | "-p" | "--container-pidfile" | "--pidfile" => {
                c.container_pidfile = Some(PathBuf::from(val!()))
            }
            "--shim-pid-file" => c.shim_pidfile = Some(PathBuf::from(val!())),
            "--shim-log" => c.shim_log = Some(PathBuf::from(val!())),
            "--sync-fd" => c.sync_fd = Some(num(&name, &val!())?),
            "--foreground" => c.foreground = flag!(),
            "--rm" => c.rm = flag!(),
            "--no-sync-log" => c.no_sync_log = flag!(),
            // ---- conmon options
            "--log-path" | "-l" => {
                let v = val!();
                if conmon_mode || v.contains(':') {
                    conmon_log_path(&mut c, &v)?;
                } else {
                    c.log_path = Some(PathBuf::from(v));
                }
            }
            "--cid" | "-c" => {
                conmon_mode = true;
                c.id = val!();
            }
            "--cuuid" | "-u" => {
                conmon_mode = true;
                cm.cuuid = Some(val!());
            }
            "--conmon-pidfile" | "-P" => {
                conmon_mode = true;
                c.shim_pidfile = Some(PathBuf::from(val!()));
            }
            "--exit-dir" => {
                conmon_mode = true;
                cm.exit_dir = Some(PathBuf::from(val!()));
            }
            "--persist-dir" | "-0" => cm.persist_dir = Some(PathBuf::from(val!())),
            "--socket-dir-path" => {
                conmon_mode = true;
                cm.socket_dir = Some(PathBuf::from(val!()));
            }
            "--full-attach" => cm.full_attach = flag!(),
            "--api-version" => {
                conmon_mode = true;
                // conmon 2.1 declares it a flag; older callers pass a number after it.
                cm.api_version = 1;
                if let Some(v) = inline.clone() {
                    cm.api_version = num(&name, &v)?;
                } else if let Some(v) = it.peek().and_then(|v| v.parse::<i32>().ok()) {
                    cm.api_version = v;
                    it.next();
                }
            }
            "--exec" | "-e" => cm.exec = flag!(),
            "--exec-attach" => cm.exec_attach = flag!(),
            "--exec-process-spec" => cm.exec_process_spec = Some(PathBuf::from(val!())),
            "--runtime-opt" | "--restore-arg" => cm.runtime_opts.push(val!()),
            "--systemd-cgroup" | "-s" => cm.systemd_cgroup = flag!(),
            "--no-pivot" => cm.no_pivot = flag!(),
            "--no-new-keyring" => cm.no_new_keyring = flag!(),
            "--log-size-max" => log_size_max = Some(num(&name, &val!())?),
            "--log-rotate" => cm.log_rotate = flag!(),
            "--exit-command" => cm.exit_command = Some(val!()),
            "--exit-command-arg" => cm.exit_args.push(val!()),
            "--exit-delay" => cm.exit_delay = num(&name, &val!())?,
            "--timeout" | "-T" => cm.timeout = num(&name, &val!())?,
            "--sync" => cm.sync = flag!(),
            // Accepted and ignored: logging of the monitor itself, journald/labels, sd-notify,
            // restore and friends we do not implement.
            "--log-level"
            | "--log-tag"
            | "--log-label"
            | "--log-global-size-max"
            | "--sdnotify-socket"
            | "--log-allowlist-dir"
            | "--name"
            | "-n"
            | "--restore" => {
                let _ = val!();
            }
            "--syslog"
            | "--no-container-partial-message"
            | "--replace-listen-pid"
            | "--systemd" => {
                let _ = flag!();
            }
            other if other.starts_with('-') => {
                return Err(usage(format!("unknown option {other}")))
            }
            other => return Err(usage(format!("unexpected argument '{other}'"))),
        }
    }
    if let Some(root) = runtime_root {
        c.runtime_args.insert(0, format!("--root={root}"));
    }
    if c.id.is_empty() {
        return Err(usage("--id (or conmon's --cid) is required"));
    }
    if conmon_mode {
        if cm.cuuid.is_none() && !cm.exec {
            return Err(usage("--cuuid is required with conmon's command line"));
        }
        if c.runtime.is_none() {
            return Err(usage("--runtime is required with conmon's command line"));
        }
        if cm.exec && cm.exec_process_spec.is_none() {
            return Err(usage("--exec requires --exec-process-spec"));
        }
        if let Some(m) = log_size_max.filter(|m| *m > 0) {
            c.log_max_size = m as u64;
            // conmon truncates at the limit unless --log-rotate keeps backups.
            if !cm.log_rotate {
                c.log_max_files = 0;
            }
        }
        if c.bundle.as_os_str().is_empty() {
            c.bundle = std::env::current_dir().map_err(|e| Error::sys("getcwd", "", e))?;
        }
        c.conmon = Some(cm);
    } else if c.bundle.as_os_str().is_empty() {
        return Err(usage("--bundle is required"));
    }
    if c.stdin_fifo.is_some() {
        c.stdin = true;
    }
    Ok(Parsed::Run(Box::new(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Box<Config>> {
        match parse(a.iter().map(|s| s.to_string()).collect())? {
            Parsed::Run(c) => Ok(c),
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn own_options() {
        let c = p(&[
            "--id",
            "a",
            "--bundle",
            "/b",
            "--log-path=/l",
            "--log-format",
            "json-file",
            "--log-rate-limit",
            "100:200",
            "--runtime-root",
            "/r",
        ])
        .unwrap();
        assert_eq!(c.log_format, Some(LogFormat::JsonFile));
        assert_eq!(c.rate_limit.unwrap().burst, 200);
        assert_eq!(c.runtime_args, vec!["--root=/r".to_string()]);
        assert!(c.conmon.is_none());
    }

    #[test]
    fn conmon_options() {
        let c = p(&[
            "--api-version",
            "1",
            "-c",
            "x",
            "-u",
            "x",
            "-n",
            "name",
            "-r",
            "/usr/bin/runc",
            "-b",
            "/b",
            "-p",
            "/p",
            "-P",
            "/pp",
            "-l",
            "k8s-file:/l",
            "--exit-dir",
            "/e",
            "--socket-dir-path",
            "/s",
            "--runtime-arg",
            "--root=/r",
            "--log-level",
            "error",
            "--syslog",
            "--log-size-max",
            "1000",
        ])
        .unwrap();
        let cm = c.conmon.as_ref().unwrap();
        assert_eq!(cm.api_version, 1);
        assert_eq!(c.log_path.as_deref(), Some(std::path::Path::new("/l")));
        assert_eq!(c.log_max_files, 0);
        assert_eq!(c.log_max_size, 1000);
    }

    #[test]
    fn errors_name_the_option() {
        let e = p(&["--id", "a", "--bundle", "/b", "--log-format", "xml"]).unwrap_err();
        assert!(e.to_string().contains("--log-format"));
        let e = p(&["--bundle", "/b"]).unwrap_err();
        assert!(e.to_string().contains("--id"));
        let e = p(&["--id", "a", "--bundle", "/b", "--bogus"]).unwrap_err();
        assert!(e.to_string().contains("--bogus"));
    }
}
