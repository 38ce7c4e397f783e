//! Cutting a replica off: a TCP proxy to PostgreSQL that can be frozen, and the replica's log
//! read line by line with when each line came.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::process::{Serve, Spawned};

/// `serve` with its log lines read as they come, each with when it was read.
pub fn spawn_logged(serve: &Serve) -> (Spawned, Log) {
    let mut child = serve.spawn_with(|command| {
        command.env("RUST_LOG", "info").stderr(Stdio::piped());
    });
    let stderr = child.stderr.take().unwrap();
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines
                .send((Instant::now(), without_colours(&line)))
                .is_err()
            {
                return;
            }
        }
    });
    (child, Log(receiver))
}

/// The line as text: the terminal colour codes between a message and its fields removed.
fn without_colours(line: &str) -> String {
    let mut text = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            text.push(c);
        }
    }
    text
}

pub struct Log(std::sync::mpsc::Receiver<(Instant, String)>);

impl Log {
    /// When the first line containing `text` was read, if one was within `within`.
    pub fn seen(&self, text: &str, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// When the first line containing `text` was read.
    pub fn wait_for(&self, text: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return at,
                Ok((_, line)) => seen.push(line),
                Err(e) => panic!(
                    "no log line with {text:?} within {within:?} ({e}); read:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

/// A TCP proxy to PostgreSQL that can be frozen: bytes stop flowing both ways and new
/// connections hang, while every socket stays open — a partition, not a refusal. Or severed:
/// the connections open now are frozen for good while new ones pass — a server gone without a
/// word (its host lost) and its address taken over. Or slowed: everything a client sends (each
/// statement) waits a random time in a range before it is passed on, in order.
pub struct Proxy {
    pub port: u16,
    frozen: watch::Sender<bool>,
    /// Each connection's own freeze, for `sever`.
    open: Arc<std::sync::Mutex<Vec<watch::Sender<bool>>>>,
    slow: Arc<Slow>,
}

/// The delay range in milliseconds; `0..0` passes at once.
#[derive(Default)]
struct Slow {
    from_ms: AtomicU64,
    to_ms: AtomicU64,
}

impl Slow {
    fn delay(&self) -> Option<Duration> {
        let (from, to) = (
            self.from_ms.load(Ordering::Relaxed),
            self.to_ms.load(Ordering::Relaxed),
        );
        (to > 0).then(|| Duration::from_millis(fastrand::u64(from..=to)))
    }
}

impl Proxy {
    /// A proxy in front of the PostgreSQL server `database_url` names.
    pub async fn in_front_of(database_url: &str) -> Self {
        let server = url::Url::parse(database_url).unwrap();
        let upstream = format!("{}:{}", server.host_str().unwrap(), server.port().unwrap());
        Self::start(&upstream).await
    }

    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, watching) = watch::channel(false);
        let slow = Arc::new(Slow::default());
        let upstream = upstream.to_owned();
        let slowing = Arc::clone(&slow);
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let opened = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let slow = Arc::clone(&slowing);
                // This connection's freeze: the proxy's, or its own once severed.
                let (own, frozen) = watch::channel(*watching.borrow());
                let mut all = watching.clone();
                let follower = own.clone();
                tokio::spawn(async move {
                    if all.wait_for(|f| *f).await.is_ok() {
                        follower.send_replace(true);
                    }
                });
                opened.lock().unwrap().push(own);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, frozen.clone(), Some(slow)),
                        pipe(server_read, client_write, frozen, None)
                    );
                });
            }
        });
        Self {
            port,
            frozen,
            open,
            slow,
        }
    }

    /// Freezes every connection open now, for good; later ones pass.
    pub fn sever(&self) {
        for connection in self.open.lock().unwrap().drain(..) {
            connection.send_replace(true);
        }
    }

    /// Every statement from now on waits `from..=to` before the server sees it.
    pub fn slow(&self, from: Duration, to: Duration) {
        self.slow
            .from_ms
            .store(from.as_millis() as u64, Ordering::Relaxed);
        self.slow
            .to_ms
            .store(to.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    slow: Option<Arc<Slow>>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if *frozen.borrow() {
            // Hold both sockets open and pass nothing on, for as long as the test runs.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Some(delay) = slow.as_deref().and_then(Slow::delay) {
                        tokio::time::sleep(delay).await;
                    }
                    if *frozen.borrow() {
                        std::future::pending::<()>().await;
                    }
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = frozen.changed() => {}
        }
    }
}
