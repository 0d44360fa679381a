//! CVE-2019-5736: a container process reaching the runtime binary through
//! /proc/<pid>/exe of a runtime process that entered its pid namespace.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use berth_tests::runtime::wait_file;
use berth_tests::{ensure, Runtime};
use serde_json::json;

use crate::common::{out_dir, pass, sh_bundle, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![case!(
        "CVE-2019-5736",
        runtime_exe_unreachable_from_container
    )]
}

/// Every process of the pid namespace that is not the container's own busybox: what its
/// exe link says, and whether it can be opened for reading or (without writing a byte)
/// for appending.
const PROBE: &str = r#"
while [ ! -e /out/go ]; do sleep 0.05; done
for p in /proc/[0-9]*; do
  n=${p#/proc/}
  l=$(readlink $p/exe 2>/dev/null)
  [ "$l" = /bin/busybox ] && continue
  [ -e $p/status ] || continue
  head -c 1 $p/exe >/dev/null 2>&1 && r=READ-OK || r=READ-DENIED
  ( : >> $p/exe ) 2>/dev/null && w=WRITE-OK || w=WRITE-DENIED
  echo "foreign $n link=[$l] $r $w"
done > /out/result.tmp
mv /out/result.tmp /out/result
"#;

/// Container A waits; container B joins A's pid namespace and stays `created`, so B's init
/// (runtime code, before its execve) is visible to A for as long as the test likes. A then
/// goes through every foreign process's /proc/<pid>/exe.
fn runtime_exe_unreachable_from_container(rt: &Runtime) -> Outcome {
    let bin_before = fs::metadata(&rt.bin)?;
    let mut a = sh_bundle(rt, PROBE)?;
    let out = out_dir(&mut a)?;
    let a_id = rt.start_new(&a)?;
    let a_pid = rt.state(&a_id)?["pid"].as_i64().unwrap_or(0);
    ensure!(a_pid > 0, "no pid for container {a_id}");

    let mut b = sh_bundle(rt, "true")?;
    b.drop_namespace("pid");
    b.push_namespace(json!({"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}));
    b.save()?;
    let b_id = rt.new_id();
    rt.create(&b_id, &b)?.ok()?;

    fs::write(out.join("go"), "")?;
    ensure!(
        wait_file(&out.join("result"), SHORT + Duration::from_secs(5)),
        "container A never reported"
    );
    let result = fs::read_to_string(out.join("result"))?;
    let _ = rt.delete_force(&b_id);
    let foreign: Vec<&str> = result
        .lines()
        .filter(|l| l.starts_with("foreign"))
        .collect();
    ensure!(
        !foreign.is_empty(),
        "container A did not see B's init in its pid namespace: {result:?}"
    );
    for l in &foreign {
        ensure!(
            l.contains("READ-DENIED") && l.contains("WRITE-DENIED"),
            "a runtime process's exe is reachable from the container: {l}"
        );
        ensure!(
            l.contains("link=[]") || !l.contains(&*rt.bin.to_string_lossy()),
            "the container can see the runtime binary's path: {l}"
        );
    }
    let bin_after = fs::metadata(&rt.bin)?;
    ensure!(
        bin_before.mtime() == bin_after.mtime() && bin_before.size() == bin_after.size(),
        "the runtime binary changed"
    );
    pass()
}
