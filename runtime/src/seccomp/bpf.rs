//! Policy -> classic BPF.
//!
//! seccompiler's `SeccompFilter` has one match action for the whole filter
//! and 5 instructions per syscall, while OCI gives every syscall its own
//! action; so berth lays out the dispatch itself and uses seccompiler for
//! what is fiddly: argument conditions (`SeccompRule` -> BPF, with 64-bit
//! comparisons split into halves) and the action encodings.
//!
//! Layout:
//! ```text
//!   ld arch; (jeq AUDIT_ARCH_i; ja section_i)*; ret BAD_ARCH
//! section (x86_64 shown):
//!   ld nr
//!   jge X32_BIT -> ja x32 section | ret BAD_ARCH
//!   jgt LAST_NR -> ret ERRNO(ENOSYS)            (ENOSYS stub)
//!   (jeq nr_1..nr_k -> ret ACTION)*             (syscalls without args)
//!   (jeq nr -> { rule; ret ACTION }* ret FALLBACK)*   (syscalls with args)
//!   ret DEFAULT
//! ```
//! For a syscall with argument rules, the rules are tried in config order
//! and, when none matches, the syscall's unconditional action if it has one,
//! else the default: the more specific entry wins.

use std::collections::BTreeMap;

use oci_spec::runtime::LinuxSeccompOperator as Op;
use seccompiler::{
    sock_filter, BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};

use super::arch::{ArchSpec, X32_SYSCALL_BIT};
use super::policy::{ArgCond, Match, Policy};

// Opcodes from <linux/bpf_common.h>: class | size | mode (or op | source).
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// BPF_MAXINSNS: the kernel refuses longer programs.
pub(crate) const MAX_INSNS: usize = 4096;

/// Returned for a syscall under an architecture the profile does not list;
/// libseccomp's default is to kill too.
const BAD_ARCH_RET: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// A conditional jump can skip at most 255 instructions.
const MAX_JUMP: usize = u8::MAX as usize;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ja(over: usize) -> sock_filter {
    // Programs are capped at MAX_INSNS, far below u32::MAX.
    stmt(BPF_JMP_JA, over as u32)
}

fn ret(k: u32) -> sock_filter {
    stmt(BPF_RET_K, k)
}

/// What one syscall number does under one architecture.
#[derive(Default)]
struct Plan {
    rules: Vec<(Vec<ArgCond>, u32)>,
    always: Option<u32>,
}

/// The names in the profile that no table of the filtered architectures
/// knows, in config order, without duplicates.
pub(crate) fn unknown_names(policy: &Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in policy.entries.iter().flat_map(|e| &e.names) {
        if policy.archs.iter().all(|a| a.syscall_nr(name).is_none()) && !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// The plan of every syscall `arch` knows in the profile, and the highest
/// syscall number the profile names for it, over all its entries including
/// those dropped for repeating the default, as runc computes it for its
/// ENOSYS stub. Each name is looked up once per architecture: the lookups
/// are most of the compile time.
fn plans(policy: &Policy, arch: &ArchSpec) -> (BTreeMap<u32, Plan>, Option<u32>) {
    let mut plans: BTreeMap<u32, Plan> = BTreeMap::new();
    for entry in &policy.entries {
        for nr in entry.names.iter().filter_map(|n| arch.syscall_nr(n)) {
            let plan = plans.entry(nr).or_default();
            match &entry.when {
                Match::Always => {
                    plan.always.get_or_insert(entry.ret);
                }
                Match::Any(rules) => plan
                    .rules
                    .extend(rules.iter().map(|r| (r.clone(), entry.ret))),
            }
        }
    }
    let dropped = policy
        .dropped_names
        .iter()
        .filter_map(|n| arch.syscall_nr(n));
    let last = plans
        .keys()
        .next_back()
        .copied()
        .into_iter()
        .chain(dropped)
        .max();
    (plans, last)
}

fn condition(c: &ArgCond, len: &SeccompCmpArgLen) -> SeccompCondition {
    let (op, value) = match c.op {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, c.value),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, c.value),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, c.value),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, c.value),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, c.value),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, c.value),
        Op::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
    };
    let (value, mask) = match len {
        SeccompCmpArgLen::Qword => (value, u64::MAX),
        SeccompCmpArgLen::Dword => (value & 0xffff_ffff, 0xffff_ffff),
    };
    let op = match op {
        SeccompCmpOp::MaskedEq(m) => SeccompCmpOp::MaskedEq(m & mask),
        other => other,
    };
    // The policy checked index <= 5, the only thing seccompiler validates.
    SeccompCondition::new(c.index, len.clone(), op, value)
        .unwrap_or_else(|_| unreachable!("argument index {} was validated", c.index))
}

/// Emits the dispatch for one architecture, ending with `ret default`.
fn dispatch(out: &mut Vec<sock_filter>, plans: BTreeMap<u32, Plan>, arch: &ArchSpec, default: u32) {
    // Syscalls decided by number alone, grouped by action: a run of jeq that
    // all land on one shared ret.
    let mut simple: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut complex = Vec::new();
    for (nr, plan) in plans {
        match (plan.rules.is_empty(), plan.always) {
            (true, Some(action)) => simple.entry(action).or_default().push(nr),
            (true, None) => {}
            (false, _) => complex.push((nr, plan)),
        }
    }
    for (action, nrs) in simple {
        for chunk in nrs.chunks(MAX_JUMP) {
            let n = chunk.len();
            for (i, nr) in chunk.iter().enumerate() {
                out.push(jump(BPF_JEQ_K, *nr, (n - i) as u8, 0));
            }
            out.push(ja(1));
            out.push(ret(action));
        }
    }
    for (nr, plan) in complex {
        let mut block = Vec::new();
        for (conds, action) in plan.rules {
            let conds = conds.iter().map(|c| condition(c, &arch.arg_len)).collect();
            let rule = SeccompRule::new(conds)
                .unwrap_or_else(|_| unreachable!("a rule has at least one condition"));
            // seccompiler's rule code falls through to the instruction after
            // it when every condition holds and jumps one further when one
            // fails: the next rule, or the fallback ret.
            block.extend(BpfProgram::from(rule));
            block.push(ret(action));
        }
        block.push(ret(plan.always.unwrap_or(default)));
        out.push(jump(BPF_JEQ_K, nr, 1, 0));
        out.push(ja(block.len()));
        out.extend(block);
    }
    out.push(ret(default));
}

/// ld nr, the optional ENOSYS stub, and the dispatch of one architecture.
fn section(policy: &Policy, arch: &ArchSpec, x32: Option<&ArchSpec>) -> Vec<sock_filter> {
    let mut out = vec![stmt(BPF_LD_W_ABS, NR_OFFSET)];
    if std::ptr::eq(arch, &super::arch::NATIVE) && cfg!(target_arch = "x86_64") {
        // x32 syscalls come under AUDIT_ARCH_X86_64 with a high bit set;
        // without this check they would bypass a deny-list profile.
        out.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        match x32 {
            Some(x32) => {
                let mut native = Vec::new();
                body(&mut native, policy, arch);
                out.push(ja(native.len()));
                out.extend(native);
                body(&mut out, policy, x32);
            }
            None => {
                out.push(ret(BAD_ARCH_RET));
                body(&mut out, policy, arch);
            }
        }
    } else {
        body(&mut out, policy, arch);
    }
    out
}

fn body(out: &mut Vec<sock_filter>, policy: &Policy, arch: &ArchSpec) {
    let (plans, last) = plans(policy, arch);
    if let (true, Some(last)) = (policy.enosys_stub, last) {
        out.push(jump(BPF_JGT_K, last, 0, 1));
        out.push(ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    dispatch(out, plans, arch, policy.default_ret);
}

/// Generates the program.
pub(crate) fn generate(policy: &Policy) -> Vec<sock_filter> {
    let x32 = policy.archs.iter().copied().find(|a| a.is_x32());
    let top: Vec<&ArchSpec> = policy
        .archs
        .iter()
        .copied()
        .filter(|a| !a.is_x32())
        .collect();
    let sections: Vec<Vec<sock_filter>> = top.iter().map(|a| section(policy, a, x32)).collect();

    // Header: ld arch, then a jeq/ja pair per section and the bad-arch ret.
    let header_len = 1 + 2 * top.len() + 1;
    let mut out = Vec::with_capacity(header_len + sections.iter().map(Vec::len).sum::<usize>());
    out.push(stmt(BPF_LD_W_ABS, ARCH_OFFSET));
    let mut start = header_len;
    for (arch, sec) in top.iter().zip(&sections) {
        out.push(jump(BPF_JEQ_K, arch.audit, 0, 1));
        let next = out.len() + 1;
        out.push(ja(start - next));
        start += sec.len();
    }
    out.push(ret(BAD_ARCH_RET));
    for sec in sections {
        out.extend(sec);
    }
    out
}
