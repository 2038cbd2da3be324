//! A deliberately small HTTP/1.1 server for the fake PyPI: one thread per
//! connection, keep-alive, `Content-Length` bodies, optional TLS (rustls).
//! Only what the PyPI client, pip and curl need.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Longest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// How often a blocked read looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (after announcing all of it),
    /// then close: a truncated response.
    pub truncate_at: Option<usize>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            truncate_at: None,
            close: false,
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads one request; `Ok(None)` when the peer closed (or we stop) between
/// requests.
fn read_request(conn: &mut Conn, stop: &AtomicBool) -> io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "chunked bodies are not supported",
        ));
    }
    let length: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too long"));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    body.truncate(length);
    req.body = body;
    Ok(Some(req))
}

fn write_response(conn: &mut Conn, resp: &Response, keep_alive: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: fake-pypi\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    let body = match resp.truncate_at {
        Some(n) => &resp.body[..n.min(resp.body.len())],
        None => &resp.body[..],
    };
    conn.write_all(body)?;
    conn.flush()
}

/// Serves one connection until it closes or the server stops.
fn serve(mut conn: Conn, stop: &AtomicBool, handler: &(dyn Fn(&Request) -> Response + Sync)) {
    let _ = conn.tcp().set_read_timeout(Some(TICK));
    let _ = conn.tcp().set_nodelay(true);
    loop {
        let req = match read_request(&mut conn, stop) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                let resp = Response::text(400, format!("bad request: {e}"));
                let _ = write_response(&mut conn, &resp, false);
                break;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let resp = handler(&req);
        let keep_alive = !resp.close
            && resp.truncate_at.is_none()
            && !req
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if write_response(&mut conn, &resp, keep_alive).is_err() || !keep_alive {
            break;
        }
    }
    if let Conn::Tls(s) = &mut conn {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    let _ = conn.tcp().shutdown(Shutdown::Both);
}

/// The accept loop and its connection threads.
pub struct Server {
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    accept: Option<JoinHandle<()>>,
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

impl Server {
    /// Serves `handler` on `listener` (TLS when `tls` is given) until
    /// dropped; `stop` is also raised by the caller to end stalls early.
    pub fn start(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Handler,
        stop: Arc<AtomicBool>,
        connections: Arc<std::sync::atomic::AtomicU64>,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("fake-pypi".into())
            .spawn(move || {
                let mut workers: Vec<JoinHandle<()>> = Vec::new();
                for stream in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::Relaxed);
                    workers.retain(|w| !w.is_finished());
                    let handler = handler.clone();
                    let stop = stop2.clone();
                    let tls = tls.clone();
                    let spawned = std::thread::Builder::new()
                        .name("fake-pypi-conn".into())
                        .spawn(move || {
                            let conn = match tls {
                                None => Conn::Plain(stream),
                                Some(config) => match rustls::ServerConnection::new(config) {
                                    Ok(c) => {
                                        Conn::Tls(Box::new(rustls::StreamOwned::new(c, stream)))
                                    }
                                    Err(_) => return,
                                },
                            };
                            serve(conn, &stop, &*handler);
                        });
                    if let Ok(w) = spawned {
                        workers.push(w);
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })?;
        Ok(Server {
            stop,
            addr,
            accept: Some(accept),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}
