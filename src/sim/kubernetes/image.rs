//! Signon's image, as far as booting goes: before any script or rake task runs, Rails must
//! boot in production, and it cannot without what GOV.UK's chart gives Signon's pod
//! (`charts/app-config/values-production.yaml`, signon's `extraEnv`; `cron-task.yaml`):
//! `DATABASE_URL` (config/database.yml), `SECRET_KEY_BASE`, the Active Record encryption keys
//! (config/application.rb reads `ACTIVE_RECORD_ENCRYPTION_*`), and a writable `/tmp` on its
//! read-only root filesystem (bootsnap's cache, `tmp/`). `rails runner <file>` needs the file.
//! What the container then does is the runner's (see `super::super::rails`).

use std::sync::Arc;

use super::jobs::{JobRun, JobRunner};

/// What Rails printed, as a failed boot's log.
fn refused(line: &str) -> Result<String, String> {
    Err(format!(
        "I, [2026-11-26T01:00:00.000000 #1]  INFO -- : Booting Signon (production)\n{line}\n"
    ))
}

/// Whether Signon's image boots with `run`'s environment and mounts; the log when it does not.
pub fn boot(run: &JobRun) -> Result<(), String> {
    let missing = |name: &str| run.env.get(name).is_none_or(|v| v.is_empty());
    if missing("DATABASE_URL") {
        return refused(
            "ActiveRecord::ConnectionNotEstablished: No database configured for production (DATABASE_URL is not set)",
        )
        .map(drop);
    }
    if missing("SECRET_KEY_BASE") {
        return refused("ArgumentError: Missing `secret_key_base` for 'production' environment")
            .map(drop);
    }
    for key in [
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
        "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
    ] {
        if missing(key) {
            return refused(&format!(
                "ActiveRecord::Encryption::Errors::Configuration: Missing Active Record encryption credential: {key}"
            ))
            .map(drop);
        }
    }
    if run.read_only_root && !run.mounts.iter().any(|m| m == "/tmp") {
        return refused("Errno::EROFS: Read-only file system @ rb_sysopen - /tmp/bootsnap")
            .map(drop);
    }
    if let Some(script) = run.command.iter().find(|c| c.ends_with(".rb")) {
        let dir = script.rsplit_once('/').map_or("", |(d, _)| d);
        if !run.mounts.iter().any(|m| m == dir) {
            return refused(&format!("LoadError: cannot load such file -- {script}")).map(drop);
        }
    }
    Ok(())
}

/// `runner` inside Signon's image: boots first.
pub fn signon(runner: JobRunner) -> JobRunner {
    Arc::new(move |run: &JobRun| {
        boot(run)?;
        runner(run)
    })
}
