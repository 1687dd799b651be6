//! The small threaded TCP server under the Connection Request server
//! (3.2.2) and the LAN web server (Appendix D): one accept thread, one
//! short-lived worker thread per connection, a cap on concurrent
//! connections (a connection over the cap gets a fixed "busy" reply and is
//! closed by the accept thread itself), and a prompt, clean shutdown.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How one server runs its connections.
pub struct Limits {
    /// Thread names: `<name>-accept`, `<name>-conn`; also in log lines.
    pub name: &'static str,
    /// Connections served at once; the next one gets `busy`.
    pub max_connections: usize,
    /// Stack of a worker thread.
    pub stack_size: usize,
    /// Write timeout set on every accepted connection.
    pub write_timeout: Duration,
    /// The whole reply sent to a connection over the cap.
    pub busy: Vec<u8>,
}

struct Shared {
    stop: AtomicBool,
    active: AtomicUsize,
}

/// A running server; stops (and joins its accept thread) on drop.
pub struct TcpServer {
    listener: Arc<TcpListener>,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Accept on `listener`, each connection served by `serve` on a worker.
    pub fn start(listener: TcpListener, limits: Limits, serve: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static) -> std::io::Result<TcpServer> {
        let listener = Arc::new(listener);
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared { stop: AtomicBool::new(false), active: AtomicUsize::new(0) });
        let thread = {
            let (listener, shared) = (Arc::clone(&listener), Arc::clone(&shared));
            std::thread::Builder::new().name(format!("{}-accept", limits.name)).spawn(move || accept_loop(&listener, &shared, &limits, Arc::new(serve)))?
        };
        Ok(TcpServer { listener, local_addr, shared, thread: Some(thread) })
    }

    /// The bound address (the actual port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting and wait for the accept thread. Connections in
    /// progress end by themselves within their I/O timeouts.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // Wakes the blocked accept() on Linux; the Arc keeps the fd open.
            // SAFETY: the fd belongs to `self.listener`, alive for this call.
            unsafe {
                libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
        // Portable fallback wake-up: connect to ourselves.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

/// Decrements the active-connection count when a worker ends.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, limits: &Limits, serve: Arc<dyn Fn(TcpStream, SocketAddr) + Send + Sync>) {
    let name = limits.name;
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let (mut stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %foundation::error_kind::chain(&e), "{name}: accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let _ = stream.set_write_timeout(Some(limits.write_timeout));
        if shared.active.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%peer, "{name}: too many connections");
            // The accept thread must not block here: short write timeout,
            // and only drain what has already arrived (unread input at
            // close makes the kernel reset the connection).
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = stream.write_all(&limits.busy);
            let _ = stream.shutdown(Shutdown::Write);
            if stream.set_nonblocking(true).is_ok() {
                let mut sink = [0u8; 1024];
                for _ in 0..8 {
                    if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            continue;
        }
        let guard = ActiveGuard(Arc::clone(shared));
        let serve = Arc::clone(&serve);
        let spawned = std::thread::Builder::new().name(format!("{name}-conn")).stack_size(limits.stack_size).spawn(move || {
            let _guard = guard;
            serve(stream, peer);
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %foundation::error_kind::chain(&e), "{name}: cannot spawn worker");
        }
    }
}

/// Send a final reply and close without losing it: closing a socket with
/// unread input makes the kernel send RST, which can destroy the reply
/// before the client reads it. So half-close, then discard input briefly.
pub fn send_and_close(mut stream: TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    linger(stream);
}

/// Half-close, then discard up to 64 KiB of input for at most 0.5 s per read.
pub fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 1024];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}
