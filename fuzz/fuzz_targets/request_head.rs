//! The bounded HTTP request-head parser shared by the Connection Request
//! server and the LAN server (`http_head::parse_head`), then what those
//! servers do with a head: the Connection Request policy (path, method,
//! headers, Digest) and the LAN kick query and NextURL redirect.
//!
//! Properties: no panic; `Ok(None)` (read more) only while no CRLFCRLF is
//! within the first MAX_HEAD_LEN bytes and fewer than MAX_HEAD_LEN are
//! buffered, `TooLarge` only once MAX_HEAD_LEN are buffered; a head uses at
//! most MAX_HEAD_LEN bytes, ends at the first CRLFCRLF, holds at most 32
//! fields, and parses the same from exactly its own bytes, while one byte
//! less is incomplete (the servers read in chunks); a redirect target is one
//! safe header value (no control characters, spaces or non-ASCII).
#![no_main]

use std::time::{Duration, Instant};

use agent::connreq::{self, Policy};
use agent::http_head::{parse_head, HeadError, MAX_HEAD_LEN};
use agent::lan;
use libfuzzer_sys::fuzz_target;

/// http_head's MAX_HEADERS (private).
const MAX_HEADERS: usize = 32;

fn crlfcrlf(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

fuzz_target!(|data: &[u8]| {
    let first_end = crlfcrlf(&data[..data.len().min(MAX_HEAD_LEN)]);
    let (head, n) = match parse_head(data) {
        Ok(None) => {
            assert!(data.len() < MAX_HEAD_LEN && first_end.is_none(), "incomplete, yet a head is there or the bound is reached");
            return;
        }
        Err(HeadError::TooLarge) => {
            assert!(data.len() >= MAX_HEAD_LEN && first_end.is_none(), "TooLarge before the bound");
            return;
        }
        Err(_) => {
            assert!(first_end.is_some(), "a complete head is refused only once it is complete");
            return;
        }
        Ok(Some(h)) => h,
    };
    assert_eq!(Some(n - 4), first_end, "the head ends at the first CRLFCRLF");
    assert!(n <= MAX_HEAD_LEN && n <= data.len());
    assert!(head.headers.len() <= MAX_HEADERS);
    assert!(head.target.starts_with('/'));
    assert_eq!(parse_head(&data[..n]), Ok(Some((head.clone(), n))));
    assert_eq!(parse_head(&data[..n - 1]), Ok(None));

    // Connection Request server: the sans-IO decision and the reply.
    let mut policy = Policy::new("/cr/0123", 2, Duration::from_secs(60)).expect("random opaque");
    let peer = std::net::IpAddr::from([192, 0, 2, 1]);
    let reply = policy.decide(&head, peer, ("acs", "s3cret"), Instant::now());
    let rendered = connreq::render(&reply);
    assert!(rendered.ends_with("\r\n\r\n"));

    // LAN server: the kick arguments and where NextURL sends the browser.
    let query = head.target.split_once('?').map_or("", |(_, q)| q);
    let referer = head.headers.iter().find(|(k, _)| k == "referer").map(|(_, v)| v.as_str());
    if let Ok(args) = lan::parse_kick(query, referer) {
        let _ = args.to_body();
        if let Ok(to) = lan::redirect_target(&args.next, "http://192.168.1.1:8080") {
            assert!(to.bytes().all(|b| b > b' ' && b < 0x7f), "unsafe Location: {to:?}");
        }
    }
});
