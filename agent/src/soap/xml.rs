//! A minimal XML writer for the envelopes we emit (escaping, nesting).

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
