//! Container-escape suite: each case sets up a known escape (CVE class named on the case)
//! from inside a container and checks that it fails. Like the conformance suite, it drives
//! the runtime under test (env RUNTIME) through its CLI only, so it runs against runc too;
//! docs/security.md maps every case to the threat and the defence.
//!
//! `cargo test -p berth-tests --test security`.

use std::process::ExitCode;

use berth_tests::Runtime;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

mod caps;
#[path = "../conformance/common.rs"]
#[allow(dead_code)]
mod common;
mod exe;
mod fds;
mod kernel;
mod paths;
mod probe;

pub type Outcome = Result<Completion, Failed>;

/// One case: the escape class it attempts and its body.
pub struct Case {
    pub class: &'static str,
    pub name: &'static str,
    pub run: fn(&Runtime) -> Outcome,
}

#[macro_export]
macro_rules! case {
    ($class:expr, $f:path) => {
        $crate::Case {
            class: $class,
            name: stringify!($f),
            run: $f,
        }
    };
}

fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(caps::cases());
    v.extend(exe::cases());
    v.extend(fds::cases());
    v.extend(paths::cases());
    v.extend(kernel::cases());
    v
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() && std::env::var_os("RUST_TEST_THREADS").is_none() {
        args.test_threads = Some(4);
    }
    berth_tests::reaper::init();
    eprintln!(
        "runtime under test: {} ({})",
        berth_tests::runtime::binary().display(),
        berth_tests::runtime::version(),
    );
    let trials = all_cases()
        .into_iter()
        .map(|c| {
            Trial::ignorable_test(c.name, move || {
                Runtime::new()
                    .map_err(Failed::from)
                    .and_then(|rt| (c.run)(&rt))
            })
            .with_kind(c.class)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    probe::cleanup();
    conclusion.exit_code()
}
