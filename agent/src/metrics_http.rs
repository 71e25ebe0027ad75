//! The optional HTTP listener for scrapers (`[metrics] listen`, loopback only): `GET /metrics`
//! answers the Prometheus text, any other path 404.
//!
//! Deliberately small and bounded rather than a framework: one request per connection, a request
//! head of at most [`MAX_HEAD`] bytes read within [`READ_TIMEOUT`], at most [`MAX_CONNECTIONS`]
//! at once (more are closed at once), and the body is never read.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::metrics::CONTENT_TYPE;

pub const MAX_HEAD: usize = 8 * 1024;
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_CONNECTIONS: usize = 16;

/// Makes the metrics text, once per scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves scrapers on `listener` for as long as the future runs.
pub async fn serve(listener: TcpListener, render: Render) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!("metrics listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!("metrics listener: {MAX_CONNECTIONS} connections open; closing a new one");
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            if let Err(why) = answer(stream, &render).await {
                debug!("metrics listener: {why}");
            }
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, render: &Render) -> Result<(), String> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| format!("no complete request within {READ_TIMEOUT:?}"))??;
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, render()),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found; try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET\n".into()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    tokio::time::timeout(READ_TIMEOUT, stream.write_all(response.as_bytes()))
        .await
        .map_err(|_| "the client did not read the response".to_owned())?
        .map_err(|e| format!("writing the response: {e}"))?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// The request line and headers, up to the blank line; an error past [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection before a complete request".into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD {
                break;
            }
            head.truncate(end);
            return String::from_utf8(head).map_err(|_| "the request head is not UTF-8".into());
        }
        if head.len() > MAX_HEAD {
            break;
        }
    }
    Err(format!("request head over {MAX_HEAD} bytes; closing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(|| "lanyard_lookups_total 7\n".to_owned())));
        address
    }

    /// Sends `request` and returns everything the server wrote before closing.
    async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        // The server may close before reading it all (an oversized head): ignore write errors.
        let _ = stream.write_all(request).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn get_metrics_answers_the_text_with_the_prometheus_content_type() {
        let address = start().await;
        let response = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{response}");
        assert!(response.contains("Content-Length: 24\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nlanyard_lookups_total 7\n"), "{response}");
    }

    #[tokio::test]
    async fn another_path_is_not_found_and_another_method_not_allowed() {
        let address = start().await;
        let response = exchange(address, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 Not Found\r\n"), "{response}");
        assert!(!response.contains("lanyard_"), "{response}");
        let response = exchange(address, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    }

    #[tokio::test]
    async fn an_oversized_request_head_is_dropped_without_an_answer() {
        let address = start().await;
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(address, &request).await, "");
        // The listener still serves the next scraper.
        let response = exchange(address, b"GET /metrics HTTP/1.0\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_sends_nothing_is_closed_after_the_read_timeout() {
        let address = start().await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut response = Vec::new();
        let read = tokio::time::timeout(READ_TIMEOUT * 2, stream.read_to_end(&mut response)).await;
        assert!(matches!(read, Ok(Ok(0))), "closed without an answer: {read:?}");
    }
}
