//! What engines read from a runtime besides containers: `features` (runtime-spec features.md),
//! `spec` (a config that runs), and errors as JSON log lines (`--log --log-format json`, the
//! last "error" line's "msg" is what containerd reports).

use std::fs;

use berth_tests::{ensure, ensure_eq, Error, Runtime};
use serde_json::{json, Value};

use crate::common::{check_berth_error, pass};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("cli.features", features_document_has_spec_shape),
        case!("cli.spec", spec_output_runs),
        case!("cli.spec", spec_rootless_maps_caller),
        case!("cli.spec", spec_refuses_to_overwrite),
        case!("cli.log", errors_are_json_log_lines),
    ]
}

const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];
const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
];

fn strings(v: &Value, what: &str) -> Result<Vec<String>, Error> {
    let a = v
        .as_array()
        .ok_or_else(|| Error(format!("{what} is not an array: {v}")))?;
    a.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error(format!("{what} holds a non-string: {s}")))
        })
        .collect()
}

/// `enabled` and other booleans of an optional object.
fn bools(v: &Value, what: &str, keys: &[&str]) -> Result<(), Error> {
    if v.is_null() {
        return Ok(());
    }
    ensure!(v.is_object(), "{what} is not an object: {v}");
    for k in keys {
        ensure!(
            v[k].is_null() || v[k].is_boolean(),
            "{what}.{k} is not a boolean: {}",
            v[k]
        );
    }
    Ok(())
}

fn semver(s: &Value, what: &str) -> Result<(), Error> {
    let s = s
        .as_str()
        .ok_or_else(|| Error(format!("{what} is not a string")))?;
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    ensure!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "{what} {s:?} is not a semantic version"
    );
    Ok(())
}

fn features_document_has_spec_shape(rt: &Runtime) -> Outcome {
    let out = rt.cmd(&["features"])?.ok()?;
    let f: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| Error(format!("features is not JSON ({e}): {:?}", out.stdout)))?;
    semver(&f["ociVersionMin"], "ociVersionMin")?;
    semver(&f["ociVersionMax"], "ociVersionMax")?;
    for h in strings(&f["hooks"], "hooks")? {
        ensure!(HOOKS.contains(&h.as_str()), "unknown hook {h:?}");
    }
    let opts = strings(&f["mountOptions"], "mountOptions")?;
    ensure!(
        opts.iter().any(|o| o == "ro"),
        "mountOptions lacks ro: {opts:?}"
    );
    let linux = &f["linux"];
    ensure!(linux.is_object(), "linux is not an object");
    let ns = strings(&linux["namespaces"], "linux.namespaces")?;
    for n in &ns {
        ensure!(NAMESPACES.contains(&n.as_str()), "unknown namespace {n:?}");
    }
    for n in ["pid", "mount", "network"] {
        ensure!(ns.iter().any(|x| x == n), "linux.namespaces lacks {n}");
    }
    for c in strings(&linux["capabilities"], "linux.capabilities")? {
        ensure!(c.starts_with("CAP_"), "capability {c:?}");
    }
    bools(
        &linux["cgroup"],
        "linux.cgroup",
        &["v1", "v2", "systemd", "systemdUser", "rdma"],
    )?;
    let sc = &linux["seccomp"];
    bools(sc, "linux.seccomp", &["enabled"])?;
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        if !sc[k].is_null() {
            strings(&sc[k], &format!("linux.seccomp.{k}"))?;
        }
    }
    for k in ["apparmor", "selinux", "intelRdt"] {
        bools(&linux[k], &format!("linux.{k}"), &["enabled"])?;
    }
    bools(
        &linux["mountExtensions"]["idmap"],
        "linux.mountExtensions.idmap",
        &["enabled"],
    )?;
    if let Some(a) = f["annotations"].as_object() {
        for (k, v) in a {
            ensure!(v.is_string(), "annotations.{k} is not a string");
        }
    }
    pass()
}

/// `spec` in a directory next to a harness rootfs; the config it wrote.
fn spec_in(rt: &Runtime, extra: &[&str]) -> Result<(berth_tests::Bundle, Value), Error> {
    let mut b = rt.bundle(&["true"])?;
    let cgroups_path = b.config["linux"]["cgroupsPath"].clone();
    let marker = b.config["process"]["env"]
        .as_array()
        .and_then(|e| e.last().cloned())
        .unwrap_or(Value::Null);
    fs::remove_file(b.config_path())?;
    let dir = b.dir.display().to_string();
    let mut args = vec!["spec", "--bundle", &dir];
    args.extend_from_slice(extra);
    rt.cmd(&args)?.ok()?;
    let written: Value = serde_json::from_slice(&fs::read(b.config_path())?)?;
    b.config = written.clone();
    // What the harness needs to find and clean up the container.
    b.config["linux"]["cgroupsPath"] = cgroups_path;
    if let Some(env) = b.config["process"]["env"].as_array_mut() {
        env.push(marker);
    }
    Ok((b, written))
}

fn spec_output_runs(rt: &Runtime) -> Outcome {
    let (mut b, written) = spec_in(rt, &[])?;
    semver(&written["ociVersion"], "ociVersion")?;
    ensure_eq!(written["root"]["path"], json!("rootfs"), "root.path");
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?.ok()?;
    ensure!(out.stdout.contains("spec-ok"), "output {out}");
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn spec_rootless_maps_caller(rt: &Runtime) -> Outcome {
    let (mut b, written) = spec_in(rt, &["--rootless"])?;
    let ns = written["linux"]["namespaces"].to_string();
    ensure!(ns.contains("\"user\""), "no user namespace: {ns}");
    ensure!(!ns.contains("\"network\""), "network namespace kept: {ns}");
    let uid = nix::unistd::geteuid().as_raw();
    ensure_eq!(
        written["linux"]["uidMappings"][0]["hostID"],
        json!(uid),
        "uid mapping of the caller"
    );
    ensure!(
        written["linux"]["resources"].is_null(),
        "rootless spec keeps resources"
    );
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map"]);
    // A cgroup v1 hierarchy cannot be mounted from inside a user namespace.
    b.drop_mount("/sys/fs/cgroup");
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?.ok()?;
    let map: Vec<&str> = out.stdout.split_whitespace().collect();
    let uid_s = uid.to_string();
    ensure_eq!(map, vec!["0", uid_s.as_str(), "1"], "uid_map inside");
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn spec_refuses_to_overwrite(rt: &Runtime) -> Outcome {
    let b = rt.bundle(&["true"])?;
    let before = fs::read(b.config_path())?;
    let dir = b.dir.display().to_string();
    rt.cmd(&["spec", "--bundle", &dir])?.failed()?;
    ensure!(
        fs::read(b.config_path())? == before,
        "spec replaced an existing config.json"
    );
    pass()
}

fn errors_are_json_log_lines(rt: &Runtime) -> Outcome {
    let log = rt.tmp().join("runtime.log");
    let lp = log.display().to_string();
    let id = rt.new_id();
    let out = rt
        .cmd(&["--log", &lp, "--log-format", "json", "exec", &id, "true"])?
        .failed()?;
    ensure!(out.code != 0, "exit code {out}");
    let text = fs::read_to_string(&log)?;
    let mut last_error = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error(format!("log line is not JSON ({e}): {line:?}")))?;
        ensure!(v["level"].is_string(), "no level: {line}");
        ensure!(v["msg"].is_string(), "no msg: {line}");
        let time = v["time"].as_str().unwrap_or("");
        // RFC 3339, as Go's time.Time (containerd decodes it) requires.
        ensure!(
            time.len() >= 20 && time.as_bytes()[10] == b'T',
            "time is not RFC 3339: {line}"
        );
        if v["level"] == "error" {
            last_error = v["msg"].as_str().map(str::to_owned);
        }
    }
    let msg = last_error.ok_or_else(|| Error(format!("no error line in the log: {text:?}")))?;
    ensure!(!msg.trim().is_empty(), "empty error message in the log");
    if berth_tests::runtime::is_berth() {
        ensure!(
            msg.contains(&id),
            "the error does not name the container: {msg:?}"
        );
        ensure_eq!(out.code, 255, "berth exits 255 when exec fails, as runc");
        check_berth_error(&out.stderr, &id)?;
    }
    pass()
}
