//! Every listener bounds what a client can hold: connections that send nothing (or half an
//! HTTP/2 preface, or stop mid-body) are closed, a flood of one listener leaves the others
//! answering, and only HTTP/1 is spoken.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// The public edge with a short header-read timeout and a small cap; the idle timeout as given.
async fn bounded_app(header_read: Duration, idle: Duration, public_cap: usize) -> TestApp {
    spawn_app_with(Options {
        configure: Some(Box::new(move |config| {
            config.public_listen = Some("127.0.0.1:0".parse().unwrap());
            config.http.header_read_timeout = header_read;
            config.http.idle_timeout = idle;
            config.http.public_max_connections = public_cap;
        })),
        ..Options::default()
    })
    .await
}

/// What the server sent before closing, or `None` if it kept the connection open for `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut sent = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sent)).await {
        Ok(_) => Some(sent),
        Err(_) => None,
    }
}

/// `GET path` on a connection of its own (no pool, so no connection the server closed is reused).
async fn get(addr: SocketAddr, path: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
}

#[tokio::test]
async fn idle_connections_to_the_public_edge_are_closed_and_never_starve_the_internal_listener() {
    let header_read = Duration::from_millis(300);
    let app = bounded_app(header_read, Duration::from_secs(60), 4).await;
    let public = app.public_addr.expect("a public listener");
    // Ten times the cap, sending nothing: the kernel queues those past the cap.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(public).await.unwrap());
    }
    for _ in 0..5 {
        let answer = get(app.addr, "/healthz")
            .await
            .expect("the internal listener answers while the public one is flooded");
        assert_eq!(answer.status(), 200);
    }
    // Each is closed once its head has not come within the timeout: four at a time, the cap.
    for (n, stream) in idle.iter_mut().enumerate() {
        let sent = closed_within(stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("idle connection {n} is still open"));
        assert!(
            !String::from_utf8_lossy(&sent).contains("200 OK"),
            "nothing was asked: {sent:?}"
        );
    }
    // The public edge serves again once the idle ones are gone.
    let ready = get(public, "/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_once_idle_for_the_header_read_timeout() {
    let app = bounded_app(Duration::from_millis(300), Duration::from_secs(60), 4).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The whole answer (it may come in pieces): its head, then the body `ok\n`.
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok\n") {
        let mut piece = [0u8; 256];
        let n = stream.read(&mut piece).await.unwrap();
        assert!(n > 0, "closed before the answer: {answer:?}");
        answer.extend_from_slice(&piece[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let started = std::time::Instant::now();
    let rest = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// The client preface of RFC 9113 §3.4, then an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn an_http2_preface_whole_or_half_is_refused() {
    let header_read = Duration::from_secs(2);
    let app = bounded_app(header_read, Duration::from_secs(60), 4).await;
    let public = app.public_addr.expect("a public listener");
    // The whole preface, or its request line alone, is a malformed HTTP/1 request: refused at
    // once (well within the header-read timeout). Less than a request line is a slow head like
    // any other: closed after the timeout.
    let cases = [
        (H2_PREFACE, Duration::from_secs(1)),
        (&H2_PREFACE[..16], Duration::from_secs(1)),
        (&H2_PREFACE[..8], header_read + Duration::from_secs(2)),
    ];
    for addr in [public, app.addr] {
        for (sent, limit) in cases {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(sent).await.unwrap();
            let answer = closed_within(&mut stream, limit).await.unwrap_or_else(|| {
                panic!(
                    "{addr}: still open {limit:?} after {:?}",
                    String::from_utf8_lossy(sent)
                )
            });
            // An HTTP/2 server would answer with its own SETTINGS frame.
            assert!(
                answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
                "{addr}: spoke something other than HTTP/1.1: {answer:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_that_stops_coming_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let app = bounded_app(Duration::from_secs(30), idle, 4).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Authorization: Bearer test-bearer-credential-123\r\nContent-Length: 1000\r\n\r\n{\"ver",
        )
        .await
        .unwrap();
    // Well before the request's own 8 s deadline would answer 503.
    let answer = closed_within(&mut stream, Duration::from_secs(4))
        .await
        .expect("a stalled connection is closed");
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    let (status, _) = app.get_text("/healthz").await;
    assert_eq!(status, 200);
}

/// The black-box finding, reproduced on the binary: with few file descriptors (`ulimit -n`),
/// a flood of idle connections to the public edge took every one, the internal listener could
/// accept nothing, and the failure was warned about every 50 ms. Now the public edge holds at
/// most its cap, the internal listener answers, and nothing fails to be accepted.
#[tokio::test]
async fn a_flood_of_the_public_edge_leaves_file_descriptors_for_the_internal_listener() {
    use crate::real_alertmanager::free_port;
    use std::process::{Command, Stdio};
    token_rotator::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[http]\npublic_max_connections = 32\n",
            token_rotator::config::DEFAULT_CONFIG
        ),
    )
    .unwrap();
    let (internal, public) = (free_port(), free_port());
    // The service's own files and sockets take a few dozen descriptors: 128 leaves room for the
    // public edge's cap, not for the flood.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_token-rotator"))
        .args(["serve", "--insecure-no-auth", "--config"])
        .arg(&config)
        .env("TOKEN_ROTATOR_LISTEN", format!("127.0.0.1:{internal}"))
        .env("TOKEN_ROTATOR_PUBLIC_LISTEN", format!("127.0.0.1:{public}"))
        .env(
            "TOKEN_ROTATOR_DATABASE_URL",
            crate::helpers::database_url(dir.path()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let internal: SocketAddr = format!("127.0.0.1:{internal}").parse().unwrap();
    let public: SocketAddr = format!("127.0.0.1:{public}").parse().unwrap();
    let mut up = false;
    for _ in 0..500 {
        if get(internal, "/healthz").await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "the service did not start");
    let mut flood = Vec::new();
    for _ in 0..150 {
        flood.push(TcpStream::connect(public).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let answer = get(internal, "/healthz")
            .await
            .expect("the internal listener answers during the flood");
        assert_eq!(answer.status(), 200);
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains("accept failed"), "{log}");
    drop(flood);
}
