//! A PostgreSQL database for one test: a fresh database on the server `.ci/run` started
//! (`TOKEN_ROTATOR_TEST_POSTGRES`), or else a throwaway cluster of this test's own, started with
//! the same script (`.ci/postgres`, Debian's `postgresql`) and stopped when the test ends.

use std::path::PathBuf;
use std::process::Command;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;

pub const SERVER_VAR: &str = "TOKEN_ROTATOR_TEST_POSTGRES";

pub struct TestDatabase {
    pub url: String,
    cluster: Option<TempDir>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres")
}

/// A new, empty database.
pub async fn database() -> TestDatabase {
    let (server, cluster) = match std::env::var(SERVER_VAR) {
        Ok(url) => (url, None),
        Err(_) => {
            let own = own_cluster();
            (own.url.clone(), Some(own))
        }
    };
    let mut db = database_on(&server).await;
    db.cluster = cluster.and_then(|mut own| own.cluster.take());
    db
}

/// A throwaway cluster of this test's own even when [`SERVER_VAR`] names a shared server, for a
/// test that changes the server itself (a tablespace on a disk it fills); `url` names its
/// `postgres` database. Stopped when dropped.
pub fn own_cluster() -> TestDatabase {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .arg(dir.path())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "cannot start PostgreSQL for this test (set {SERVER_VAR}, or install Debian's postgresql): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    TestDatabase {
        url,
        cluster: Some(dir),
    }
}

/// A new, empty database on the server at `server` (its URL names any database).
pub async fn database_on(server: &str) -> TestDatabase {
    let name = format!("tr_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("{server} has no database part"),
    };
    TestDatabase { url, cluster: None }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.cluster {
            let _ = Command::new("bash")
                .arg(script())
                .arg(dir.path())
                .arg("stop")
                .status();
        }
    }
}
