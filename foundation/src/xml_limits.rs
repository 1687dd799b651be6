//! Limits on an untrusted XML document, checked by a streaming scan before
//! any parser builds a tree.
//!
//! The tree parsers cpekit hands untrusted XML to (roxmltree, libxml2 under
//! libxmlsec1) recurse once per nesting level and check duplicate attributes
//! pairwise: a few thousand nested elements overflow the stack (an abort, not
//! an error) and tens of thousands of attributes on one element take minutes.
//! [`XmlLimits::check`] walks the bytes once, keeps no tree and no per-element
//! state beyond a depth counter, and refuses a document that is larger, deeper,
//! has more elements or more attributes on one element than its user allows,
//! or that has a document type declaration (no DTDs, entities or external
//! subsets are ever processed: XML 1.0 2.8 / 4.2 are where billion-laughs and
//! XXE live). Each user declares its own limits as named constants, with the
//! reason for each number.
//!
//! The scan follows the markup of XML 1.0 (start, end and empty-element tags
//! with quoted attribute values, comments, CDATA sections, processing
//! instructions) closely enough that it never sees fewer elements or less
//! nesting than a conforming parser does on the same bytes: where the input is
//! not well-formed it counts conservatively or stops, and the parser that
//! runs next refuses the input at or before that point, before it has
//! descended any further than the scan did.

/// What one use of XML accepts. Every field is a maximum, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Size of the whole document in bytes.
    pub max_bytes: usize,
    /// Nesting depth of elements: the document element is at depth 1.
    pub max_depth: usize,
    /// Number of elements (start and empty-element tags) in the document.
    pub max_elements: usize,
    /// Attributes (namespace declarations included) on any one element.
    pub max_attributes: usize,
}

/// What the scan measured on a document within its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmlShape {
    pub bytes: usize,
    /// The deepest element's depth (the document element is at depth 1).
    pub depth: usize,
    pub elements: usize,
    /// The most attributes on any one element.
    pub attributes: usize,
}

/// Why a document was refused before parsing; each names the limit hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlLimitError {
    #[error("the document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("elements are nested more than {limit} levels deep (the limit) at line {line}")]
    TooDeep { limit: usize, line: usize },
    #[error("the document has more than {limit} elements (the limit) at line {line}")]
    TooManyElements { limit: usize, line: usize },
    #[error("an element has more than {limit} attributes (the limit) at line {line}")]
    TooManyAttributes { limit: usize, line: usize },
    #[error("a document type declaration (<!DOCTYPE) at line {line} is not allowed: DTDs and entities are never processed")]
    Doctype { line: usize },
}

impl XmlLimits {
    /// Scan `text` once and refuse it if it exceeds a limit or declares a
    /// document type. Linear in the input; allocates nothing. A document
    /// that is not well-formed may pass: the parser that runs next refuses it.
    pub fn check(&self, text: &[u8]) -> Result<XmlShape, XmlLimitError> {
        if text.len() > self.max_bytes {
            return Err(XmlLimitError::TooLarge { size: text.len(), limit: self.max_bytes });
        }
        let line = |at: usize| 1 + text[..at].iter().filter(|&&b| b == b'\n').count();
        let mut shape = XmlShape { bytes: text.len(), ..XmlShape::default() };
        let mut depth = 0usize;
        let mut i = 0;
        while let Some(lt) = find(text, i, b"<") {
            let rest = &text[lt..];
            // Each arm leaves `i` just past the construct, or returns when the
            // construct is not closed (the rest of the input is inside it).
            if rest.starts_with(b"<!--") {
                let Some(end) = find(text, lt + 4, b"-->") else { break };
                i = end + 3;
            } else if rest.starts_with(b"<![CDATA[") {
                let Some(end) = find(text, lt + 9, b"]]>") else { break };
                i = end + 3;
            } else if rest.starts_with(b"<!DOCTYPE") {
                return Err(XmlLimitError::Doctype { line: line(lt) });
            } else if rest.starts_with(b"<!") {
                // Not markup XML allows in content or the prolog (a parser
                // refuses it here); scan on, counting what follows.
                i = lt + 2;
            } else if rest.starts_with(b"<?") {
                let Some(end) = find(text, lt + 2, b"?>") else { break };
                i = end + 2;
            } else if rest.starts_with(b"</") {
                depth = depth.saturating_sub(1);
                let Some(end) = find(text, lt + 2, b">") else { break };
                i = end + 1;
            } else {
                shape.elements += 1;
                if shape.elements > self.max_elements {
                    return Err(XmlLimitError::TooManyElements { limit: self.max_elements, line: line(lt) });
                }
                let here = depth + 1;
                if here > self.max_depth {
                    return Err(XmlLimitError::TooDeep { limit: self.max_depth, line: line(lt) });
                }
                shape.depth = shape.depth.max(here);
                // The tag runs to the first '>' outside a quoted value; each
                // attribute has exactly one '=' outside its quotes.
                let mut attributes = 0;
                let mut last = b'<';
                let mut j = lt + 1;
                let end = loop {
                    let Some(&b) = text.get(j) else { break None };
                    match b {
                        b'"' | b'\'' => {
                            let Some(q) = find(text, j + 1, &[b]) else { break None };
                            j = q;
                        }
                        b'=' => {
                            attributes += 1;
                            if attributes > self.max_attributes {
                                return Err(XmlLimitError::TooManyAttributes { limit: self.max_attributes, line: line(lt) });
                            }
                        }
                        b'>' => break Some(j),
                        _ => {}
                    }
                    last = b;
                    j += 1;
                };
                shape.attributes = shape.attributes.max(attributes);
                let Some(end) = end else { break };
                if last != b'/' {
                    depth = here;
                }
                i = end + 1;
            }
        }
        Ok(shape)
    }
}

/// The first occurrence of `needle` in `text` at or after `from`.
fn find(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = text.get(from..)?;
    match needle {
        [b] => hay.iter().position(|c| c == b),
        _ => hay.windows(needle.len()).position(|w| w == needle),
    }
    .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: XmlLimits = XmlLimits { max_bytes: 1 << 20, max_depth: 8, max_elements: 100, max_attributes: 4 };

    fn shape(s: &str) -> XmlShape {
        L.check(s.as_bytes()).unwrap()
    }

    #[test]
    fn measures_a_document() {
        let doc = r#"<?xml version="1.0"?>
<!-- <not><an><element> -->
<a xmlns="urn:x" b='1' c = "x>y/" ><b/><c d="'"><![CDATA[<e><e><e>]]><?pi <f> ?></c>text &amp; <g></g></a>"#;
        assert_eq!(shape(doc), XmlShape { bytes: doc.len(), depth: 2, elements: 4, attributes: 3 });
        assert_eq!(shape(""), XmlShape::default());
        assert_eq!(shape("<a/><b/>").depth, 1, "empty-element tags do not nest");
    }

    #[test]
    fn each_limit_is_hit_and_named() {
        let deep = format!("{}{}", "<a>".repeat(9), "</a>".repeat(9));
        assert_eq!(L.check(deep.as_bytes()), Err(XmlLimitError::TooDeep { limit: 8, line: 1 }));
        assert!(L.check(format!("{}{}", "<a>".repeat(8), "</a>".repeat(8)).as_bytes()).is_ok());
        let deep_empty = format!("{}<x/>{}", "<a>".repeat(8), "</a>".repeat(8));
        assert!(matches!(L.check(deep_empty.as_bytes()), Err(XmlLimitError::TooDeep { limit: 8, .. })));
        let many = format!("<r>\n{}</r>", "<a/>".repeat(100));
        assert_eq!(L.check(many.as_bytes()), Err(XmlLimitError::TooManyElements { limit: 100, line: 2 }));
        let attrs = "<a b='1' c='2' d='3' e='4' f='5'/>";
        assert_eq!(L.check(attrs.as_bytes()), Err(XmlLimitError::TooManyAttributes { limit: 4, line: 1 }));
        assert!(L.check(attrs.replace(" f='5'", "").as_bytes()).is_ok());
        let big = vec![b' '; L.max_bytes + 1];
        assert_eq!(L.check(&big), Err(XmlLimitError::TooLarge { size: L.max_bytes + 1, limit: L.max_bytes }));
        let e = L.check(deep.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("more than 8 levels"), "{e}");
    }

    #[test]
    fn doctype_is_refused_wherever_it_is() {
        assert_eq!(L.check(b"<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>"), Err(XmlLimitError::Doctype { line: 2 }));
        assert_eq!(L.check(b"<x><!DOCTYPE a></x>"), Err(XmlLimitError::Doctype { line: 1 }));
        assert!(L.check(b"<!-- <!DOCTYPE a> --><a/>").is_ok());
    }

    /// Constructs a scan could be fooled by: what is skipped as a comment,
    /// CDATA, PI or attribute value is skipped by a parser too (or refused).
    #[test]
    fn hiding_places_are_not_hiding_places() {
        let deep = format!("{}{}", "<a>".repeat(9), "</a>".repeat(9));
        // '>' and '/' inside quoted values do not end the tag.
        assert!(L.check(format!("<r x='/>' y=\">\">{deep}</r>").as_bytes()).is_err());
        // Unknown "<!" markup is not a place to hide elements.
        assert!(L.check(format!("<!FOO {deep}").as_bytes()).is_err());
        // Stray end tags do not make depth negative.
        assert!(L.check(format!("</a></a></a>{deep}").as_bytes()).is_err());
        // Unterminated constructs: the rest is inside them for the parser too.
        assert!(L.check(format!("<!-- {deep}").as_bytes()).is_ok());
        assert!(L.check(format!("<a x='{deep}").as_bytes()).is_ok());
    }

    /// Linear work: a million attributes or elements are refused after the
    /// first over the limit, and a large document within limits is one pass.
    #[test]
    fn hostile_sizes_are_refused_at_the_limit() {
        let unbounded_size = XmlLimits { max_bytes: usize::MAX, ..L };
        let attrs: String = (0..1_000_000).map(|i| format!(" a{i}='x'")).collect();
        let doc = format!("<a{attrs}/>");
        assert!(matches!(unbounded_size.check(doc.as_bytes()), Err(XmlLimitError::TooManyAttributes { limit: 4, .. })));
        let deep = "<a>".repeat(1_000_000);
        assert!(matches!(unbounded_size.check(deep.as_bytes()), Err(XmlLimitError::TooDeep { limit: 8, .. })));
    }
}
