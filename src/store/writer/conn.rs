//! The writer's own connection, and what it does when a PostgreSQL server goes away.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::store::{StoreError, WriteTx};

/// The writer's own connection.
pub(in crate::store) enum Conn {
    Sqlite(SqliteConnection),
    /// A server can restart or fail over: a broken connection is dropped, and the next batch
    /// connects again (that batch's requesters got 503, so Alertmanager re-sends).
    Postgres {
        conn: Option<PgConnection>,
        options: Box<PgConnectOptions>,
    },
}

impl Conn {
    pub(in crate::store) async fn sqlite(
        options: &SqliteConnectOptions,
    ) -> Result<Self, StoreError> {
        SqliteConnection::connect_with(options)
            .await
            .map(Conn::Sqlite)
            .map_err(StoreError::Open)
    }

    pub(in crate::store) async fn postgres(options: &PgConnectOptions) -> Result<Self, StoreError> {
        let conn = PgConnection::connect_with(options)
            .await
            .map_err(StoreError::Open)?;
        Ok(Conn::Postgres {
            conn: Some(conn),
            options: Box::new(options.clone()),
        })
    }

    /// SQLite: IMMEDIATE takes the write lock now, so a competing writer makes us wait
    /// (busy_timeout) here rather than fail half-way through. PostgreSQL: row locks and the
    /// unique constraint settle races between replicas; no lock is needed up front.
    pub(super) async fn begin(&mut self) -> Result<WriteTx<'_>, sqlx::Error> {
        Ok(match self {
            Conn::Sqlite(c) => WriteTx::Sqlite(c.begin_with("BEGIN IMMEDIATE").await?),
            Conn::Postgres { conn, options } => {
                if conn.is_none() {
                    *conn = Some(PgConnection::connect_with(options).await?);
                }
                let c = conn.as_mut().expect("connected above");
                WriteTx::Postgres(c.begin().await?)
            }
        })
    }

    /// After a failed batch: a connection that broke is not used again.
    pub(super) fn forget_if_broken(&mut self, error: &sqlx::Error) {
        let broken = matches!(
            error,
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
        ) || matches!(error, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P")));
        if let Conn::Postgres { conn, .. } = self
            && broken
        {
            tracing::warn!(%error, "journal writer connection lost; reconnecting for the next batch");
            *conn = None;
        }
    }

    pub(super) async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres { conn: Some(c), .. } => c.close().await,
            Conn::Postgres { conn: None, .. } => Ok(()),
        }
    }
}
