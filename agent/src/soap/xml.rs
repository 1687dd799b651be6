//! A minimal XML writer for the envelopes we emit (escaping, nesting), and
//! the limits on the XML we read ([`LIMITS`]).

use foundation::XmlLimits;

/// Largest HTTP body the codec parses: the most the agent reads from the ACS
/// ([`crate::http::MAX_RESPONSE_BYTES`]); the codec checks it itself since
/// it is sans-IO and the test ACS uses it too.
pub const MAX_BYTES: usize = crate::http::MAX_RESPONSE_BYTES as usize;

/// Deepest element nesting. The deepest CWMP 1.0 message (Appendix A; the
/// BBF schema cwmp-1-0.xsd) nests 7 levels: Envelope/Body/Fault/detail/
/// cwmp:Fault/SetParameterValuesFault/FaultCode, or Envelope/Body/
/// SetParameterAttributes/ParameterList/SetParameterAttributesStruct/
/// AccessList/string. 32 leaves room for header extensions (3.5: unknown
/// elements are ignored) and keeps the recursive tree parser far from the
/// few thousand levels that overflow a thread's stack.
pub const MAX_DEPTH: usize = 32;

/// Most elements in one HTTP body. The largest message is a
/// GetParameterValuesResponse or GetParameterNamesResponse over the whole
/// data model, 3 elements per parameter: 100,000 elements is over 30,000
/// parameters (the IGD model of Annex B defines about 500, before
/// instances), while the tree built stays a few MB.
pub const MAX_ELEMENTS: usize = 100_000;

/// Most attributes on one element, namespace declarations included. A CWMP
/// Envelope declares 5 namespaces (soapenv, soapenc, xsd, xsi, cwmp) and an
/// encodingStyle; an array element carries soapenc:arrayType and xsi:type.
/// 64 leaves room for ACSs that declare more, and keeps the parser's pairwise
/// duplicate-attribute check trivial.
pub const MAX_ATTRIBUTES: usize = 64;

/// The limits on an HTTP body, checked by one streaming scan before the tree
/// is built; a DOCTYPE is refused there too (SOAP 1.1 section 3: a message
/// must not contain a DTD).
pub const LIMITS: XmlLimits = XmlLimits { max_bytes: MAX_BYTES, max_depth: MAX_DEPTH, max_elements: MAX_ELEMENTS, max_attributes: MAX_ATTRIBUTES };

/// Escape element text: the predefined entities, and CR as a character
/// reference, since a literal CR is read back as LF (XML 1.0 2.11
/// end-of-line handling): a value such as a `cwmp:ID` holding CR would
/// otherwise not survive the trip (found by fuzz/fuzz_targets/soap_parse.rs).
pub fn esc(s: &str) -> String {
    escape(s, false)
}

/// Escape an attribute value: as [`esc`], and TAB and LF as character
/// references too, since literal ones are read back as spaces (XML 1.0
/// 3.3.3 attribute-value normalisation).
pub fn esc_attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attr: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\r' => o.push_str("&#13;"),
            '\n' if attr => o.push_str("&#10;"),
            '\t' if attr => o.push_str("&#9;"),
            c => o.push(c),
        }
    }
    o
}

/// Builds element text into a String.
#[derive(Default)]
pub struct W {
    pub out: String,
}

impl W {
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }
    pub fn open_attrs(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        for (k, v) in attrs {
            self.out.push_str(&format!(" {k}=\"{}\"", esc_attr(v)));
        }
        self.out.push('>');
        self
    }
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        self.out.push_str(&esc(text));
        self.close(tag)
    }
    pub fn leaf_attrs(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open_attrs(tag, attrs);
        self.out.push_str(&esc(text));
        self.close(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const ENV: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Body>"#;

    /// Issue 10 item 1: a hostile ACS (or a man in the middle) sends a body
    /// nested ~13,000 levels deep; the recursive parser overflowed the stack
    /// and aborted the agent. Now a parse error that names the limit.
    #[test]
    fn a_deeply_nested_body_is_a_parse_error() {
        let n = 13_000;
        let body = format!("{ENV}<cwmp:GetRPCMethods>{}{}</cwmp:GetRPCMethods></soapenv:Body></soapenv:Envelope>", "<a>".repeat(n), "</a>".repeat(n));
        let e = parse(&body).unwrap_err().to_string();
        assert!(e.contains(&format!("more than {MAX_DEPTH} levels")), "{e}");
        // Just within the limit still parses (Envelope, Body, method: 3 levels).
        let ok = MAX_DEPTH - 3;
        let body = format!("{ENV}<cwmp:GetRPCMethods>{}{}</cwmp:GetRPCMethods></soapenv:Body></soapenv:Envelope>", "<a>".repeat(ok), "</a>".repeat(ok));
        assert!(parse(&body).is_ok());
    }

    /// Issue 10 item 2: many attributes on one element (quadratic in the
    /// parser) are refused by the scan, naming the limit.
    #[test]
    fn many_attributes_are_refused_with_the_limit() {
        let attrs: String = (0..20_000).map(|i| format!(" a{i}=\"x\"")).collect();
        let body = format!("{ENV}<cwmp:GetRPCMethods{attrs}/></soapenv:Body></soapenv:Envelope>");
        let e = parse(&body).unwrap_err().to_string();
        assert!(e.contains(&format!("more than {MAX_ATTRIBUTES} attributes")), "{e}");
        let many = format!("{ENV}<cwmp:GetRPCMethods>{}</cwmp:GetRPCMethods></soapenv:Body></soapenv:Envelope>", "<a/>".repeat(MAX_ELEMENTS));
        let e = parse(&many).unwrap_err().to_string();
        assert!(e.contains(&format!("more than {MAX_ELEMENTS} elements")), "{e}");
    }

    /// Issue 10 item 18: a DOCTYPE was logged as "unknown token at 1:19".
    #[test]
    fn a_doctype_is_named_in_the_error() {
        let body = format!("<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{ENV}</soapenv:Body></soapenv:Envelope>");
        let e = parse(&body).unwrap_err().to_string();
        assert!(e.contains("<!DOCTYPE") && e.contains("line 2") && !e.contains("unknown token"), "{e}");
    }
}
