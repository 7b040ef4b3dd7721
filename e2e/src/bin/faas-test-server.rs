//! A tiny HTTP server the virtual node end-to-end tests run as a pod.
//!
//! It binds `--bind`, else `$POD_IP:$PORT` (`127.0.0.1:8080` when unset), and prints every step to
//! stdout. Routes:
//!
//! - `GET /` answers with the pod name (`--name`, else `$POD_NAME`);
//! - `GET /ready` answers 200 while ready and 503 while not; `POST /ready/on` and
//!   `POST /ready/off` toggle it (`--not-ready` starts not ready);
//! - `GET /env/NAME` answers with the value of environment variable `NAME` (404 when unset).
//!
//! `--exit-code N` prints a line and exits with `N` at once, without serving (for crash tests).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

struct Options {
    bind: String,
    name: String,
    ready: bool,
    exit_code: Option<i32>,
}

fn options() -> Result<Options, String> {
    let ip = std::env::var("POD_IP").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let mut opts = Options {
        bind: format!("{ip}:{port}"),
        name: std::env::var("POD_NAME").unwrap_or_else(|_| "unknown".to_owned()),
        ready: true,
        exit_code: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--bind" => opts.bind = value("--bind")?,
            "--name" => opts.name = value("--name")?,
            "--not-ready" => opts.ready = false,
            "--exit-code" => {
                let v = value("--exit-code")?;
                opts.exit_code = Some(
                    v.parse()
                        .map_err(|_| format!("--exit-code {v:?}: not a number"))?,
                );
            }
            // Free-form markers (tests use them to find the process); ignored.
            other if other.starts_with("--tag=") => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn handle(mut stream: TcpStream, name: &str, ready: &AtomicBool) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET", "/") => ("200 OK", format!("{name}\n")),
        ("GET", "/ready") if ready.load(Ordering::SeqCst) => ("200 OK", "ready\n".to_owned()),
        ("GET", "/ready") => ("503 Service Unavailable", "not ready\n".to_owned()),
        ("POST", "/ready/on") => {
            ready.store(true, Ordering::SeqCst);
            ("200 OK", "ready\n".to_owned())
        }
        ("POST", "/ready/off") => {
            ready.store(false, Ordering::SeqCst);
            ("200 OK", "not ready\n".to_owned())
        }
        ("GET", p) if p.starts_with("/env/") => match std::env::var(&p[5..]) {
            Ok(v) => ("200 OK", v),
            Err(_) => ("404 Not Found", format!("{} is not set\n", &p[5..])),
        },
        _ => ("404 Not Found", "no such route\n".to_owned()),
    };
    println!(
        "{method} {path} -> {}",
        status.split(' ').next().unwrap_or("")
    );
    respond(&mut stream, status, &body);
}

fn main() {
    let opts = match options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("faas-test-server: {e}");
            std::process::exit(2);
        }
    };
    if let Some(code) = opts.exit_code {
        println!("{} exiting with code {code}", opts.name);
        std::process::exit(code);
    }
    let listener = match TcpListener::bind(&opts.bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("faas-test-server: cannot bind {}: {e}", opts.bind);
            std::process::exit(1);
        }
    };
    println!("{} listening on {}", opts.name, opts.bind);
    let ready = Arc::new(AtomicBool::new(opts.ready));
    let name: Arc<str> = opts.name.into();
    for stream in listener.incoming().flatten() {
        let ready = ready.clone();
        let name = name.clone();
        std::thread::spawn(move || handle(stream, &name, &ready));
    }
}
