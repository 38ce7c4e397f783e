//! Exit codes. Each number has one meaning across every command, so a script can tell "the plan
//! would fail" from "you typed it wrong" without reading the output. 0, 1 and 2 are the usual
//! ones (2 is what clap exits with on a usage error); the rest are given out once, here.

use std::process::ExitCode;

/// Done.
pub const OK: u8 = 0;
/// Failed: an error (printed on stderr), or the command had nothing to act on.
pub const FAILED: u8 = 1;
/// The command line itself was wrong; clap prints what and exits with this.
pub const USAGE: u8 = 2;
/// `plan`: at least one step of one plan would fail.
pub const PLAN_WOULD_FAIL: u8 = 3;
/// `rekey`: some sealed value is opened by neither key, so the previous key cannot be retired.
pub const REKEY_UNOPENABLE: u8 = 4;

pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The top-level `--help`'s summary of every code.
pub const SUMMARY: &str = "\
Exit status:
  0  done
  1  failed (the error is on stderr)
  2  usage error (a wrong or missing argument)
  3  plan: a step would fail
  4  rekey: a value is opened by no key";

/// The codes every command shares, for commands with no code of their own.
pub const COMMON: &str = "\
Exit status:
  0  done
  1  failed (the error is on stderr)
  2  usage error";

pub const CHECK_CONFIG: &str = "\
Exit status:
  0  the file is valid
  1  the file has problems (each on stderr) or cannot be read
  2  usage error";

pub const DECIDE: &str = "\
Exit status:
  0  decided
  1  nothing changed: no such rotation, not waiting for approval, or this name may not decide
  2  usage error";

pub const PLAN: &str = "\
Exit status:
  0  every plan is feasible
  1  failed (the error is on stderr)
  2  usage error
  3  at least one step would fail (marked WOULD FAIL)";

pub const REKEY: &str = "\
Exit status:
  0  every sealed value is sealed with the current key
  1  failed (the error is on stderr)
  2  usage error
  4  some value is opened by no key: keep the previous key until it is dealt with";

pub const DEMO: &str = "\
Exit status:
  0  every scenario went as expected
  1  a scenario did not, or this build has no simulators (built without the `sim` feature)
  2  usage error";
