//! A minimal ACS for `scripts/bench-simulate`: answers every Inform with
//! an InformResponse (A.3.3.1, the cwmp:ID echoed) and every later POST
//! with an empty HTTP response (204), which ends the session (3.7.1.4).
//! Event-driven (`mio`, one poll per thread: tests/support/load_acs.rs,
//! shared with the tests); counts Informs and distinct serial numbers.
//!
//!   sim_acs [LISTEN (default 127.0.0.1:0)] [THREADS (default 1)]
//!
//! Prints `listening http://ADDR/acs` on stdout, then when stdin closes
//! `informs N serials M sessions S`.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

#[path = "../tests/support/load_acs.rs"]
mod load_acs;

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let acs = load_acs::LoadAcs::start(&listen, threads, false);
    println!("listening {}", acs.url);
    std::io::stdout().flush().unwrap();
    // Run until stdin closes (the bench script holds it open).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let serials = acs.shared.serials.lock().unwrap().len();
    println!("informs {} serials {} sessions {}", acs.informs(), serials, acs.shared.sessions.load(Ordering::Relaxed));
    acs.stop();
}
