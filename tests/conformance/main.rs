//! OCI runtime conformance suite: every case drives the runtime under test (env RUNTIME)
//! through its CLI and checks the container from inside.
//!
//! `cargo test -p berth-tests --test conformance` runs it like any test binary (libtest
//! output, filters, --test-threads). With `--conformance` (or BERTH_CONFORMANCE=1) it ends
//! with one line per spec feature: pass, fail or unsupported.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use berth_tests::Runtime;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

mod bad_input;
mod cgroups;
mod common;
mod engine;
mod exec;
mod hooks;
mod lifecycle;
mod namespaces;
mod process;
mod rootfs;
mod rootless;
mod seccomp;
mod signals;
mod systemd;
mod terminal;
mod versions;

pub type Outcome = Result<Completion, Failed>;

/// One test: the spec feature it exercises and its body.
pub struct Case {
    pub feature: &'static str,
    pub name: &'static str,
    pub run: fn(&Runtime) -> Outcome,
}

#[macro_export]
macro_rules! case {
    ($feature:expr, $f:path) => {
        $crate::Case {
            feature: $feature,
            name: concat!(module_path!(), "::", stringify!($f)),
            run: $f,
        }
    };
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Pass,
    Unsupported,
    Fail,
}

/// (feature, test name, verdict, first line of the reason)
type Record = (&'static str, &'static str, Verdict, String);

fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(lifecycle::cases());
    v.extend(versions::cases());
    v.extend(namespaces::cases());
    v.extend(rootfs::cases());
    v.extend(process::cases());
    v.extend(hooks::cases());
    v.extend(bad_input::cases());
    v.extend(rootless::cases());
    v.extend(signals::cases());
    v.extend(seccomp::cases());
    v.extend(cgroups::cases());
    v.extend(systemd::cases());
    v.extend(exec::cases());
    v.extend(terminal::cases());
    v.extend(engine::cases());
    v
}

fn main() -> ExitCode {
    match berth_tests::hostenv::hide_cgroup2_if_asked() {
        Ok(true) => eprintln!(
            "HIDE_CGROUP2=1: /sys/fs/cgroup/unified unmounted in a private mount namespace"
        ),
        Ok(false) => {}
        Err(e) => {
            eprintln!("HIDE_CGROUP2=1: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut raw: Vec<String> = std::env::args().collect();
    let before = raw.len();
    raw.retain(|a| a != "--conformance");
    let conformance = raw.len() != before
        || std::env::var("BERTH_CONFORMANCE").is_ok_and(|v| v == "1" || v == "true");
    let mut args = Arguments::from_iter(raw);
    if args.test_threads.is_none() && std::env::var_os("RUST_TEST_THREADS").is_none() {
        // Cases mostly wait on the runtime and the kernel; 2 cores keep 4 busy.
        args.test_threads = Some(4);
    }
    berth_tests::reaper::init();
    eprintln!(
        "runtime under test: {} ({}){}",
        berth_tests::runtime::binary().display(),
        berth_tests::runtime::version(),
        if berth_tests::runtime::is_berth() {
            "; berth's own error promises asserted"
        } else {
            ""
        }
    );

    let results: Arc<Mutex<Vec<Record>>> = Arc::default();
    let trials = all_cases()
        .into_iter()
        .map(|c| {
            let results = Arc::clone(&results);
            Trial::ignorable_test(c.name.trim_start_matches("conformance::"), move || {
                let outcome = Runtime::new()
                    .map_err(Failed::from)
                    .and_then(|rt| (c.run)(&rt));
                let (verdict, note) = match &outcome {
                    Ok(Completion::Completed) => (Verdict::Pass, String::new()),
                    Ok(Completion::Ignored { reason }) => {
                        (Verdict::Unsupported, reason.clone().unwrap_or_default())
                    }
                    Err(f) => (Verdict::Fail, f.message().unwrap_or_default().to_owned()),
                };
                if let Ok(mut r) = results.lock() {
                    r.push((c.feature, c.name, verdict, note));
                }
                outcome
            })
            .with_kind(c.feature)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Each case removed its own directory; only this run's empty parent is left.
    let _ = std::fs::remove_dir(berth_tests::tempdir::base());
    if conformance {
        print_features(&results.lock().map(|r| r.clone()).unwrap_or_default());
    }
    conclusion.exit_code()
}

fn print_features(results: &[Record]) {
    let mut by_feature: BTreeMap<&str, (Verdict, Vec<String>)> = BTreeMap::new();
    for (feature, name, verdict, note) in results {
        let e = by_feature
            .entry(feature)
            .or_insert((Verdict::Pass, Vec::new()));
        e.0 = e.0.max(*verdict);
        if *verdict != Verdict::Pass {
            let first = note.lines().next().unwrap_or("");
            let first = first.trim_start_matches("unsupported: ");
            let name = name.trim_start_matches("conformance::");
            e.1.push(format!("{name}: {first}"));
        }
    }
    println!("\nconformance of {}:", berth_tests::runtime::version());
    let mut counts = [0usize; 3];
    for (feature, (verdict, notes)) in &by_feature {
        let word = match verdict {
            Verdict::Pass => "pass",
            Verdict::Unsupported => "unsupported",
            Verdict::Fail => "fail",
        };
        counts[*verdict as usize] += 1;
        let why = notes
            .first()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        println!("  {feature:<28} {word}{why}");
    }
    println!(
        "features: {} pass, {} unsupported, {} fail",
        counts[0], counts[1], counts[2]
    );
}
