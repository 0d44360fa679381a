//! Hooks: each kind runs at its point of the lifecycle with the state on stdin, its args and
//! env; timeouts and failures have the spec's consequences.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::runtime::wait_file;
use berth_tests::{ensure, ensure_eq, Bundle, Error, Runtime};
use serde_json::{json, Value};

use crate::common::{out_dir, pass, sh_bundle, unsupported, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("hooks.all", hooks_run_in_order_with_state),
        case!("hooks.args-env", hook_args_and_env),
        case!("hooks.timeout", hook_timeout_fails_create),
        case!("hooks.failure", failing_create_runtime_hook_leaves_nothing),
        case!("hooks.failure", failing_prestart_hook_leaves_nothing),
        case!("hooks.failure", failing_poststart_hook_only_warns),
        case!("hooks.failure", failing_poststop_hook_only_warns),
    ]
}

/// A host-side hook appending its name to `log` and saving its stdin to `dir/name.json`.
fn recording_hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo {name} >> {d}/order")]
    })
}

fn add_all_hooks(b: &mut Bundle, host: &Path) {
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        b.push_hook(kind, recording_hook(host, kind));
    }
    // startContainer runs inside the container: its path resolves in the container's rootfs.
    b.push_hook(
        "startContainer",
        json!({"path": "/bin/sh",
               "args": ["sh", "-c", "cat > /out/startContainer.json; echo startContainer >> /out/order"]}),
    );
}

fn read_state(host: &Path, name: &str) -> Result<Value, Error> {
    let text = fs::read_to_string(host.join(format!("{name}.json")))
        .map_err(|e| Error(format!("{name} hook did not run (no state saved): {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        Error(format!(
            "{name} hook got no state JSON on stdin ({e}): {text:?}"
        ))
    })
}

fn hooks_run_in_order_with_state(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "echo ran >> /out/order; exec sleep 1000")?;
    let host = out_dir(&mut b)?;
    add_all_hooks(&mut b, &host);
    b.save()?;
    let id = rt.new_id();
    rt.create(&id, &b)?.ok()?;
    rt.start(&id)?.ok()?;
    rt.kill(&id, "KILL")?.ok()?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.delete(&id)?.ok()?;
    let order = fs::read_to_string(host.join("order"))?;
    let order: Vec<&str> = order.lines().collect();
    let pos = |n: &str| order.iter().position(|x| *x == n);
    for n in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "ran",
        "poststart",
        "poststop",
    ] {
        ensure!(pos(n).is_some(), "{n} missing from {order:?}");
    }
    let before = |a: &str, c: &str| pos(a) < pos(c);
    for create_hook in ["prestart", "createRuntime", "createContainer"] {
        ensure!(
            before(create_hook, "startContainer"),
            "{create_hook} after startContainer: {order:?}"
        );
    }
    ensure!(
        before("createRuntime", "createContainer"),
        "createRuntime after createContainer: {order:?}"
    );
    ensure!(
        before("startContainer", "ran"),
        "startContainer after the user program: {order:?}"
    );
    // runc 1.1 runs poststart during create; judged last so the rest is still checked.
    let poststart_early = !before("startContainer", "poststart");
    ensure!(
        before("poststart", "poststop"),
        "poststop before poststart: {order:?}"
    );
    let canonical = fs::canonicalize(&b.dir)?;
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let s = read_state(&host, name)?;
        ensure_eq!(s["id"], json!(id), "{name} state id");
        ensure!(s["ociVersion"].is_string(), "{name} state ociVersion: {s}");
        let bundle = s["bundle"].as_str().unwrap_or_default();
        ensure_eq!(
            fs::canonicalize(bundle).unwrap_or_default(),
            canonical,
            "{name} state bundle"
        );
        if name != "poststop" {
            ensure!(s["pid"].as_i64().unwrap_or(0) > 0, "{name} state pid: {s}");
        }
    }
    rt.assert_no_leftovers(&id, &b)?;
    if poststart_early && !berth_tests::runtime::is_berth() {
        return unsupported(format!("poststart hooks run during create: {order:?}"));
    }
    ensure!(
        !poststart_early,
        "poststart before startContainer: {order:?}"
    );
    pass()
}

fn hook_args_and_env(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    let host = b.host_dir("hook")?;
    let d = host.display();
    b.push_hook(
        "createRuntime",
        json!({"path": "/bin/sh",
               "args": ["sh", "-c", format!("echo \"$0|$1|$2\" > {d}/args; env > {d}/env"), "first", "second arg", ""],
               "env": ["BERTH_HOOK_VAR=hello world"]}),
    );
    b.save()?;
    rt.run_ok(&b)?;
    let args = fs::read_to_string(host.join("args"))?;
    ensure_eq!(args.trim_end(), "first|second arg|", "hook args");
    let env = fs::read_to_string(host.join("env"))?;
    ensure!(
        env.lines().any(|l| l == "BERTH_HOOK_VAR=hello world"),
        "hook env lacks BERTH_HOOK_VAR: {env:?}"
    );
    pass()
}

fn hook_timeout_fails_create(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.push_hook(
        "createRuntime",
        json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}),
    );
    b.save()?;
    let id = rt.new_id();
    let t = Instant::now();
    let out = rt.create(&id, &b)?;
    let took = t.elapsed();
    out.failed()?;
    ensure!(
        took < Duration::from_secs(15),
        "the 1 s hook timeout took {took:?}"
    );
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn failing_hook_leaves_nothing(rt: &Runtime, kind: &str) -> Outcome {
    let mut b = sh_bundle(rt, "touch /out/ran")?;
    let host = out_dir(&mut b)?;
    b.push_hook(
        kind,
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.save()?;
    let id = rt.new_id();
    let out = rt.create(&id, &b)?.failed()?;
    crate::common::check_berth_error(&out.stderr, kind)?;
    ensure!(
        !host.join("ran").exists(),
        "user program ran despite failing {kind} hook"
    );
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn failing_create_runtime_hook_leaves_nothing(rt: &Runtime) -> Outcome {
    failing_hook_leaves_nothing(rt, "createRuntime")
}

fn failing_prestart_hook_leaves_nothing(rt: &Runtime) -> Outcome {
    failing_hook_leaves_nothing(rt, "prestart")
}

fn failing_poststart_hook_only_warns(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "touch /out/ran; exec sleep 1000")?;
    let host = out_dir(&mut b)?;
    b.push_hook(
        "poststart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.save()?;
    let id = rt.new_id();
    let created = rt.create(&id, &b)?;
    if !created.success() && !berth_tests::runtime::is_berth() {
        rt.assert_no_leftovers(&id, &b)?;
        return unsupported("poststart hooks run (and fail) during `create`");
    }
    created.ok()?;
    let out = rt.start(&id)?;
    if !out.success() && !berth_tests::runtime::is_berth() {
        return unsupported("a failing poststart hook fails `start` (spec: warn and continue)");
    }
    out.ok()?;
    ensure!(
        wait_file(&host.join("ran"), SHORT),
        "user program did not run"
    );
    ensure_eq!(
        rt.status(&id)?,
        "running",
        "status after a failed poststart hook"
    );
    rt.delete_force(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn failing_poststop_hook_only_warns(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.push_hook(
        "poststop",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.save()?;
    let id = rt.start_new(&b)?;
    rt.wait_status(&id, "stopped", SHORT)?;
    let out = rt.delete(&id)?;
    if !out.success() && !berth_tests::runtime::is_berth() {
        rt.delete_force(&id)?;
        return unsupported("a failing poststop hook fails `delete` (spec: warn and continue)");
    }
    out.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
