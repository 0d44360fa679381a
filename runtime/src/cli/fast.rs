//! The calls an engine makes for every container (`create`, `start`, `run`,
//! `state`, `kill`, `delete`) in their plain shapes, parsed without clap.
//!
//! Building clap's command tree for all fifteen subcommands costs more than
//! parsing the handful of flags these calls carry (about a quarter of a
//! millisecond per call on the benchmark VM, where `run` of /bin/true takes
//! about four). Anything outside the plain shape (help, version, an unknown
//! or repeated flag, a missing value, a stray positional, non-UTF-8) returns
//! `None`, and clap parses the same arguments and owns the error message.
//! The tests check that both parsers agree on every shape this one takes.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{create, delete, kill, run, start, state, Cli, Command, LogFormat};

/// `Some` only when the arguments are exactly what clap would also accept,
/// with the same result.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let mut p = Parsed::default();
    let mut it = args.into_iter();
    // Global flags, then the subcommand.
    let name = loop {
        let a = it.next()?;
        if !p.global(a, &mut it)? {
            break a;
        }
    };
    let mut flags = Flags::default();
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        if p.global(a, &mut it)? {
            continue;
        }
        if a.starts_with('-') {
            flags.take(name, a, &mut it)?;
        } else {
            positional.push(a.to_string());
        }
    }
    let command = flags.command(name, positional)?;
    Some(Cli {
        root: p.root,
        log: p.log,
        log_format: p.log_format.unwrap_or(LogFormat::Text),
        debug: p.debug,
        systemd_cgroup: p.systemd_cgroup,
        rootless: None,
        command,
    })
}

#[derive(Default)]
struct Parsed {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Option<LogFormat>,
    debug: bool,
    systemd_cgroup: bool,
}

impl Parsed {
    /// `Some(true)` if `a` was a global flag (its value taken from `it`),
    /// `Some(false)` if it is not one, `None` if clap must decide.
    fn global<'a>(&mut self, a: &'a str, it: &mut impl Iterator<Item = &'a str>) -> Option<bool> {
        let (name, inline) = split_flag(a);
        match name {
            "--root" => set_once(&mut self.root, PathBuf::from(value(inline, it)?))?,
            "--log" => set_once(&mut self.log, PathBuf::from(value(inline, it)?))?,
            "--log-format" => {
                let f = match value(inline, it)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                };
                set_once(&mut self.log_format, f)?;
            }
            "--debug" if inline.is_none() => set_flag(&mut self.debug)?,
            "--systemd-cgroup" if inline.is_none() => set_flag(&mut self.systemd_cgroup)?,
            _ if is_global(name) => return None,
            _ => return Some(false),
        }
        Some(true)
    }
}

/// Global flags this parser leaves to clap (`--rootless` takes an optional
/// value, `--debug=x` is an error).
fn is_global(name: &str) -> bool {
    matches!(
        name,
        "--rootless" | "--debug" | "--systemd-cgroup" | "--help" | "--version"
    )
}

/// The flags of the six subcommands.
#[derive(Default)]
struct Flags {
    bundle: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    preserve_fds: Option<u32>,
    no_pivot: bool,
    no_new_keyring: bool,
    detach: bool,
    force: bool,
    all: bool,
}

impl Flags {
    fn take<'a>(
        &mut self,
        cmd: &str,
        a: &'a str,
        it: &mut impl Iterator<Item = &'a str>,
    ) -> Option<()> {
        let (name, inline) = split_flag(a);
        let creates = cmd == "create" || cmd == "run";
        match name {
            "--bundle" | "-b" if creates => {
                set_once(&mut self.bundle, PathBuf::from(value(inline, it)?))
            }
            "--pid-file" if creates => {
                set_once(&mut self.pid_file, PathBuf::from(value(inline, it)?))
            }
            "--console-socket" if creates => {
                set_once(&mut self.console_socket, PathBuf::from(value(inline, it)?))
            }
            "--preserve-fds" if creates => {
                set_once(&mut self.preserve_fds, value(inline, it)?.parse().ok()?)
            }
            "--no-pivot" if creates && inline.is_none() => set_flag(&mut self.no_pivot),
            "--no-new-keyring" if creates && inline.is_none() => set_flag(&mut self.no_new_keyring),
            "--detach" | "-d" if cmd == "run" && inline.is_none() => set_flag(&mut self.detach),
            "--force" | "-f" if cmd == "delete" && inline.is_none() => set_flag(&mut self.force),
            "--all" | "-a" if cmd == "kill" && inline.is_none() => set_flag(&mut self.all),
            _ => None,
        }
    }

    fn command(self, name: &str, positional: Vec<String>) -> Option<Command> {
        let mut pos = positional.into_iter();
        let id = pos.next()?;
        let signal = if name == "kill" { pos.next() } else { None };
        if pos.next().is_some() {
            return None;
        }
        let opts = create::CreateFlags {
            bundle: self.bundle.unwrap_or_else(|| PathBuf::from(".")),
            pid_file: self.pid_file,
            console_socket: self.console_socket,
            preserve_fds: self.preserve_fds.unwrap_or(0),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
        };
        Some(match name {
            "create" => Command::Create(create::Args { id, opts }),
            "run" => Command::Run(run::Args {
                id,
                opts,
                detach: self.detach,
            }),
            "start" => Command::Start(start::Args { id }),
            "state" => Command::State(state::Args { id }),
            "delete" => Command::Delete(delete::Args {
                id,
                force: self.force,
            }),
            "kill" => Command::Kill(kill::Args {
                id,
                signal: signal.unwrap_or_else(|| "SIGTERM".into()),
                all: self.all,
            }),
            _ => return None,
        })
    }
}

/// `--flag=v` as the flag and its inline value; anything else as is.
fn split_flag(a: &str) -> (&str, Option<&str>) {
    match a.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n, Some(v)),
        _ => (a, None),
    }
}

/// The value of `--flag=v` or `--flag v`; a following flag is not a value
/// (clap would report it missing); nor is an empty one.
fn value<'a>(inline: Option<&'a str>, it: &mut impl Iterator<Item = &'a str>) -> Option<&'a str> {
    match inline {
        Some(v) => Some(v),
        None => it.next().filter(|v| !v.starts_with('-')),
    }
    // clap's path parser refuses an empty value.
    .filter(|v| !v.is_empty())
}

/// clap rejects a single-valued flag given twice.
fn set_once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

fn set_flag(slot: &mut bool) -> Option<()> {
    if *slot {
        return None;
    }
    *slot = true;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(s: &str) -> Vec<OsString> {
        std::iter::once("berth")
            .chain(s.split(' ').filter(|a| !a.is_empty()))
            .map(OsString::from)
            .collect()
    }

    /// Both parsers agree, and this one takes the call.
    #[track_caller]
    fn same(s: &str) {
        let args = argv(s);
        let fast = parse(&args).unwrap_or_else(|| panic!("fast parser declined {s:?}"));
        let clap = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("clap refused {s:?}: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "for {s:?}");
    }

    /// This one declines; clap decides.
    #[track_caller]
    fn declined(s: &str) {
        assert!(parse(&argv(s)).is_none(), "fast parser took {s:?}");
    }

    #[test]
    fn agrees_with_clap_on_the_engines_calls() {
        for s in [
            "create c1",
            "create --bundle /b c1",
            "create -b /b c1",
            "create --bundle=/b --pid-file /p c1",
            "--root /r --log /l --log-format json create --bundle /b --pid-file /p --console-socket /s --preserve-fds 3 --no-pivot --no-new-keyring c1",
            "--root=/r --log-format=text --debug --systemd-cgroup create c1 --bundle /b",
            "create c1 --root /r",
            "run c1",
            "run -d --bundle /b c1",
            "run --detach c1 --preserve-fds=2",
            "start c1",
            "--root /r start c1",
            "state c1",
            "delete c1",
            "delete -f c1",
            "delete --force c1 --root /r",
            "kill c1",
            "kill c1 KILL",
            "kill --all c1 9",
            "kill c1 SIGUSR1 -a",
            "create --debug c1 --systemd-cgroup",
            "state c1 --log-format json --log /l",
            "--root /r --systemd-cgroup --log-format json --log /l create --bundle /b --pid-file /p --console-socket /s --no-new-keyring c1",
            "--root /r --log /l --log-format json kill --all c1 9",
            "--root /r --log /l --log-format json delete --force c1",
        ] {
            same(s);
        }
    }

    #[test]
    fn leaves_everything_else_to_clap() {
        for s in [
            "",
            "--help",
            "--version",
            "create --help",
            "create",
            "create c1 c2",
            "create --bundle c1",
            "create --bundle /a --bundle /b c1",
            "create --preserve-fds x c1",
            "create --preserve-fds -1 c1",
            "create --detach c1",
            "create -bd c1",
            "run -df c1",
            "delete -ff c1",
            "start -f c1",
            "kill c1 -9",
            "kill c1 KILL extra",
            "--log-format yaml state c1",
            "--rootless true state c1",
            "--debug --debug state c1",
            "--debug=1 state c1",
            "--root state c1",
            "list",
            "ps c1",
            "exec c1 true",
            "state -- c1",
        ] {
            declined(s);
        }
    }

    #[test]
    fn declines_non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = argv("state");
        args.push(OsString::from_vec(vec![0xff, 0xfe]));
        assert!(parse(&args).is_none());
    }
}
