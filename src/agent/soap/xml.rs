//! A minimal XML writer for the envelopes we emit (escaping, nesting).

/// Escape text and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
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
            self.out.push_str(&format!(" {k}=\"{}\"", esc(v)));
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
