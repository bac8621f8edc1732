//! A small, bounded XML tree for the OCS messages.
//!
//! OCS agents send the same field either as an attribute (`<REQUEST ID="1" …/>`) or as a
//! child element (`<REQUEST><ID>1</ID></REQUEST>`), in any order, because the Perl side
//! serialises hashes with XML::Simple. Reading into a tree and then asking for a *field*
//! (attribute or child text) handles both forms the same way.
//!
//! The reader refuses what made the reference server exploitable (CVE-2018-14473): a
//! `DOCTYPE`, and any entity other than the five predefined ones and character references.
//! Depth and element count are capped so that a hostile message cannot exhaust the stack
//! or memory.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::Error;

/// Caps on what one message may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Maximum nesting depth of elements.
    pub max_depth: usize,
    /// Maximum number of elements in the whole document.
    pub max_elements: usize,
}

impl Default for XmlLimits {
    /// Generous for real inventories (a few thousand elements, depth under 10).
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_elements: 200_000,
        }
    }
}

/// One element: its name, attributes, child elements and concatenated text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The tag name as written (OCS uses upper case).
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Text directly inside this element, unescaped, surrounding whitespace trimmed.
    pub text: String,
}

impl Element {
    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child element called `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// A field written either as an attribute or as a child element's text (attribute
    /// first, as XML::Simple gives it precedence).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.attribute(name)
            .or_else(|| self.child(name).map(|c| c.text.as_str()))
    }
}

/// Parses `input` into its root element.
pub fn parse(input: &[u8], limits: XmlLimits) -> Result<Element, Error> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let position = |reader: &Reader<&[u8]>| reader.buffer_position();

    loop {
        let event = reader.read_event().map_err(|e| Error::Xml {
            position: position(&reader),
            reason: e.to_string(),
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(Error::Xml {
                    position: position(&reader),
                    reason: "content after the root element".into(),
                });
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                elements += 1;
                if elements > limits.max_elements {
                    return Err(Error::TooLarge {
                        what: "elements",
                        limit: limits.max_elements,
                    });
                }
                if stack.len() >= limits.max_depth {
                    return Err(Error::TooLarge {
                        what: "nesting depth",
                        limit: limits.max_depth,
                    });
                }
                let name = utf8(start.name().as_ref(), position(&reader))?;
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| Error::Xml {
                        position: position(&reader),
                        reason: e.to_string(),
                    })?;
                    let key = utf8(attribute.key.as_ref(), position(&reader))?;
                    let value = attribute.unescape_value().map_err(|e| Error::Xml {
                        position: position(&reader),
                        reason: format!("attribute {key}: {e}"),
                    })?;
                    attributes.push((key, value.into_owned()));
                }
                let element = Element {
                    name,
                    attributes,
                    ..Element::default()
                };
                if matches!(event, Event::Empty(_)) {
                    close(element, &mut stack, &mut root);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                let element = stack.pop().ok_or_else(|| Error::Xml {
                    position: position(&reader),
                    reason: "end tag without a start tag".into(),
                })?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| Error::Xml {
                    position: position(&reader),
                    reason: e.to_string(),
                })?;
                append_text(&mut stack, &text, position(&reader))?;
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| Error::Xml {
                    position: position(&reader),
                    reason: e.to_string(),
                })?;
                append_text(&mut stack, &text, position(&reader))?;
            }
            Event::GeneralRef(reference) => {
                let resolved = if let Some(ch) =
                    reference.resolve_char_ref().map_err(|e| Error::Xml {
                        position: position(&reader),
                        reason: e.to_string(),
                    })? {
                    ch.to_string()
                } else {
                    let name = reference.decode().map_err(|e| Error::Xml {
                        position: position(&reader),
                        reason: e.to_string(),
                    })?;
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| Error::Forbidden {
                            what: format!("entity reference &{name};"),
                        })?
                        .to_owned()
                };
                append_text(&mut stack, &resolved, position(&reader))?;
            }
            Event::DocType(_) => {
                return Err(Error::Forbidden {
                    what: "DOCTYPE declaration".into(),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml {
            position: position(&reader),
            reason: format!(
                "unclosed element <{}>",
                stack.last().map_or("", |e| e.name.as_str())
            ),
        });
    }
    let mut root = root.ok_or_else(|| Error::Xml {
        position: 0,
        reason: "no root element".into(),
    })?;
    trim_all(&mut root);
    Ok(root)
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str, position: u64) -> Result<(), Error> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(Error::Xml {
            position,
            reason: "text outside the root element".into(),
        }),
    }
}

// Trimming after the whole text is assembled keeps spaces next to entity references.
fn trim_all(element: &mut Element) {
    let trimmed = element.text.trim();
    if trimmed.len() != element.text.len() {
        element.text = trimmed.to_owned();
    }
    for child in &mut element.children {
        trim_all(child);
    }
}

fn utf8(bytes: &[u8], position: u64) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Xml {
        position,
        reason: "a name is not UTF-8".into(),
    })
}

/// Escapes `value` for use inside a double-quoted attribute or as element text.
pub(crate) fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Element, Error> {
        parse(s.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn fields_as_attributes_or_children_read_the_same() {
        let a = parse_str(r#"<REQUEST ID="7" QUERY="DOWNLOAD" />"#).unwrap();
        let b = parse_str("<REQUEST><QUERY>DOWNLOAD</QUERY><ID>7</ID></REQUEST>").unwrap();
        for e in [&a, &b] {
            assert_eq!(e.field("ID"), Some("7"));
            assert_eq!(e.field("QUERY"), Some("DOWNLOAD"));
            assert_eq!(e.field("ERR"), None);
        }
    }

    #[test]
    fn predefined_and_character_references_are_resolved() {
        let e = parse_str("<A B=\"x&amp;y\">a &lt; b &#65;&#x42;</A>").unwrap();
        assert_eq!(e.attribute("B"), Some("x&y"));
        assert_eq!(e.text, "a < b AB");
    }

    #[test]
    fn doctype_is_refused() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(matches!(parse_str(xml), Err(Error::Forbidden { .. })));
    }

    #[test]
    fn unknown_entities_are_refused() {
        assert!(matches!(
            parse_str("<r>&x;</r>"),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn depth_and_count_are_capped() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(
            parse_str(&deep),
            Err(Error::TooLarge {
                what: "nesting depth",
                ..
            })
        ));
        let many = format!("<r>{}</r>", "<a/>".repeat(50));
        let limits = XmlLimits {
            max_depth: 4,
            max_elements: 10,
        };
        assert!(matches!(
            parse(many.as_bytes(), limits),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "</a>",
            "<a/><b/>",
            "text",
            "<a x='1' x='2'/>",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
