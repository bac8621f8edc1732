//! Tokens of the NSPredicate format language, each with its character position.

use super::PredicateError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An identifier or keyword (keywords are matched case-insensitively by the parser).
    Ident(String),
    /// `$name`.
    Var(String),
    /// `@count` and other collection operators.
    At(String),
    Str(String),
    Int(i64),
    Real(f64),
    /// `[c]`, `[cd]`, `[d]`: comparison options.
    Options(String),
    /// Punctuation and symbolic operators: `( ) { } , . == != < > <= >= && || !`.
    Sym(&'static str),
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    /// 1-based character position where the token starts.
    pub pos: usize,
}

/// Splits the predicate into tokens.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, PredicateError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == '_' || c == '#' {
            // `#` escapes a reserved word used as a key.
            let start = if c == '#' { i + 1 } else { i };
            i = start;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i == start {
                return Err(PredicateError::new(
                    pos,
                    "`#` must be followed by a key name",
                ));
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else if c == '$' || c == '@' {
            i += 1;
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i == start {
                return Err(PredicateError::new(
                    pos,
                    format!("`{c}` must be followed by a name"),
                ));
            }
            let name: String = chars[start..i].iter().collect();
            if c == '$' {
                Tok::Var(name)
            } else {
                Tok::At(name)
            }
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            lex_number(&chars, &mut i, pos)?
        } else if c == '"' || c == '\'' {
            lex_string(&chars, &mut i, pos)?
        } else if c == '[' {
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if chars.get(i) != Some(&']') {
                return Err(PredicateError::new(
                    pos,
                    "comparison options must look like [c], [d] or [cd]",
                ));
            }
            let options: String = chars[start..i].iter().collect();
            i += 1;
            Tok::Options(options)
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = match two.as_str() {
                "==" => Some("=="),
                "!=" | "<>" => Some("!="),
                "<=" | "=<" => Some("<="),
                ">=" | "=>" => Some(">="),
                "&&" => Some("&&"),
                "||" => Some("||"),
                _ => None,
            };
            if let Some(sym) = sym {
                i += 2;
                Tok::Sym(sym)
            } else {
                i += 1;
                Tok::Sym(match c {
                    '=' => "==",
                    '<' => "<",
                    '>' => ">",
                    '!' => "!",
                    '(' => "(",
                    ')' => ")",
                    '{' => "{",
                    '}' => "}",
                    ',' => ",",
                    '.' => ".",
                    other => {
                        return Err(PredicateError::new(
                            pos,
                            format!("unexpected character `{other}`"),
                        ));
                    }
                })
            }
        };
        tokens.push(Token { tok, pos });
    }
    Ok(tokens)
}

fn lex_number(chars: &[char], i: &mut usize, pos: usize) -> Result<Tok, PredicateError> {
    let start = *i;
    if chars[*i] == '-' {
        *i += 1;
    }
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        *i += 1;
    }
    let mut real = false;
    if chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(char::is_ascii_digit) {
        real = true;
        *i += 1;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    }
    if matches!(chars.get(*i), Some('e' | 'E')) {
        let mut j = *i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            real = true;
            *i = j;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
        }
    }
    let text: String = chars[start..*i].iter().collect();
    if real {
        text.parse::<f64>()
            .map(Tok::Real)
            .map_err(|_| PredicateError::new(pos, format!("`{text}` is not a number")))
    } else {
        // Integers too large for i64 become reals, as NSNumber would hold them.
        Ok(text.parse::<i64>().map_or_else(
            |_| Tok::Real(text.parse::<f64>().unwrap_or(f64::MAX)),
            Tok::Int,
        ))
    }
}

fn lex_string(chars: &[char], i: &mut usize, pos: usize) -> Result<Tok, PredicateError> {
    let quote = chars[*i];
    *i += 1;
    let mut out = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(PredicateError::new(
                pos,
                format!("string starting here has no closing {quote}"),
            ));
        };
        *i += 1;
        if c == quote {
            return Ok(Tok::Str(out));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&escaped) = chars.get(*i) else {
            return Err(PredicateError::new(*i, "a backslash ends the predicate"));
        };
        *i += 1;
        match escaped {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            'u' => {
                let hex: String = chars[*i..chars.len().min(*i + 4)].iter().collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        PredicateError::new(*i - 1, "\\u must be followed by four hex digits")
                    })?;
                *i += 4;
                out.push(ch);
            }
            other => out.push(other),
        }
    }
}
