//! The HTTP endpoint: `GET /metrics` (and `HEAD`), 404 for any other
//! path; bounded in connections and time so that a scraper can never
//! hold up the signer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{CONTENT_TYPE_TEXT, Metrics};

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection may last in all, request and response; a client
/// that reads the response slower than this is cut off.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; one more is closed as soon as it is
/// accepted, so that a misbehaving client cannot take the file descriptors
/// the signer needs for its zones and database.
const MAX_CONNECTIONS: usize = 64;

/// After a failed `accept` (out of file descriptors, …), wait this long
/// before the next, rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The HTTP endpoint: `GET /metrics` (and `HEAD`), 404 for any other path.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` now, so that a bad or taken address stops `signet
    /// serve` at start rather than later. Nothing is served before
    /// [`MetricsServer::run`].
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(MetricsServer { listener, local_addr })
    }

    /// The address bound (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `metrics` until `shutdown` becomes true (or its sender is
    /// dropped); then closes the socket and drops the connections still
    /// open. Each connection is its own task, one request each (no
    /// keep-alive), with [`HEADER_TIMEOUT`] to send the request and
    /// [`CONNECTION_TIMEOUT`] in all, and at most [`MAX_CONNECTIONS`] at
    /// once: slow or many clients cost a task each and never hold up the
    /// service.
    pub async fn run(self, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
        let mut connections = JoinSet::new();
        if *shutdown.borrow_and_update() {
            return;
        }
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow_and_update() {
                        break;
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if connections.len() >= MAX_CONNECTIONS {
                            tracing::debug!(%peer, "metrics: too many connections, closing one");
                            drop(stream);
                        } else {
                            connections.spawn(serve_connection(stream, Arc::clone(&metrics)));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "metrics: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }
}

/// One connection: one request, bounded in time.
async fn serve_connection(stream: TcpStream, metrics: Arc<Metrics>) {
    let service = service_fn(move |request| {
        let metrics = Arc::clone(&metrics);
        async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%err, "metrics: connection ended with an error"),
        Err(_) => tracing::debug!("metrics: connection timed out"),
    }
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    response
}

/// A short text answer with `status`.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::metrics::tests::sample;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request over a new connection; the whole response.
    async fn http(addr: SocketAddr, request: &str) -> String {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("send request");
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.expect("read response");
            String::from_utf8(response).expect("utf-8 response")
        };
        tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("response within 10 s")
    }

    fn header<'r>(response: &'r str, name: &str) -> Option<&'r str> {
        let head = response.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test]
    async fn serves_metrics_over_http_until_shutdown() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let metrics = Arc::new(sample());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(server.run(Arc::clone(&metrics), stopped));

        // A client that connects and sends nothing holds up no one.
        let mut idle = TcpStream::connect(addr).await.expect("connect idle");

        let response = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let content_type = header(&response, "content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        assert!(response.contains("\r\n\r\n# HELP signet_up "), "{response}");
        assert!(response.contains("\nsignet_zone_runs_total{zone=\"a.test.\",result=\"published\"} 1\n"));

        let response = http(addr, "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
        let response = http(addr, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        let response = http(addr, "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.ends_with("\r\n\r\n"), "a body for HEAD: {response}");
        // Not HTTP at all: an error answer or a closed connection, no panic.
        let response = http(addr, "\x16\x03\x01 hello\r\n\r\n").await;
        assert!(response.is_empty() || response.starts_with("HTTP/1.1 400 "), "{response}");

        // The service goes on updating while the endpoint runs.
        metrics.remove_zone("a.test.");
        let response = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(!response.contains("a.test."), "{response}");

        stop.send(true).expect("server listening");
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("run() ends within 5 s of shutdown")
            .expect("run() did not panic");
        // The listener is closed, and so is the idle connection.
        assert!(TcpStream::connect(addr).await.is_err());
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }

    #[tokio::test]
    async fn a_dropped_sender_also_stops_the_server() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(server.run(Arc::new(Metrics::new(0)), stopped));
        drop(stop);
        tokio::time::timeout(Duration::from_secs(5), running).await.expect("run() ends").expect("no panic");
    }

    #[tokio::test]
    async fn a_taken_address_fails_at_bind() {
        let first = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        assert!(MetricsServer::bind(first.local_addr()).await.is_err());
    }
}
