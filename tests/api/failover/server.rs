//! A PostgreSQL server of the test's own (Debian's `postgresql`, started as `.ci/postgres` does)
//! that the test stops, restarts and replaces on the same address — the faults a shared server
//! cannot be given.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// How the server goes away (`pg_ctl stop -m MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `-m fast`: open connections are ended, then a clean shutdown.
    Fast,
    /// `-m immediate`: every process killed, crash recovery on the next start.
    Immediate,
    /// Stopped (`fast`), the data directory copied, and the copy started on the same port: a
    /// standby promoted in its place, as a client sees it (same address, new server).
    Promoted,
}

impl Fault {
    pub const ALL: [Self; 3] = [Self::Fast, Self::Immediate, Self::Promoted];
}

pub struct Server {
    dir: TempDir,
    port: u16,
    /// The data directory in use (a new one after each promotion).
    data: PathBuf,
    copies: usize,
}

impl Server {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres"))
            .arg(dir.path())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "cannot start PostgreSQL (install Debian's postgresql): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap();
        let port = url::Url::parse(url.trim()).unwrap().port().unwrap();
        let data = dir.path().join("data");
        Self {
            dir,
            port,
            data,
            copies: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Takes the server away as `fault` says; [`back`](Self::back) brings it (or its copy) up.
    pub fn take_away(&mut self, fault: Fault) {
        let mode = if fault == Fault::Immediate {
            "immediate"
        } else {
            "fast"
        };
        self.pg_ctl(&["-D", path(&self.data), "-m", mode, "-w", "stop"]);
        if fault == Fault::Promoted {
            self.copies += 1;
            let copy = self.dir.path().join(format!("data-{}", self.copies));
            as_postgres("cp", &["-a", path(&self.data), path(&copy)]);
            self.data = copy;
        }
    }

    /// Starts the server on its address again, from the data directory in use.
    pub fn back(&self) {
        let log = self.dir.path().join(format!("server-{}.log", self.copies));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&[
            "-D",
            path(&self.data),
            "-l",
            path(&log),
            "-w",
            "-o",
            &options,
            "start",
        ]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        as_postgres(bin().join("pg_ctl").to_str().unwrap(), args);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pg_ctl = bin().join("pg_ctl");
        let _ = postgres_runs(
            pg_ctl.to_str().unwrap(),
            &["-D", path(&self.data), "-m", "immediate", "stop"],
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The newest installed PostgreSQL's programs, as `.ci/postgres` picks them.
fn bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect("a PostgreSQL version with pg_ctl")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The cluster belongs to the package's `postgres` user when the tests run as root (initdb
/// refuses root), so its programs run as that user too.
fn as_postgres(program: &str, args: &[&str]) {
    let out = postgres_runs(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn postgres_runs(program: &str, args: &[&str]) -> std::process::Output {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    };
    command.args(args).output().unwrap()
}
