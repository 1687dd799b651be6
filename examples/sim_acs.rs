//! A minimal ACS for `scripts/bench-simulate`: answers every Inform with
//! an InformResponse (A.3.3.1, the cwmp:ID echoed) and every later POST
//! with an empty HTTP response (204), which ends the session (3.7.1.4).
//! Multi-threaded tiny_http; counts Informs and distinct serial numbers.
//!
//!   sim_acs [LISTEN (default 127.0.0.1:0)] [THREADS (default 2)]
//!
//! Prints `listening http://ADDR/acs` on stdout, then on SIGTERM/SIGINT
//! (or stdin closing) `informs N serials M`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agent::soap::{self, Body};

/// The text of the first `<tag>...</tag>` (our emitter's layout).
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)? + i;
    Some(&s[i..j])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(2);
    let server = Arc::new(tiny_http::Server::http(&listen).expect("bind"));
    let addr = server.server_addr().to_ip().expect("IP listener");
    println!("listening http://{addr}/acs");
    std::io::stdout().flush().unwrap();
    let informs = Arc::new(AtomicU64::new(0));
    let serials = Arc::new(Mutex::new(HashSet::<String>::new()));
    for _ in 0..threads.max(1) {
        let (server, informs, serials) = (server.clone(), informs.clone(), serials.clone());
        std::thread::spawn(move || {
            let inform_response = |id: &str| soap::to_xml(Some(id), false, &Body::InformResponse { max_envelopes: 1 });
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().take(1 << 20).read_to_string(&mut body);
                let resp = if body.contains("<cwmp:Inform>") {
                    informs.fetch_add(1, Ordering::Relaxed);
                    if let Some(sn) = between(&body, "<SerialNumber>", "</SerialNumber>") {
                        serials.lock().unwrap().insert(sn.to_string());
                    }
                    let id = between(&body, "<cwmp:ID soap:mustUnderstand=\"1\">", "</cwmp:ID>").unwrap_or("");
                    tiny_http::Response::from_string(inform_response(id))
                        .with_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/xml; charset=\"utf-8\""[..]).unwrap())
                        .with_status_code(200)
                } else {
                    tiny_http::Response::from_string(String::new()).with_status_code(204)
                };
                let _ = req.respond(resp);
            }
        });
    }
    // Run until stdin closes (the bench script holds it open) or a signal kills us.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("informs {} serials {}", informs.load(Ordering::Relaxed), serials.lock().unwrap().len());
}
