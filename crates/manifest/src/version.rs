//! Munki's version rules: `MunkiLooseVersion` ordering, trimming and name–version pins.

use std::cmp::Ordering;

/// One component of a loose version: a number or a run of other characters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<'a> {
    Num(u128),
    Text(&'a str),
}

/// Splits like distutils `LooseVersion` with Munki's regex: runs of digits, runs of
/// lowercase letters, and whatever lies between them; dots separate and are dropped.
/// An iterator, so comparing versions allocates nothing.
struct Parts<'a> {
    rest: &'a str,
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Digit,
    Lower,
    Other,
    Dot,
}

fn class(c: char) -> Class {
    if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_ascii_lowercase() {
        Class::Lower
    } else if c == '.' {
        Class::Dot
    } else {
        Class::Other
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        loop {
            let first = self.rest.chars().next()?;
            let kind = class(first);
            let end = if kind == Class::Dot {
                first.len_utf8()
            } else {
                self.rest
                    .char_indices()
                    .find(|&(_, c)| class(c) != kind)
                    .map_or(self.rest.len(), |(i, _)| i)
            };
            let (token, rest) = self.rest.split_at(end);
            self.rest = rest;
            match kind {
                Class::Dot => {}
                // Very long digit runs saturate rather than fail.
                Class::Digit => return Some(Part::Num(token.parse().unwrap_or(u128::MAX))),
                Class::Lower | Class::Other => return Some(Part::Text(token)),
            }
        }
    }
}

fn parts(version: &str) -> Parts<'_> {
    Parts { rest: version }
}

/// Compares two version strings as `MunkiLooseVersion` does: pad the shorter with `0`,
/// compare component-wise; a number is less than text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut pa, mut pb) = (parts(a), parts(b));
    loop {
        let (x, y) = match (pa.next(), pb.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => (x.unwrap_or(Part::Num(0)), y.unwrap_or(Part::Num(0))),
        };
        let ord = match (&x, &y) {
            (Part::Num(x), Part::Num(y)) => x.cmp(y),
            (Part::Text(x), Part::Text(y)) => x.cmp(y),
            (Part::Num(_), Part::Text(_)) => Ordering::Less,
            (Part::Text(_), Part::Num(_)) => Ordering::Greater,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
}

/// Munki's `trim_version_string`: drop trailing `.0` components while more than two remain.
pub fn trim_version(version: &str) -> String {
    let mut parts: Vec<&str> = version.split('.').collect();
    while parts.len() > 2 && parts.last() == Some(&"0") {
        parts.pop();
    }
    parts.join(".")
}

/// Munki's `split_name_and_version`: `Foo-1.2` or `Foo--1.2` pins version `1.2`; the version
/// part must start with a digit. Returns the name and the pinned version, if any.
pub fn split_name_and_version(item: &str) -> (&str, Option<&str>) {
    // Byte searches: `str::rfind` with a string pattern builds a two-way searcher per call,
    // which cost more than the rest of the lookup. `-` is ASCII, so every index found is a
    // character boundary.
    let double = item.as_bytes().windows(2).rposition(|w| w == b"--");
    let single = item.as_bytes().iter().rposition(|&b| b == b'-');
    for (at, len) in [(double, 2), (single, 1)] {
        if let Some(at) = at
            && let (Some(name), Some(version)) = (item.get(..at), item.get(at + len..))
            && version.starts_with(|c: char| c.is_ascii_digit())
        {
            return (name, Some(version));
        }
    }
    (item, None)
}

/// The item name a manifest entry refers to: its last path component (Munki de-duplicates on
/// this basename).
pub fn manifest_item_basename(item: &str) -> &str {
    // A plain byte loop: names are short, and `/` is ASCII so the slice is on a boundary.
    match item.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(at) => item.get(at + 1..).unwrap_or(item),
        None => item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_version_order() {
        assert_eq!(compare_versions("121.0", "120.0"), Ordering::Greater);
        assert_eq!(compare_versions("10.10", "10.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("1.0b2", "1.0"), Ordering::Greater);
        // int < str: "1.0.1" vs "1.0b": component 3 is 1 vs "b".
        assert_eq!(compare_versions("1.0.1", "1.0b"), Ordering::Less);
        assert_eq!(compare_versions("2.0-RC1", "2.0"), Ordering::Greater);
    }

    /// The original string-pattern search, kept as the oracle for the byte search.
    fn split_reference(item: &str) -> (&str, Option<&str>) {
        for delim in ["--", "-"] {
            if let Some(at) = item.rfind(delim) {
                let version = &item[at + delim.len()..];
                if version.starts_with(|c: char| c.is_ascii_digit()) {
                    return (&item[..at], Some(version));
                }
            }
        }
        (item, None)
    }

    proptest::proptest! {
        #[test]
        fn split_matches_the_string_search(item in "[-a-zé0-9.]{0,12}") {
            proptest::prop_assert_eq!(split_name_and_version(&item), split_reference(&item));
        }

        #[test]
        fn ordering_is_antisymmetric_and_total(a in "[0-9a-zA-Z.-]{0,12}", b in "[0-9a-zA-Z.-]{0,12}") {
            proptest::prop_assert_eq!(compare_versions(&a, &b), compare_versions(&b, &a).reverse());
            proptest::prop_assert_eq!(compare_versions(&a, &a), Ordering::Equal);
        }
    }

    #[test]
    fn trimming_keeps_two_components() {
        assert_eq!(trim_version("10.0.0.0"), "10.0");
        assert_eq!(trim_version("1.0"), "1.0");
        assert_eq!(trim_version("1.2.0"), "1.2");
        assert_eq!(trim_version("1.0.1"), "1.0.1");
        assert_eq!(trim_version(""), "");
    }

    #[test]
    fn name_version_pins() {
        assert_eq!(
            split_name_and_version("Firefox-120.0"),
            ("Firefox", Some("120.0"))
        );
        assert_eq!(
            split_name_and_version("Firefox--120.0"),
            ("Firefox", Some("120.0"))
        );
        assert_eq!(split_name_and_version("Foo-Bar-2"), ("Foo-Bar", Some("2")));
        assert_eq!(split_name_and_version("Foo-Bar"), ("Foo-Bar", None));
        assert_eq!(split_name_and_version("Foo-"), ("Foo-", None));
        assert_eq!(split_name_and_version("Foo---2"), ("Foo-", Some("2")));
        assert_eq!(
            split_name_and_version("Foo--Bar-2"),
            ("Foo--Bar", Some("2"))
        );
        assert_eq!(split_name_and_version("--1"), ("", Some("1")));
        assert_eq!(split_name_and_version("É-1"), ("É", Some("1")));
        assert_eq!(manifest_item_basename("apps/Firefox"), "Firefox");
        assert_eq!(manifest_item_basename("apps/"), "");
        assert_eq!(manifest_item_basename("Firefox"), "Firefox");
        assert_eq!(manifest_item_basename("é/ü"), "ü");
    }
}
