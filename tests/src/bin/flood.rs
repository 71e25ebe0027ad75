//! `lanyard-flood SOCKET CONNECTIONS REQUESTS SECONDS`: one caller flooding the agent. Opens
//! CONNECTIONS connections at once (one thread each) and sends `UserByName("bob")` on each, one
//! after another, until REQUESTS requests were sent in all or SECONDS have passed; a connection
//! the agent drops or refuses is opened again. Prints `answered=N dropped=N` and exits 0.
//!
//! The abuse tests run it as a non-root uid (`setpriv`) inside a namespace: the agent serves at
//! most 16 connections of one non-root uid at once and closes the rest on accept.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lanyard_proto::{Client, Deadlines, Request, Response};

/// At most this many connections (threads), whatever the command line asks.
const MAX_CONNECTIONS: usize = 256;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, connections, requests, seconds] = args.as_slice() else {
        eprintln!("usage: lanyard-flood SOCKET CONNECTIONS REQUESTS SECONDS");
        return ExitCode::from(2);
    };
    let (Ok(connections), Ok(requests), Ok(seconds)) =
        (connections.parse::<usize>(), requests.parse::<usize>(), seconds.parse::<u64>())
    else {
        eprintln!("lanyard-flood: CONNECTIONS, REQUESTS and SECONDS are numbers");
        return ExitCode::from(2);
    };
    let socket = PathBuf::from(socket);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..connections.min(MAX_CONNECTIONS))
        .map(|_| {
            let (socket, sent, answered, dropped) = (socket.clone(), sent.clone(), answered.clone(), dropped.clone());
            std::thread::spawn(move || {
                let deadlines = Deadlines { connect: Duration::from_secs(1), reply: Duration::from_secs(7) };
                let mut client = None;
                // Bounded by REQUESTS (shared) and by the deadline.
                while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < requests {
                    let conn = match client.take() {
                        Some(conn) => conn,
                        None => match Client::connect(&socket, deadlines) {
                            Ok(conn) => conn,
                            Err(_) => {
                                dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                    };
                    let mut conn = conn;
                    match conn.send(&Request::UserByName("bob".into())).and_then(|()| conn.receive()) {
                        Ok(Response::User(_)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            client = Some(conn);
                        }
                        Ok(_) | Err(_) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    println!("answered={} dropped={}", answered.load(Ordering::Relaxed), dropped.load(Ordering::Relaxed));
    ExitCode::SUCCESS
}
