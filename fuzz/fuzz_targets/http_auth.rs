//! HTTP Basic/Digest parsing (src/agent/digest.rs) on untrusted headers:
//! WWW-Authenticate values from an ACS or file server (client side,
//! `digest::pick`) and Authorization values from whoever reaches the
//! Connection Request port (server side, `Server::verify_request`,
//! `verify_basic`). Nothing may panic. Input: header values, one per line.
//!
//! Properties beyond "no panic":
//! * a chosen Digest challenge answered with `digest_authorization` is
//!   accepted by a `Server` that issued the same nonce/opaque when the
//!   user, password and URI are the ones it expects (first lines of the
//!   input as realm, user, password, uri: quoting and unquoting agree);
//! * the Authorization header values of the input are checked against a
//!   live server nonce: `{nonce}` and `{opaque}` in a line are replaced by
//!   the server's, so the fuzzer can get past the nonce lookup;
//! * `verify_basic(basic_authorization(u, p), u, p)` holds.
#![no_main]

use std::time::Instant;

use agent::digest::{self, Scheme, Server, Verdict, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let now = Instant::now();

    // Client side: all lines are WWW-Authenticate values of one 401.
    if let Ok(Scheme::Digest(ch)) = digest::pick(&lines) {
        let _ = digest::digest_authorization(&ch, "POST", "/acs", "user", "pass", 1, "0a4f113b");
    }

    // Server side: each line is an Authorization value.
    let mut server = Server::new("cpekit").expect("random opaque");
    let challenge = server.challenge(now, false).expect("random nonce");
    let Ok(Scheme::Digest(ours)) = digest::pick(&[&challenge]) else { panic!("own challenge unusable: {challenge}") };
    let opaque = ours.opaque.clone().expect("own challenge has an opaque");
    for line in &lines {
        let auth = line.replace("{nonce}", &ours.nonce).replace("{opaque}", &opaque);
        let _ = server.verify_request(&auth, "GET", Some("/cr/0123"), "acs", "s3cret", now);
        let _ = digest::verify_basic(line, "acs", "s3cret");
    }

    // Round trip: the client's answer to our challenge is accepted.
    let field = |i: usize| lines.get(i).copied().unwrap_or("");
    let (realm, user, pass, uri) = (field(0), field(1), field(2), field(3));
    let mut server = Server::new(realm).expect("random opaque");
    let challenge = server.challenge(now, false).expect("random nonce");
    if challenge.len() <= MAX_HEADER_LEN {
        let Ok(Scheme::Digest(ch)) = digest::pick(&[&challenge]) else { panic!("own challenge unusable: {challenge:?}") };
        assert_eq!(ch.realm, realm, "realm changed by quoting: {challenge:?}");
        let auth = digest::digest_authorization(&ch, "GET", uri, user, pass, 1, "0a4f113b");
        if auth.len() <= MAX_HEADER_LEN {
            let v = server.verify_request(&auth, "GET", Some(uri), user, pass, now);
            assert_eq!(v, Verdict::Ok, "own Authorization refused: {auth:?}");
            // A replayed nc is refused.
            assert_eq!(server.verify_request(&auth, "GET", Some(uri), user, pass, now), Verdict::Denied);
        }
    }
    let basic = digest::basic_authorization(user, pass);
    if basic.len() <= MAX_HEADER_LEN {
        assert!(digest::verify_basic(&basic, user, pass), "own Basic refused: {basic:?}");
    }
});
