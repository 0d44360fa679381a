//! Unit tests of the generated programs: a reference evaluator for the
//! classic-BPF subset seccomp filters use, so every operator, action and
//! architecture path is checked on exact inputs. kernel_tests.rs proves the
//! same programs on the real kernel.

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::sock_filter;

use super::compile;

/// `struct seccomp_data` as the filter reads it.
pub(crate) struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

pub(crate) const X86_64: u32 = 0xc000_003e;
pub(crate) const I386: u32 = 0x4000_0003;

fn load(d: &Data, off: u32) -> u32 {
    match off {
        0 => d.nr,
        4 => d.arch,
        16..=63 => {
            let arg = d.args[((off - 16) / 8) as usize];
            if off % 8 == 0 {
                arg as u32
            } else {
                (arg >> 32) as u32
            }
        }
        _ => panic!("load from offset {off}"),
    }
}

/// Runs `prog` like the kernel's classic BPF interpreter would.
pub(crate) fn run(prog: &[sock_filter], d: &Data) -> u32 {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = &prog[pc];
        pc += 1;
        let cond = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => a = load(d, i.k),
            0x54 => a &= i.k,
            0x05 => pc += i.k as usize,
            0x15 => pc += cond(a == i.k),
            0x25 => pc += cond(a > i.k),
            0x35 => pc += cond(a >= i.k),
            0x06 => return i.k,
            code => panic!("unexpected BPF opcode {code:#x} at {}", pc - 1),
        }
    }
}

pub(crate) fn program(json: &str) -> Vec<sock_filter> {
    let s: LinuxSeccomp = serde_json::from_str(json).expect("test profile parses");
    compile(&s).expect("compiles").instructions().to_vec()
}

pub(crate) fn call(prog: &[sock_filter], nr: i64, args: [u64; 6]) -> u32 {
    run(
        prog,
        &Data {
            nr: nr as u32,
            arch: X86_64,
            args,
        },
    )
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use libc::{
        SECCOMP_RET_ALLOW as ALLOW, SECCOMP_RET_ERRNO as ERRNO,
        SECCOMP_RET_KILL_PROCESS as KILL_PROCESS, SECCOMP_RET_LOG as LOG, SECCOMP_RET_TRAP as TRAP,
        SECCOMP_RET_USER_NOTIF as NOTIFY,
    };

    const NO_ARGS: [u64; 6] = [0; 6];

    fn arg0(prog: &[sock_filter], nr: i64, v: u64) -> u32 {
        call(prog, nr, [v, 0, 0, 0, 0, 0])
    }

    #[test]
    fn per_syscall_actions_and_default() {
        let p = program(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,"syscalls":[
                {"names":["getpid","gettid","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                {"names":["getppid"],"action":"SCMP_ACT_LOG"},
                {"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"},
                {"names":["rmdir"],"action":"SCMP_ACT_TRAP"},
                {"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":5}],
                "listenerPath":"/x"}"#,
        );
        assert_eq!(call(&p, libc::SYS_getpid, NO_ARGS), ALLOW);
        assert_eq!(call(&p, libc::SYS_gettid, NO_ARGS), ALLOW);
        assert_eq!(call(&p, libc::SYS_getppid, NO_ARGS), LOG);
        assert_eq!(call(&p, libc::SYS_mkdir, NO_ARGS), NOTIFY);
        assert_eq!(call(&p, libc::SYS_rmdir, NO_ARGS), TRAP);
        assert_eq!(call(&p, libc::SYS_uname, NO_ARGS), ERRNO | 5);
        assert_eq!(call(&p, libc::SYS_read, NO_ARGS), ERRNO | 13);
        // Newer than anything named: ENOSYS so libc can fall back.
        assert_eq!(call(&p, 1000, NO_ARGS), ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn every_operator_on_64_bit_values() {
        let big = 0x1_0000_0000u64;
        let p = program(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_EQ"}}]}},
                {{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_NE"}}]}},
                {{"names":["gettid"],"action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_LT"}}]}},
                {{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":4,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_LE"}}]}},
                {{"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_GE"}}]}},
                {{"names":["geteuid"],"action":"SCMP_ACT_ERRNO","errnoRet":6,"args":[{{"index":0,"value":{big},"op":"SCMP_CMP_GT"}}]}},
                {{"names":["getegid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,"args":[{{"index":0,"value":{m},"valueTwo":{big},"op":"SCMP_CMP_MASKED_EQ"}}]}}]}}"#,
            m = big | 0xff
        ));
        let hit = |nr, v, e| assert_eq!(arg0(&p, nr, v), ERRNO | e, "nr {nr} arg {v:#x}");
        let miss = |nr, v| assert_eq!(arg0(&p, nr, v), ALLOW, "nr {nr} arg {v:#x}");
        hit(libc::SYS_getpid, big, 1);
        miss(libc::SYS_getpid, 0); // same low half, different high half
        hit(libc::SYS_getppid, 0, 2);
        miss(libc::SYS_getppid, big);
        hit(libc::SYS_gettid, big - 1, 3);
        miss(libc::SYS_gettid, big);
        hit(libc::SYS_getuid, big, 4);
        miss(libc::SYS_getuid, big + 1);
        hit(libc::SYS_getgid, big, 5);
        miss(libc::SYS_getgid, big - 1);
        hit(libc::SYS_geteuid, big + 1, 6);
        miss(libc::SYS_geteuid, big);
        hit(libc::SYS_getegid, big | 0x100, 7); // bits outside the mask ignored
        miss(libc::SYS_getegid, big | 0x1);
        miss(libc::SYS_getegid, 0);
    }

    #[test]
    fn conditions_and_within_an_entry_or_across_entries() {
        let p = program(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[
                    {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]},
                {"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[
                    {"index":1,"value":15,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
                {"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        let kill = |a0, a1| call(&p, libc::SYS_kill, [a0, a1, 0, 0, 0, 0]);
        assert_eq!(kill(1, 9), ERRNO | 1);
        assert_eq!(kill(1, 15), ERRNO | 2);
        assert_eq!(kill(7, 2), ERRNO | 2);
        // No rule matched: the unconditional entry for the syscall applies.
        assert_eq!(kill(2, 9), KILL_PROCESS);
    }

    #[test]
    fn architectures() {
        let src = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":[ARCHES],"syscalls":[
                {"names":["getpid","_llseek"],"action":"SCMP_ACT_ERRNO","errnoRet":9}]}"#;
        let all = program(&src.replace(
            "ARCHES",
            r#""SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64""#,
        ));
        let native = program(&src.replace("ARCHES", ""));
        let at = |p: &[sock_filter], arch, nr| {
            run(
                p,
                &Data {
                    nr,
                    arch,
                    args: NO_ARGS,
                },
            )
        };
        // getpid: 39 on x86_64, 20 on i386, 39|X32 on x32; _llseek i386 only.
        assert_eq!(at(&all, X86_64, 39), ERRNO | 9);
        assert_eq!(at(&all, I386, 20), ERRNO | 9);
        assert_eq!(at(&all, I386, 140), ERRNO | 9);
        assert_eq!(at(&all, I386, 39), ALLOW);
        assert_eq!(at(&all, X86_64, 0x4000_0000 + 39), ERRNO | 9);
        assert_eq!(at(&all, X86_64, 0x4000_0000), ALLOW);
        // Not listed: i386 and x32 calls are killed rather than let
        // through a deny-list.
        assert_eq!(at(&native, I386, 20), KILL_PROCESS);
        assert_eq!(at(&native, X86_64, 0x4000_0000 + 39), KILL_PROCESS);
        assert_eq!(at(&native, X86_64, 39), ERRNO | 9);
        assert_eq!(at(&native, 0xc000_00b7, 39), KILL_PROCESS);
    }

    #[test]
    fn unknown_names_are_skipped_and_reported() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[
                {"names":["getpid","no_such_call","_llseek","no_such_call"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let policy = crate::seccomp::policy::translate(&s).unwrap();
        assert_eq!(
            crate::seccomp::bpf::unknown_names(&policy),
            ["no_such_call"]
        );
        let p = compile(&s).unwrap();
        assert_eq!(call(p.instructions(), libc::SYS_getpid, NO_ARGS), ALLOW);
    }

    #[test]
    fn long_allow_lists_chunk_their_jumps() {
        // More syscalls than one conditional jump can skip.
        let names: Vec<&str> = crate::seccomp::arch::NATIVE
            .table
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        });
        let p = program(&json.to_string());
        for (_, nr) in crate::seccomp::arch::NATIVE.table {
            assert_eq!(call(&p, *nr as i64, NO_ARGS), ALLOW, "nr {nr}");
        }
        assert!(p.len() < names.len() + 20, "{} instructions", p.len());
    }

    fn docker() -> Vec<sock_filter> {
        program(include_str!(
            "../../../tests/fixtures/seccomp/docker-default.json"
        ))
    }

    #[test]
    fn docker_default_profile() {
        let p = docker();
        assert!(p.len() < 4096, "{} instructions", p.len());
        let clone = |flags: u64| call(&p, libc::SYS_clone, [flags, 0, 0, 0, 0, 0]);
        assert_eq!(clone(libc::SIGCHLD as u64), ALLOW);
        assert_eq!(clone(libc::CLONE_NEWUSER as u64), ERRNO | 1);
        assert_eq!(call(&p, libc::SYS_clone3, NO_ARGS), ERRNO | 38);
        assert_eq!(call(&p, libc::SYS_read, NO_ARGS), ALLOW);
        assert_eq!(call(&p, libc::SYS_mount, NO_ARGS), ERRNO | 1);
        let personality = |v| arg0(&p, libc::SYS_personality, v);
        assert_eq!(personality(0), ALLOW);
        assert_eq!(personality(0xffff_ffff), ALLOW);
        assert_eq!(personality(1), ERRNO | 1);
        let socket = |af| arg0(&p, libc::SYS_socket, af);
        assert_eq!(socket(libc::AF_INET as u64), ALLOW);
        assert_eq!(socket(libc::AF_VSOCK as u64), ERRNO | 1);
    }
}

/// `cargo test --release -p berth compile_time -- --ignored --nocapture`
#[cfg(test)]
#[test]
#[ignore = "measurement, not a check"]
fn compile_time_docker_profile() {
    let json = include_str!("../../../tests/fixtures/seccomp/docker-default.json");
    let s: LinuxSeccomp = serde_json::from_str(json).expect("parses");
    let runs = 2000;
    let t = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(compile(&s).expect("compiles"));
    }
    let compile_us = t.elapsed().as_secs_f64() * 1e6 / runs as f64;
    let t = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(serde_json::from_str::<LinuxSeccomp>(json).expect("parses"));
    }
    let parse_us = t.elapsed().as_secs_f64() * 1e6 / runs as f64;
    let len = compile(&s).expect("compiles").len();
    println!(
        "docker profile: compile {compile_us:.1} us, parse {parse_us:.1} us, {len} instructions"
    );
}
