//! `linux.seccomp` -> an architecture-independent policy: return values
//! instead of action names, argument conditions grouped into OR-ed rules,
//! every config mistake reported with its JSON path.

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};
use seccompiler::SeccompAction;

use super::arch::{self, ArchSpec};
use super::kernel;
use super::SeccompError;

/// A syscall argument has indexes 0..=5.
const MAX_ARG_INDEX: usize = 5;

/// `SECCOMP_RET_DATA`: errnoRet and trace data are 16 bits.
const MAX_RET_DATA: u32 = 0xffff;

/// After install the init hands the listener fd on with one of these (a
/// write on the sync pipe, or sendmsg); notifying them would block the init
/// before the agent has the fd. runc forbids `write` for the same reason.
const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArgCond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// When an entry applies to a call of one of its syscalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// No args: every call.
    Always,
    /// Any of these rules, each an AND of conditions. Empty: never (every
    /// rule had a MASKED_EQ that cannot hold).
    Any(Vec<Vec<ArgCond>>),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub names: Vec<String>,
    /// The BPF return value (`SECCOMP_RET_*` | data).
    pub ret: u32,
    pub when: Match,
}

#[derive(Debug)]
pub(crate) struct Policy {
    pub default_ret: u32,
    pub archs: Vec<&'static ArchSpec>,
    /// Entries whose action differs from the default, in config order.
    pub entries: Vec<Entry>,
    /// Names of the entries dropped for repeating the default: they still
    /// count for the ENOSYS stub's bound, as in runc.
    pub dropped_names: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` to pass to seccomp(2), NEW_LISTENER included.
    pub flags: u64,
    pub notify: bool,
    /// Return ENOSYS for syscalls newer than any the profile names, so libc
    /// falls back (clone3 -> clone) instead of failing with the default errno.
    pub enosys_stub: bool,
}

fn cfg(field: impl Into<String>, msg: impl Into<String>) -> SeccompError {
    SeccompError::Config {
        field: field.into(),
        msg: msg.into(),
    }
}

/// The return value of an action; `field` names the action for messages.
pub(crate) fn action_ret(
    action: Action,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<u32, SeccompError> {
    if let Some(data) = errno_ret {
        if !matches!(action, Action::ScmpActErrno | Action::ScmpActTrace) {
            return Err(cfg(
                errno_field,
                format!("only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {action}"),
            ));
        }
        if data > MAX_RET_DATA {
            return Err(cfg(
                errno_field,
                format!("{data} is larger than {MAX_RET_DATA}"),
            ));
        }
    }
    // EPERM when errnoRet is absent, as runc and crun do.
    let data = errno_ret.unwrap_or(libc::EPERM as u32);
    let ret = match action {
        Action::ScmpActKill | Action::ScmpActKillThread => SeccompAction::KillThread.into(),
        Action::ScmpActKillProcess => SeccompAction::KillProcess.into(),
        Action::ScmpActTrap => SeccompAction::Trap.into(),
        Action::ScmpActErrno => SeccompAction::Errno(data).into(),
        Action::ScmpActTrace => SeccompAction::Trace(data).into(),
        Action::ScmpActLog => SeccompAction::Log.into(),
        Action::ScmpActAllow => SeccompAction::Allow.into(),
        // seccompiler has no user-notification action; the return value is
        // emitted directly by our code generator.
        Action::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
    };
    if !kernel::action_available(ret) {
        return Err(cfg(
            field,
            format!("{action} is not supported by this kernel"),
        ));
    }
    Ok(ret)
}

fn arg_cond(arg: &LinuxSeccompArg, field: &str) -> Result<ArgCond, SeccompError> {
    let index = arg.index();
    if index > MAX_ARG_INDEX {
        return Err(cfg(
            format!("{field}.index"),
            format!("{index} is out of range: a syscall has arguments 0 to {MAX_ARG_INDEX}"),
        ));
    }
    Ok(ArgCond {
        index: index as u8,
        op: arg.op(),
        value: arg.value(),
        value_two: arg.value_two().unwrap_or(0),
    })
}

/// libseccomp's MASKED_EQ is `(arg & value) == valueTwo`; a valueTwo with
/// bits outside the mask never matches.
fn satisfiable(c: &ArgCond) -> bool {
    c.op != Op::ScmpCmpMaskedEq || c.value_two & !c.value == 0
}

/// runc's rule: conditions on distinct arguments are AND-ed into one rule;
/// if an argument index repeats, each condition becomes its own rule (OR),
/// which is what profiles such as Docker's rely on.
fn group(conds: Vec<ArgCond>) -> Match {
    let mut seen = [false; MAX_ARG_INDEX + 1];
    let repeated = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    let rules = if repeated {
        conds
            .into_iter()
            .filter(satisfiable)
            .map(|c| vec![c])
            .collect()
    } else if conds.iter().all(satisfiable) {
        vec![conds]
    } else {
        Vec::new()
    };
    Match::Any(rules)
}

fn flags(seccomp: &LinuxSeccomp, notify: bool) -> Result<u64, SeccompError> {
    let mut out = 0u64;
    for (i, flag) in seccomp.flags().iter().flatten().enumerate() {
        let bit = match flag {
            // The init is single-threaded when it installs the filter, so
            // there is nothing to synchronise (runc ignores it too); and
            // TSYNC with NEW_LISTENER needs TSYNC_ESRCH.
            Flag::SeccompFilterFlagTsync => continue,
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful for (and only accepted with) a listener.
            Flag::SeccompFilterFlagWaitKillableRecv if !notify => continue,
            Flag::SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        };
        if !kernel::flag_supported(bit) {
            return Err(cfg(
                format!("linux.seccomp.flags[{i}]"),
                format!("{flag} is not supported by this kernel"),
            ));
        }
        out |= bit;
    }
    if notify {
        out |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    Ok(out)
}

pub(crate) fn translate(seccomp: &LinuxSeccomp) -> Result<Policy, SeccompError> {
    let default_action = seccomp.default_action();
    if default_action == Action::ScmpActNotify {
        return Err(cfg(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own syscalls \
             after install would wait for an agent that has no fd yet",
        ));
    }
    let default_ret = action_ret(
        default_action,
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;

    let mut entries = Vec::new();
    let mut dropped_names = Vec::new();
    let mut notify = false;
    for (i, call) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let ret = action_ret(
            call.action(),
            call.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        for (j, name) in call.names().iter().enumerate() {
            if name.is_empty() {
                return Err(cfg(format!("{field}.names[{j}]"), "empty syscall name"));
            }
            if call.action() == Action::ScmpActNotify && NOTIFY_FORBIDDEN.contains(&name.as_str()) {
                return Err(cfg(
                    format!("{field}.names[{j}]"),
                    format!("SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it to hand the listener fd on"),
                ));
            }
        }
        let conds = call
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(k, a)| arg_cond(a, &format!("{field}.args[{k}]")))
            .collect::<Result<Vec<_>, _>>()?;
        // As runc: a rule with the default's action changes nothing.
        if ret == default_ret {
            dropped_names.extend(call.names().iter().cloned());
            continue;
        }
        notify |= call.action() == Action::ScmpActNotify;
        let when = if conds.is_empty() {
            Match::Always
        } else {
            group(conds)
        };
        entries.push(Entry {
            names: call.names().clone(),
            ret,
            when,
        });
    }

    if notify && seccomp.listener_path().is_none() {
        return Err(cfg(
            "linux.seccomp.listenerPath",
            "required when a syscall uses SCMP_ACT_NOTIFY",
        ));
    }

    Ok(Policy {
        default_ret,
        archs: arch::resolve(seccomp.architectures().as_ref()),
        entries,
        dropped_names,
        flags: flags(seccomp, notify)?,
        notify,
        enosys_stub: !matches!(
            default_action,
            Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seccomp(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile parses")
    }

    fn err(json: &str) -> String {
        translate(&seccomp(json)).unwrap_err().to_string()
    }

    #[test]
    fn actions_map_to_return_values() {
        let cases = [
            ("SCMP_ACT_KILL", None, libc::SECCOMP_RET_KILL_THREAD),
            ("SCMP_ACT_KILL_THREAD", None, libc::SECCOMP_RET_KILL_THREAD),
            (
                "SCMP_ACT_KILL_PROCESS",
                None,
                libc::SECCOMP_RET_KILL_PROCESS,
            ),
            ("SCMP_ACT_TRAP", None, libc::SECCOMP_RET_TRAP),
            ("SCMP_ACT_ERRNO", None, libc::SECCOMP_RET_ERRNO | 1),
            ("SCMP_ACT_ERRNO", Some(38), libc::SECCOMP_RET_ERRNO | 38),
            ("SCMP_ACT_TRACE", None, libc::SECCOMP_RET_TRACE | 1),
            ("SCMP_ACT_TRACE", Some(7), libc::SECCOMP_RET_TRACE | 7),
            ("SCMP_ACT_LOG", None, libc::SECCOMP_RET_LOG),
            ("SCMP_ACT_ALLOW", None, libc::SECCOMP_RET_ALLOW),
            ("SCMP_ACT_NOTIFY", None, libc::SECCOMP_RET_USER_NOTIF),
        ];
        for (action, errno, want) in cases {
            let a: Action = serde_json::from_value(serde_json::json!(action)).unwrap();
            assert_eq!(action_ret(a, errno, "f", "e").unwrap(), want, "{action}");
        }
    }

    #[test]
    fn default_errno_ret_and_entries() {
        let p = translate(&seccomp(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                            {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        ))
        .unwrap();
        assert_eq!(p.default_ret, libc::SECCOMP_RET_ERRNO | 38);
        // mkdir repeats the default and is dropped; rmdir differs by errno.
        let names: Vec<_> = p.entries.iter().map(|e| e.names[0].as_str()).collect();
        assert_eq!(names, ["getpid", "rmdir"]);
        assert!(p.enosys_stub);
        assert!(!p.notify);
        assert_eq!(p.flags, 0);
    }

    #[test]
    fn args_group_like_runc() {
        let p = translate(&seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["a"],"action":"SCMP_ACT_ERRNO","args":[
                    {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_GT"}]},
                {"names":["b"],"action":"SCMP_ACT_ERRNO","args":[
                    {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
                {"names":["c"],"action":"SCMP_ACT_ERRNO","args":[
                    {"index":0,"value":255,"valueTwo":256,"op":"SCMP_CMP_MASKED_EQ"}]},
                {"names":["d"],"action":"SCMP_ACT_ERRNO","args":[]}]}"#,
        ))
        .unwrap();
        let rules = |i: usize| match &p.entries[i].when {
            Match::Any(r) => r.iter().map(Vec::len).collect::<Vec<_>>(),
            Match::Always => vec![usize::MAX],
        };
        assert_eq!(rules(0), [2]);
        assert_eq!(rules(1), [1, 1]);
        assert_eq!(rules(2), Vec::<usize>::new());
        assert_eq!(p.entries[3].when, Match::Always);
        assert!(!p.enosys_stub);
    }

    #[test]
    fn errors_name_the_field() {
        let base = r#""defaultAction":"SCMP_ACT_ALLOW""#;
        let cases = [
            (
                format!(r#"{{{base},"syscalls":[{{"names":["a"],"action":"SCMP_ACT_ERRNO"}},{{"names":["b"],"action":"SCMP_ACT_ERRNO","args":[{{"index":6,"value":1,"op":"SCMP_CMP_EQ"}}]}}]}}"#),
                "linux.seccomp.syscalls[1].args[0].index: 6 is out of range",
            ),
            (
                format!(r#"{{{base},"syscalls":[{{"names":["a"],"action":"SCMP_ACT_KILL","errnoRet":3}}]}}"#),
                "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
            ),
            (
                format!(r#"{{{base},"syscalls":[{{"names":["a"],"action":"SCMP_ACT_ERRNO","errnoRet":65536}}]}}"#),
                "linux.seccomp.syscalls[0].errnoRet: 65536 is larger than 65535",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#.to_string(),
                "linux.seccomp.defaultErrnoRet: only",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#.to_string(),
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default",
            ),
            (
                format!(r#"{{{base},"syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}}]}}"#),
                "linux.seccomp.listenerPath: required",
            ),
            (
                format!(r#"{{{base},"listenerPath":"/x","syscalls":[{{"names":["getpid","write"],"action":"SCMP_ACT_NOTIFY"}}]}}"#),
                "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for write",
            ),
            (
                format!(r#"{{{base},"syscalls":[{{"names":[""],"action":"SCMP_ACT_ERRNO"}}]}}"#),
                "linux.seccomp.syscalls[0].names[0]: empty syscall name",
            ),
        ];
        for (json, want) in cases {
            let got = err(&json);
            assert!(got.starts_with(want), "{json}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn flags_translate_and_notify_adds_listener() {
        let p = translate(&seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x",
                "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                         "SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(p.notify);
        let want = libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        assert_eq!(p.flags, want);

        // Without a listener the kernel refuses WAIT_KILLABLE_RECV; drop it.
        let p = translate(&seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        ))
        .unwrap();
        assert_eq!(p.flags, 0);
    }
}
