// berth is one short process per engine command. std's start-up before
// `fn main` (the main thread's stack guard: /proc/self/maps read and parsed,
// an alternate signal stack mapped and protected) cost ~50 µs of each; the
// C entry point below skips it and does the two things of it berth relies
// on itself (`startup`). A stack overflow is then a plain SIGSEGV.
// Unit tests keep the test harness's own `main`.
#![cfg_attr(not(test), no_main)]

mod cli;

use clap::Parser;

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    startup();
    run()
}

/// What std's start-up did that berth needs: SIGPIPE ignored (a closed
/// pipe is an error to report, not a silent death; the container gets the
/// default back before execve), and fds 0-2 open, so no file berth opens
/// becomes stdout by accident.
#[cfg_attr(test, allow(dead_code))]
fn startup() {
    // SAFETY: plain libc calls on a single-threaded process at start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        if libc::poll(fds.as_mut_ptr(), 3, 0) >= 0 {
            for p in fds {
                if p.revents & libc::POLLNVAL != 0
                    && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != p.fd
                {
                    libc::abort();
                }
            }
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> libc::c_int {
    // Errors are printed as one line, never with a backtrace; without this,
    // RUST_BACKTRACE=1 in the caller's environment makes every error walk
    // the stack (anyhow captures one), which in the static non-PIE release
    // first sorts all of the unwinder's frame tables: ~14 M instructions.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = cli::parse_fast(&args).unwrap_or_else(|| cli::Cli::parse_from(args));
    let format = match cli.log_format {
        cli::LogFormat::Text => berth::log::Format::Text,
        cli::LogFormat::Json => berth::log::Format::Json,
    };
    if let Err(e) = berth::log::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("berth: --log: {e}");
        std::process::exit(1);
    }
    let logged_to_file = cli.log.is_some();
    match cli.dispatch() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Library errors already name their cause in one line.
            let msg = e.to_string();
            berth::log::error(&msg);
            if logged_to_file {
                eprintln!("berth: {msg}");
            }
            std::process::exit(cli::exit_code(&e));
        }
    }
}
