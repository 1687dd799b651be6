//! Test support: what the code under test logs, as text.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run `f` on this thread with every event (TRACE and up) logged into a
/// buffer; returns `f`'s result and the log.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    let buf = Buffer::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).with_max_level(tracing::Level::TRACE).finish();
    let r = tracing::subscriber::with_default(sub, f);
    let log = String::from_utf8_lossy(&buf.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (r, log)
}
