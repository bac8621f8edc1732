//! String rules of NSPredicate: comparison options, LIKE wildcards, MATCHES, date literals.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use super::StrOptions;
use crate::facts::Timestamp;

/// Compiled regexes are capped so a condition cannot make the server build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a MATCHES pattern; it must match the whole string, as ICU `matches` does.
pub(super) fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid MATCHES regular expression: {e}"))
}

/// Applies `[c]` and `[d]` to a string.
pub(super) fn fold(s: &str, options: StrOptions) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(s);
    if options.diacritic_insensitive && !s.is_ascii() {
        out = Cow::Owned(out.chars().filter_map(strip_diacritic).collect());
    }
    if options.case_insensitive && out.chars().any(char::is_uppercase) {
        out = Cow::Owned(out.to_lowercase());
    }
    out
}

/// Maps a Latin letter with a diacritic to its base letter and drops combining marks.
/// This covers Latin-1 and Latin Extended-A, not all of Unicode (see docs/manifests.md).
fn strip_diacritic(c: char) -> Option<char> {
    const FROM: &str = "ÀÁÂÃÄÅàáâãäåĀāĂăĄąÇçĆćĈĉĊċČčĎďĐđÈÉÊËèéêëĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħÌÍÎÏìíîïĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľĿŀŁłÑñŃńŅņŇňÒÓÔÕÖØòóôõöøŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲųŴŵÝýÿŶŷŸŹźŻżŽž";
    const TO: &str = "AAAAAAaaaaaaAaAaAaCcCcCcCcCcDdDdEEEEeeeeEeEeEeEeEeGgGgGgGgHhHhIIIIiiiiIiIiIiIiIiJjKkLlLlLlLlLlNnNnNnNnOOOOOOooooooOoOoOoRrRrRrSsSsSsSsTtTtTtUUUUuuuuUuUuUuUuUuUuWwYyyYyYZzZzZz";
    if ('\u{300}'..='\u{36f}').contains(&c) {
        return None;
    }
    Some(
        FROM.chars()
            .position(|f| f == c)
            .and_then(|i| TO.chars().nth(i))
            .unwrap_or(c),
    )
}

/// LIKE: `*` matches any run, `?` one character, `\` escapes; the whole string must match.
pub(super) fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let mut pat: Vec<(char, bool)> = Vec::new(); // (char, is_literal)
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => pat.push((chars.next().unwrap_or('\\'), true)),
            other => pat.push((other, false)),
        }
    }
    // Greedy matching with one backtrack point: linear in practice, never exponential.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(('*', false)) => {
                star = Some((p, t));
                p += 1;
            }
            Some(('?', false)) => {
                t += 1;
                p += 1;
            }
            Some((c, _)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&(c, lit)| c == '*' && !lit)
}

/// Parses the date strings CAST accepts: `2016-03-02T00:00:00Z`, with optional fractional
/// seconds and a `±HH:MM`/`±HHMM` offset, or the NSDate description form
/// `2016-03-02 00:00:00 +0000`.
pub(crate) fn parse_date_literal(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !(bytes[10] == b'T' || bytes[10] == b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &frac[..digits]).parse().ok()?;
        rest = &frac[digits..];
    }
    let rest = rest.trim_start();
    let offset_seconds = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[..2].parse().ok()?;
            let minutes: i64 = digits[2..].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(Timestamp(seconds as f64 + fraction))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards() {
        assert!(like("MacBookPro18,1", "MacBook*"));
        assert!(like("Mac14,2", "Mac??,?"));
        assert!(!like("Mac14,2", "Mac?,?"));
        assert!(like("a*b", "a\\*b"));
        assert!(!like("axb", "a\\*b"));
        assert!(like("", "*"));
        assert!(!like("abc", "ab"));
    }

    #[test]
    fn like_is_not_exponential() {
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "*a".repeat(200));
        assert!(!like(&text, &pattern));
    }

    #[test]
    fn dates_match_known_epochs() {
        assert_eq!(
            parse_date_literal("2001-01-01T00:00:00Z"),
            Some(Timestamp(978_307_200.0))
        );
        assert_eq!(
            parse_date_literal("2016-03-02 01:00:00 +0100"),
            Some(Timestamp(1_456_876_800.0))
        );
        assert_eq!(parse_date_literal("2016-02-30T00:00:00Z"), None);
        assert_eq!(parse_date_literal("soon"), None);
    }

    #[test]
    fn diacritics_and_case_fold() {
        let cd = StrOptions {
            case_insensitive: true,
            diacritic_insensitive: true,
        };
        assert_eq!(fold("Café Résumé", cd), "cafe resume");
        assert_eq!(fold("Cafe\u{301}", cd), "cafe");
    }
}
