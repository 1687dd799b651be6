//! SIGTERM, SIGINT and SIGHUP as counters the commands poll: the handlers
//! only increment atomics (async-signal-safe); [`watch`] turns them into
//! the agent's triggers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::runner::Trigger;

static STOPS: AtomicUsize = AtomicUsize::new(0);
static HANGUPS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_stop(_: libc::c_int) {
    STOPS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_hangup(_: libc::c_int) {
    HANGUPS.fetch_add(1, Ordering::SeqCst);
}

/// Count SIGTERM and SIGINT (stop) and, with `hangup`, SIGHUP.
pub fn install(hangup: bool) {
    // SAFETY: the handlers only touch atomics.
    unsafe {
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        if hangup {
            libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
        }
    }
}

/// SIGTERM/SIGINT received so far.
pub fn stops() -> usize {
    STOPS.load(Ordering::SeqCst)
}

/// For a running agent: the first SIGTERM/SIGINT stops it after the current
/// session (state saved), a second one abandons that session; SIGHUP
/// reloads `config` (a config that does not load is logged and ignored).
pub fn watch(config: PathBuf, tx: Sender<Trigger>, abort: Arc<AtomicBool>) {
    install(true);
    std::thread::spawn(move || {
        let (mut stops, mut hangups) = (0, 0);
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let s = STOPS.load(Ordering::SeqCst);
            if s > stops {
                if stops == 0 {
                    tracing::info!("stop signal: stopping after the current session (a second one abandons it)");
                    if tx.send(Trigger::Stop).is_err() {
                        return;
                    }
                }
                if s >= 2 {
                    tracing::warn!("second stop signal: abandoning the current session");
                    abort.store(true, Ordering::SeqCst);
                }
                stops = s;
            }
            let h = HANGUPS.load(Ordering::SeqCst);
            if h > hangups {
                hangups = h;
                tracing::info!(config = %config.display(), "SIGHUP: reloading the configuration");
                match AgentConfig::load(&config) {
                    Ok(cfg) => {
                        if tx.send(Trigger::Reload(Box::new(cfg))).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::error!("configuration not reloaded, the running one stays: {e}"),
                }
            }
        }
    });
}
