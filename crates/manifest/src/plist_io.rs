//! Reading and writing property lists safely.
//!
//! The `plist` crate builds values without recursion, but dropping or walking a value does
//! recurse, so a hostile file of a million nested arrays would overflow the stack. We measure
//! the depth iteratively and take a too-deep value apart iteratively before refusing it.

use std::io::Cursor;

use plist::Value;

use crate::error::{Error, Result};

/// The deepest nesting of arrays and dictionaries accepted in any file.
pub const MAX_PLIST_DEPTH: usize = 64;

/// Parses XML, binary or ASCII plist bytes into a value, refusing internal DTD subsets and
/// nesting deeper than [`MAX_PLIST_DEPTH`].
pub(crate) fn read_value(bytes: &[u8], what: &str) -> Result<Value> {
    if has_internal_dtd_subset(bytes) {
        return Err(Error::DtdSubset {
            what: what.to_owned(),
        });
    }
    let value = Value::from_reader(Cursor::new(bytes)).map_err(|source| Error::Plist {
        what: what.to_owned(),
        source,
    })?;
    if depth_exceeds(&value, MAX_PLIST_DEPTH) {
        dismantle(value);
        return Err(Error::TooDeep {
            what: what.to_owned(),
            limit: MAX_PLIST_DEPTH,
        });
    }
    Ok(value)
}

/// Serialises a value as an XML plist the way Munki's Python tools do: sorted keys, tab
/// indentation.
pub(crate) fn write_xml(value: &Value, what: &str) -> Result<Vec<u8>> {
    let mut sorted = value.clone();
    sort_keys(&mut sorted);
    let mut out = Vec::new();
    let options = plist::XmlWriteOptions::default().indent(b'\t', 1);
    sorted
        .to_writer_xml_with_options(&mut out, &options)
        .map_err(|source| Error::Write {
            what: what.to_owned(),
            source,
        })?;
    out.push(b'\n');
    Ok(out)
}

fn sort_keys(value: &mut Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Dictionary(dict) => {
                dict.sort_keys();
                stack.extend(dict.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// A plist type name for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::Dictionary(_) => "a dict",
        Value::Boolean(_) => "a boolean",
        Value::Data(_) => "data",
        Value::Date(_) => "a date",
        Value::Real(_) => "a real number",
        Value::Integer(_) => "an integer",
        Value::String(_) => "a string",
        Value::Uid(_) => "a UID",
        _ => "an unknown plist type",
    }
}

/// True when arrays/dicts nest deeper than `limit` (iterative, so it is safe on any input).
pub(crate) fn depth_exceeds(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Dictionary(dict) => Box::new(dict.values()),
            _ => continue,
        };
        if depth > limit {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Drops a value without recursion.
fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Dictionary(dict) => stack.extend(dict.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Looks for `<!DOCTYPE … [` before the first element: the internal subset is where
/// entities would be declared.
fn has_internal_dtd_subset(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let Some(start) = find(head, b"<!DOCTYPE") else {
        return false;
    };
    let rest = &head[start..];
    let end = find(rest, b">").unwrap_or(rest.len());
    rest[..end].contains(&b'[')
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let depth = 200_000;
        let xml = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\">{}{}</plist>",
            "<array>".repeat(depth),
            "</array>".repeat(depth)
        );
        let err = read_value(xml.as_bytes(), "test").unwrap_err();
        assert!(matches!(err, Error::TooDeep { limit: 64, .. }), "{err}");
    }

    #[test]
    fn nesting_at_the_limit_is_accepted() {
        let xml = format!(
            "<plist version=\"1.0\">{}{}</plist>",
            "<array>".repeat(MAX_PLIST_DEPTH),
            "</array>".repeat(MAX_PLIST_DEPTH)
        );
        assert!(read_value(xml.as_bytes(), "test").is_ok());
    }

    #[test]
    fn internal_dtd_subset_is_refused() {
        let xml = b"<?xml version=\"1.0\"?><!DOCTYPE plist [<!ENTITY x \"y\">]><plist version=\"1.0\"><string>&x;</string></plist>";
        assert!(matches!(
            read_value(xml, "test"),
            Err(Error::DtdSubset { .. })
        ));
    }

    #[test]
    fn apple_doctype_is_accepted() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>a</key><string>b</string></dict></plist>"#;
        assert!(read_value(xml, "test").is_ok());
    }

    #[test]
    fn writes_sorted_keys_with_tabs() {
        let mut dict = plist::Dictionary::new();
        dict.insert("zeta".into(), Value::Array(vec![Value::String("x".into())]));
        dict.insert("alpha".into(), Value::Boolean(true));
        let xml = String::from_utf8(write_xml(&Value::Dictionary(dict), "t").unwrap()).unwrap();
        let alpha = xml.find("alpha").unwrap();
        let zeta = xml.find("zeta").unwrap();
        assert!(alpha < zeta, "{xml}");
        assert!(xml.contains("\n\t<key>alpha</key>"), "{xml}");
    }
}
