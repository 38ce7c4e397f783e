//! The listeners' own settings: the web layer owns them; `config` parses `[http]` into them.

use std::time::Duration;

/// Each listener's bounds (`[http]`); every listener has its own connection cap, so one that is
/// flooded cannot take the others' connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// A request head must arrive within this, counted from the connection's start or from the
    /// previous answer: it is also how long an idle kept-alive connection stays open.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a client that
    /// stops reading an answer, or stops sending a body).
    pub idle_timeout: Duration,
    /// Connections `listen` holds at once; more wait in the kernel's queue, unaccepted.
    pub max_connections: usize,
    /// The same for `public_listen`.
    pub public_max_connections: usize,
    /// The same for `metrics_listen`.
    pub metrics_max_connections: usize,
}

impl HttpSettings {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Alertmanager's replicas, Prometheus, probes and people reading the status page need a
    /// few dozen; the three caps together stay far below the usual 1024 open files.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
    /// Slack and people following handover links: a handful at once.
    pub const DEFAULT_PUBLIC_MAX_CONNECTIONS: usize = 64;
    /// One Prometheus or two.
    pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 16;
    /// More than any process's file descriptors usually allow.
    pub const MAX_CONNECTIONS: usize = 65_536;
    /// A request may take this long with nothing moving on its connection (the webhook answers
    /// within 8 s, even 503), so a shorter idle timeout would cut answers off.
    pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            public_max_connections: Self::DEFAULT_PUBLIC_MAX_CONNECTIONS,
            metrics_max_connections: Self::DEFAULT_METRICS_MAX_CONNECTIONS,
        }
    }
}
