//! The process object: args, env, cwd, user, rlimits, oomScoreAdj, noNewPrivileges,
//! capabilities and file descriptors, as the process sees them in /proc/self.

use std::collections::BTreeSet;
use std::fs;

use berth_tests::inside::{cap_mask, parse_mask, status_fields};
use berth_tests::spec::PATH_ENV;
use berth_tests::{ensure, ensure_eq, Error, Runtime};
use nix::sys::resource::{getrlimit, Resource};
use serde_json::json;

use crate::common::{pass, run_script};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("process.args", args_passed_verbatim),
        case!("process.env", env_exactly_as_configured),
        case!("process.cwd", cwd_applied),
        case!("process.user", user_ids_groups_umask),
        case!("process.rlimits", rlimits_applied),
        case!("process.oomScoreAdj", oom_score_adj_applied),
        case!("process.noNewPrivileges", no_new_privileges),
        case!("process.capabilities", capabilities_of_root),
        case!("process.capabilities", capabilities_of_non_root),
        case!("process.fds", no_host_fds_leak),
        case!("process.fds", preserve_fds_passes_extra_fds),
    ]
}

fn status_of(
    rt: &Runtime,
    tweak: impl FnOnce(&mut berth_tests::Bundle),
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let out = run_script(rt, "", |b| {
        b.args(&["cat", "/proc/self/status"]);
        tweak(b);
        Ok(())
    })?;
    Ok(status_fields(&out))
}

fn args_passed_verbatim(rt: &Runtime) -> Outcome {
    let out = run_script(rt, "", |b| {
        b.args(&[
            "sh",
            "-c",
            "printf '%s|' \"$0\" \"$@\"",
            "zero",
            "a b",
            "c'd\"e",
            "",
            "$HOME",
        ]);
        Ok(())
    })?;
    ensure_eq!(out, "zero|a b|c'd\"e||$HOME|", "argv inside");
    pass()
}

fn env_exactly_as_configured(rt: &Runtime) -> Outcome {
    let mut want: BTreeSet<String> = BTreeSet::new();
    let out = run_script(rt, "", |b| {
        b.args(&["env"]);
        if let Some(env) = b.config["process"]["env"].as_array_mut() {
            env.push(json!("FOO=bar baz"));
            env.push(json!("EMPTY="));
            env.push(json!("WITH_EQ=a=b"));
            want = env
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        Ok(())
    })?;
    let got: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    ensure!(want.contains(PATH_ENV), "test setup: PATH not in env");
    ensure_eq!(got, want, "environment inside (no more, no less)");
    pass()
}

fn cwd_applied(rt: &Runtime) -> Outcome {
    let out = run_script(rt, "pwd", |b| {
        fs::create_dir_all(b.rootfs().join("home/work dir"))?;
        b.config["process"]["cwd"] = json!("/home/work dir");
        Ok(())
    })?;
    ensure_eq!(out.trim(), "/home/work dir", "cwd inside");
    pass()
}

fn all_equal(field: Option<&String>, want: &str) -> bool {
    field.is_some_and(|f| f.split_whitespace().all(|x| x == want))
}

fn user_ids_groups_umask(rt: &Runtime) -> Outcome {
    let s = status_of(rt, |b| {
        b.config["process"]["user"] = json!({
            "uid": 1000, "gid": 1001, "additionalGids": [2000, 2001], "umask": 0o027
        });
    })?;
    ensure!(all_equal(s.get("Uid"), "1000"), "Uid: {:?}", s.get("Uid"));
    ensure!(all_equal(s.get("Gid"), "1001"), "Gid: {:?}", s.get("Gid"));
    let groups: BTreeSet<&str> = s
        .get("Groups")
        .map(|g| g.split_whitespace().collect())
        .unwrap_or_default();
    ensure_eq!(groups, BTreeSet::from(["2000", "2001"]), "Groups");
    ensure_eq!(s.get("Umask").map(String::as_str), Some("0027"), "Umask");
    pass()
}

fn rlimits_applied(rt: &Runtime) -> Outcome {
    // Root here lacks CAP_SYS_RESOURCE: stay at or below this process's hard limits.
    let (_, nofile_hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| Error(e.to_string()))?;
    let hard = nofile_hard.min(4096);
    let soft = hard / 2;
    let out = run_script(rt, "cat /proc/self/limits", |b| {
        b.config["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
        Ok(())
    })?;
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    ensure_eq!(
        line("Max open files"),
        format!("{soft} {hard}"),
        "RLIMIT_NOFILE"
    );
    ensure_eq!(line("Max core file size"), "0 0", "RLIMIT_CORE");
    pass()
}

fn oom_score_adj_applied(rt: &Runtime) -> Outcome {
    let out = run_script(rt, "cat /proc/self/oom_score_adj", |b| {
        b.config["process"]["oomScoreAdj"] = json!(523);
        Ok(())
    })?;
    ensure_eq!(out.trim(), "523", "oom_score_adj inside");
    pass()
}

fn no_new_privileges(rt: &Runtime) -> Outcome {
    let on = status_of(rt, |b| {
        b.config["process"]["noNewPrivileges"] = json!(true);
    })?;
    ensure_eq!(
        on.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "NoNewPrivs with true"
    );
    let host = status_fields(&fs::read_to_string("/proc/self/status")?);
    if host.get("NoNewPrivs").map(String::as_str) == Some("0") {
        let off = status_of(rt, |b| {
            b.config["process"]["noNewPrivileges"] = json!(false);
        })?;
        ensure_eq!(
            off.get("NoNewPrivs").map(String::as_str),
            Some("0"),
            "NoNewPrivs with false"
        );
    }
    pass()
}

fn check_caps(
    s: &std::collections::BTreeMap<String, String>,
    want: [(&str, u64); 5],
) -> Result<(), Error> {
    for (field, mask) in want {
        let got = s.get(field).and_then(|v| parse_mask(v));
        ensure!(
            got == Some(mask),
            "{field}: got {:?}, want {mask:016x}",
            s.get(field)
        );
    }
    Ok(())
}

fn capabilities_of_root(rt: &Runtime) -> Outcome {
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ];
    let s = status_of(rt, |b| {
        b.config["process"]["capabilities"] = json!({
            "bounding": bnd,
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
    })?;
    // execve as uid 0 would raise permitted to bounding | inheritable, but with
    // noNewPrivileges (on in the default config) the kernel caps it at the permitted set the
    // runtime configured; effective follows permitted for root.
    let b = cap_mask(&bnd);
    let prm = cap_mask(&["CAP_CHOWN", "CAP_KILL"]);
    check_caps(
        &s,
        [
            ("CapBnd", b),
            ("CapInh", cap_mask(&["CAP_KILL"])),
            ("CapAmb", cap_mask(&["CAP_KILL"])),
            ("CapPrm", prm),
            ("CapEff", prm),
        ],
    )?;
    pass()
}

fn capabilities_of_non_root(rt: &Runtime) -> Outcome {
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ];
    let inh = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let s = status_of(rt, |b| {
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["capabilities"] = json!({
            "bounding": bnd,
            "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": inh,
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    })?;
    // execve as a non-root user of a file without capabilities: permitted = effective = ambient.
    let amb = cap_mask(&["CAP_NET_BIND_SERVICE"]);
    check_caps(
        &s,
        [
            ("CapBnd", cap_mask(&bnd)),
            ("CapInh", cap_mask(&inh)),
            ("CapAmb", amb),
            ("CapPrm", amb),
            ("CapEff", amb),
        ],
    )?;
    pass()
}

/// (fd, target) of the `ls -l /proc/self/fd` the container runs as its process, without
/// the directory fd ls itself holds while listing.
fn fds(listing: &str) -> Vec<(u32, String)> {
    listing
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            let own_dir = target.starts_with("/proc/") && target.ends_with("/fd");
            (!own_dir).then(|| (fd, target.to_owned()))
        })
        .collect()
}

fn run_listing(
    rt: &Runtime,
    files: &[&std::path::Path],
    extra: &[&str],
) -> Result<Vec<(u32, String)>, Error> {
    let b = rt.bundle(&["ls", "-l", "/proc/self/fd"])?;
    let id = rt.new_id();
    let dir = b.dir.display().to_string();
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", &dir, &id]);
    let out = rt.cmd_with_fds(files, &args)?.ok()?;
    Ok(fds(&out.stdout))
}

fn no_host_fds_leak(rt: &Runtime) -> Outcome {
    let leak = rt.tmp().join("leak");
    fs::write(&leak, "x")?;
    let got = run_listing(rt, &[&leak, &leak], &[])?;
    let nums: Vec<u32> = got.iter().map(|f| f.0).collect();
    ensure_eq!(
        nums,
        vec![0, 1, 2],
        "fds of the container process (the runtime had 3 and 4 open): {got:?}"
    );
    pass()
}

fn preserve_fds_passes_extra_fds(rt: &Runtime) -> Outcome {
    let f3 = rt.tmp().join("fd3");
    let f4 = rt.tmp().join("fd4");
    fs::write(&f3, "three\n")?;
    fs::write(&f4, "four\n")?;
    let got = run_listing(rt, &[&f3, &f4], &["--preserve-fds", "2"])?;
    let nums: Vec<u32> = got.iter().map(|f| f.0).collect();
    ensure_eq!(
        nums,
        vec![0, 1, 2, 3, 4],
        "fds with --preserve-fds 2: {got:?}"
    );
    ensure!(
        got[3].1.ends_with("fd3") && got[4].1.ends_with("fd4"),
        "preserved fds point elsewhere: {got:?}"
    );
    pass()
}
