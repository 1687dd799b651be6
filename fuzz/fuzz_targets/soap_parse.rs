//! The CWMP SOAP codec on whatever an ACS may send: `soap::parse` must never
//! panic, and every envelope whose body decodes must survive the codec's own
//! encoder: `to_xml_with(header, body)` parses back to exactly one envelope
//! equal to the first (header fields and body), and encoding that again gives
//! the same bytes.
//!
//! Narrowed: bodies that did not decode (`Err(Fault)`: 9000/9003/8003 for
//! unknown methods or bad arguments) are not round-tripped, because the
//! encoder has nothing to write for them: the agent answers them with a
//! `Body::Fault`, whose round trip is covered when the input is a SOAP Fault.
#![no_main]

use agent::soap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The agent reads the HTTP body as UTF-8 (anything else is refused
    // before the codec sees it).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelopes) = soap::parse(text) else {
        return;
    };
    for e in envelopes {
        let Ok(body) = &e.body else { continue };
        let xml = soap::to_xml_with(&e.header(), body);
        let again = soap::parse(&xml).unwrap_or_else(|err| panic!("encoded envelope does not parse: {err}\n{xml}"));
        assert_eq!(again.len(), 1, "{xml}");
        assert_eq!(again[0], e, "round trip changed the envelope\n{xml}");
        assert_eq!(soap::to_xml_with(&again[0].header(), again[0].body.as_ref().unwrap()), xml, "encoding is not stable");
    }
});
