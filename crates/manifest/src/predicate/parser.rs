//! Recursive-descent parser with a nesting limit.

use regex::Regex;

use super::lexer::{Tok, Token, tokenize};
use super::text::{compile_regex, parse_date_literal};
use super::{
    Comparison, Expr, MAX_PREDICATE_DEPTH, Member, Node, Op, PredicateError, Quantifier, StrOptions,
};
use crate::facts::{FactValue, Timestamp};

pub(super) fn parse(text: &str) -> Result<Node, PredicateError> {
    let tokens = tokenize(text)?;
    let end = text.chars().count() + 1;
    let close_of = matching_parens(&tokens);
    let mut parser = Parser {
        tokens,
        close_of,
        next: 0,
        depth: 0,
        end,
    };
    if parser.tokens.is_empty() {
        return Err(PredicateError::new(1, "the predicate is empty"));
    }
    let node = parser.predicate()?;
    if let Some(tok) = parser.peek() {
        return Err(PredicateError::new(
            tok.pos,
            format!(
                "unexpected {} after a complete predicate",
                describe(&tok.tok)
            ),
        ));
    }
    Ok(node)
}

/// For each `(` token, the index of its matching `)`, found once in linear time.
fn matching_parens(tokens: &[Token]) -> Vec<Option<usize>> {
    let mut close_of = vec![None; tokens.len()];
    let mut open = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.tok {
            Tok::Sym("(") => open.push(i),
            Tok::Sym(")") => {
                if let Some(start) = open.pop() {
                    close_of[start] = Some(i);
                }
            }
            _ => {}
        }
    }
    close_of
}

struct Parser {
    tokens: Vec<Token>,
    close_of: Vec<Option<usize>>,
    next: usize,
    depth: usize,
    /// Position reported for "unexpected end".
    end: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Var(s) => format!("`${s}`"),
        Tok::At(s) => format!("`@{s}`"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Real(r) => format!("number {r}"),
        Tok::Options(o) => format!("`[{o}]`"),
        Tok::Sym(s) => format!("`{s}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn pos(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.next).cloned();
        self.next += 1;
        tok
    }

    /// A `(` at the start of a comparison opens an expression when an operator (or `.`)
    /// follows its matching `)`, as in `(a) == 1`; otherwise it groups a predicate.
    fn paren_starts_expression(&self) -> bool {
        let Some(Some(close)) = self.close_of.get(self.next) else {
            return false;
        };
        match self.tokens.get(close + 1).map(|t| &t.tok) {
            Some(Tok::Sym(s)) => matches!(*s, "==" | "!=" | "<" | "<=" | ">" | ">=" | "."),
            Some(Tok::Options(_)) => true,
            Some(Tok::Ident(word)) => matches!(
                word.to_ascii_uppercase().as_str(),
                "BEGINSWITH" | "ENDSWITH" | "CONTAINS" | "LIKE" | "MATCHES" | "IN" | "BETWEEN"
            ),
            _ => false,
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(s), .. }) if s.eq_ignore_ascii_case(word))
    }

    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Sym(s), .. }) if *s == sym)
    }

    fn expect_sym(&mut self, sym: &str, context: &str) -> Result<(), PredicateError> {
        if self.is_sym(sym) {
            self.next += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{sym}` {context}")))
        }
    }

    fn unexpected(&self, wanted: &str) -> PredicateError {
        match self.peek() {
            Some(tok) => PredicateError::new(
                tok.pos,
                format!("expected {wanted}, found {}", describe(&tok.tok)),
            ),
            None => PredicateError::new(
                self.end,
                format!("expected {wanted}, but the predicate ends"),
            ),
        }
    }

    fn enter(&mut self) -> Result<(), PredicateError> {
        self.depth += 1;
        if self.depth > MAX_PREDICATE_DEPTH {
            return Err(PredicateError::new(
                self.pos(),
                format!("nesting deeper than {MAX_PREDICATE_DEPTH} levels; simplify the condition"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn predicate(&mut self) -> Result<Node, PredicateError> {
        self.enter()?;
        let result = self.or();
        self.leave();
        result
    }

    fn or(&mut self) -> Result<Node, PredicateError> {
        let mut terms = vec![self.and()?];
        while self.is_keyword("OR") || self.is_sym("||") {
            self.next += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Node, PredicateError> {
        let mut terms = vec![self.not()?];
        while self.is_keyword("AND") || self.is_sym("&&") {
            self.next += 1;
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::And(terms)
        })
    }

    fn not(&mut self) -> Result<Node, PredicateError> {
        self.enter()?;
        let result = self.not_inner();
        self.leave();
        result
    }

    fn not_inner(&mut self) -> Result<Node, PredicateError> {
        if self.is_keyword("NOT") || self.is_sym("!") {
            self.next += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        if self.is_keyword("TRUEPREDICATE") {
            self.next += 1;
            return Ok(Node::Const(true));
        }
        if self.is_keyword("FALSEPREDICATE") {
            self.next += 1;
            return Ok(Node::Const(false));
        }
        if self.is_sym("(") && !self.paren_starts_expression() {
            self.next += 1;
            let inner = self.predicate()?;
            self.expect_sym(")", "to close the parenthesis")?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, PredicateError> {
        let quantifier = if self.is_keyword("ANY") || self.is_keyword("SOME") {
            self.next += 1;
            Some(Quantifier::Any)
        } else if self.is_keyword("ALL") {
            self.next += 1;
            Some(Quantifier::All)
        } else if self.is_keyword("NONE") {
            self.next += 1;
            Some(Quantifier::None)
        } else {
            None
        };
        let left = self.expr()?;
        let op_pos = self.pos();
        let op = self.operator()?;
        let options = self.options()?;
        let right_pos = self.pos();
        let right = self.expr()?;
        let regex = match (&op, &right) {
            (Op::Matches, Expr::Literal(FactValue::String(pattern))) => Some(
                compile_regex(pattern, options.case_insensitive)
                    .map_err(|e| PredicateError::new(right_pos, e))?,
            ),
            _ => None::<Regex>,
        };
        if op == Op::Between && !matches!(&right, Expr::Array(items) if items.len() == 2) {
            return Err(PredicateError::new(
                op_pos,
                "BETWEEN needs a two-element array on the right, e.g. {1, 5}",
            ));
        }
        Ok(Node::Compare(Box::new(Comparison {
            quantifier,
            left,
            op,
            options,
            right,
            regex,
        })))
    }

    fn operator(&mut self) -> Result<Op, PredicateError> {
        let Some(token) = self.peek() else {
            return Err(self.unexpected("a comparison operator"));
        };
        let op = match &token.tok {
            Tok::Sym("==") => Op::Eq,
            Tok::Sym("!=") => Op::Ne,
            Tok::Sym("<") => Op::Lt,
            Tok::Sym("<=") => Op::Le,
            Tok::Sym(">") => Op::Gt,
            Tok::Sym(">=") => Op::Ge,
            Tok::Ident(word) => match word.to_ascii_uppercase().as_str() {
                "BEGINSWITH" => Op::BeginsWith,
                "ENDSWITH" => Op::EndsWith,
                "CONTAINS" => Op::Contains,
                "LIKE" => Op::Like,
                "MATCHES" => Op::Matches,
                "IN" => Op::In,
                "BETWEEN" => Op::Between,
                _ => return Err(self.unexpected("a comparison operator")),
            },
            _ => return Err(self.unexpected("a comparison operator")),
        };
        self.next += 1;
        Ok(op)
    }

    fn options(&mut self) -> Result<StrOptions, PredicateError> {
        let Some(Token {
            tok: Tok::Options(text),
            pos,
        }) = self.peek().cloned()
        else {
            return Ok(StrOptions::default());
        };
        self.next += 1;
        let mut options = StrOptions::default();
        for c in text.chars() {
            match c.to_ascii_lowercase() {
                'c' => options.case_insensitive = true,
                'd' => options.diacritic_insensitive = true,
                // `n` (normalized) only promises the strings are pre-normalised.
                'n' => {}
                _ => {
                    return Err(PredicateError::new(
                        pos,
                        format!("unknown comparison option `{c}`; use [c], [d] or [cd]"),
                    ));
                }
            }
        }
        Ok(options)
    }

    fn expr(&mut self) -> Result<Expr, PredicateError> {
        self.enter()?;
        let result = self.expr_inner();
        self.leave();
        result
    }

    fn expr_inner(&mut self) -> Result<Expr, PredicateError> {
        let mut expr = self.primary()?;
        while self.is_sym(".") {
            self.next += 1;
            match self.bump() {
                Some(Token {
                    tok: Tok::Ident(key),
                    ..
                }) => {
                    expr = Expr::Member {
                        base: Box::new(expr),
                        member: Member::Key(key),
                    };
                }
                Some(Token {
                    tok: Tok::At(op), ..
                }) if op.eq_ignore_ascii_case("count") => {
                    expr = Expr::Member {
                        base: Box::new(expr),
                        member: Member::Count,
                    };
                }
                Some(Token { tok, pos }) => {
                    return Err(PredicateError::new(
                        pos,
                        format!(
                            "expected a key or @count after `.`, found {}",
                            describe(&tok)
                        ),
                    ));
                }
                None => {
                    return Err(PredicateError::new(
                        self.end,
                        "expected a key or @count after `.`, but the predicate ends",
                    ));
                }
            }
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, PredicateError> {
        let Some(token) = self.bump() else {
            return Err(PredicateError::new(
                self.end,
                "expected a value or key, but the predicate ends",
            ));
        };
        match token.tok {
            Tok::Str(s) => Ok(Expr::Literal(FactValue::String(s))),
            Tok::Int(i) => Ok(Expr::Literal(FactValue::Integer(i))),
            Tok::Real(r) => Ok(Expr::Literal(FactValue::Real(r))),
            Tok::Var(v) => Ok(Expr::Var(v)),
            Tok::Sym("{") => {
                let mut items = Vec::new();
                if !self.is_sym("}") {
                    loop {
                        items.push(self.expr()?);
                        if self.is_sym(",") {
                            self.next += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect_sym("}", "to close the array")?;
                Ok(Expr::Array(items))
            }
            Tok::Sym("(") => {
                let inner = self.expr()?;
                self.expect_sym(")", "to close the parenthesis")?;
                Ok(inner)
            }
            Tok::Ident(word) => self.word(word, token.pos),
            other => Err(PredicateError::new(
                token.pos,
                format!("expected a value or key, found {}", describe(&other)),
            )),
        }
    }

    fn word(&mut self, word: String, pos: usize) -> Result<Expr, PredicateError> {
        match word.to_ascii_uppercase().as_str() {
            "TRUE" | "YES" => Ok(Expr::Literal(FactValue::Bool(true))),
            "FALSE" | "NO" => Ok(Expr::Literal(FactValue::Bool(false))),
            "NIL" | "NULL" => Ok(Expr::Nil),
            "SUBQUERY" => {
                self.expect_sym("(", "after SUBQUERY")?;
                let collection = self.expr()?;
                self.expect_sym(",", "after the SUBQUERY collection")?;
                let Some(Token {
                    tok: Tok::Var(var), ..
                }) = self.peek().cloned()
                else {
                    return Err(self.unexpected("a variable such as $item"));
                };
                self.next += 1;
                self.expect_sym(",", "after the SUBQUERY variable")?;
                let predicate = self.predicate()?;
                self.expect_sym(")", "to close SUBQUERY")?;
                Ok(Expr::Subquery {
                    collection: Box::new(collection),
                    var,
                    predicate: Box::new(predicate),
                })
            }
            "CAST" => {
                self.expect_sym("(", "after CAST")?;
                let value_pos = self.pos();
                let value = self.expr()?;
                self.expect_sym(",", "after the CAST value")?;
                let type_pos = self.pos();
                let Some(Token {
                    tok: Tok::Str(target),
                    ..
                }) = self.peek().cloned()
                else {
                    return Err(self.unexpected("a quoted type name such as \"NSDate\""));
                };
                self.next += 1;
                self.expect_sym(")", "to close CAST")?;
                if target != "NSDate" {
                    return Err(PredicateError::new(
                        type_pos,
                        format!("CAST to {target:?} is not supported; only \"NSDate\" is"),
                    ));
                }
                match value {
                    Expr::Literal(FactValue::String(s)) => parse_date_literal(&s)
                        .map(|t| Expr::Literal(FactValue::Date(t)))
                        .ok_or_else(|| {
                            PredicateError::new(
                                value_pos,
                                format!("{s:?} is not a date; write it as 2016-03-02T00:00:00Z"),
                            )
                        }),
                    Expr::Literal(FactValue::Integer(i)) => Ok(Expr::Literal(FactValue::Date(
                        Timestamp(i as f64 + Timestamp::APPLE_REFERENCE_OFFSET),
                    ))),
                    Expr::Literal(FactValue::Real(r)) => Ok(Expr::Literal(FactValue::Date(
                        Timestamp(r + Timestamp::APPLE_REFERENCE_OFFSET),
                    ))),
                    other => Ok(Expr::CastToDate(Box::new(other))),
                }
            }
            _ => {
                if is_reserved(&word) {
                    return Err(PredicateError::new(
                        pos,
                        format!(
                            "`{word}` is a reserved word here; write #{word} to use it as a key"
                        ),
                    ));
                }
                Ok(Expr::Key(word))
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "AND",
        "OR",
        "NOT",
        "ANY",
        "SOME",
        "ALL",
        "NONE",
        "IN",
        "BEGINSWITH",
        "ENDSWITH",
        "CONTAINS",
        "LIKE",
        "MATCHES",
        "BETWEEN",
        "TRUEPREDICATE",
        "FALSEPREDICATE",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> PredicateError {
        parse(text).unwrap_err()
    }

    #[test]
    fn positions_point_at_the_problem() {
        assert_eq!(err("os_vers == ").position, 12);
        assert_eq!(err("machine_type = 'laptop' AND").position, 28);
        assert_eq!(err("os_vers ~ '1'").position, 9);
        let e = err("name == 'unterminated");
        assert_eq!(e.position, 9);
        assert!(e.message.contains("closing"), "{e}");
    }

    #[test]
    fn depth_is_limited() {
        let deep = format!("{}TRUEPREDICATE{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = err(&deep);
        assert!(e.message.contains("nesting"), "{e}");
        let not_chain = format!("{}TRUEPREDICATE", "NOT ".repeat(10_000));
        assert!(err(&not_chain).message.contains("nesting"));
        let arrays = format!("x IN {}1{}", "{".repeat(10_000), "}".repeat(10_000));
        assert!(err(&arrays).message.contains("nesting"));
    }

    #[test]
    fn bad_regex_is_a_syntax_error_at_the_pattern() {
        let e = err("hostname MATCHES '(['");
        assert_eq!(e.position, 18);
    }

    #[test]
    fn bad_cast_is_reported() {
        assert!(
            err("date > CAST('yesterday', 'NSDate')")
                .message
                .contains("not a date")
        );
        assert!(
            err("date > CAST('2020-01-01T00:00:00Z', 'NSString')")
                .message
                .contains("not supported")
        );
    }

    #[test]
    fn trailing_tokens_are_refused() {
        assert_eq!(err("a == 1 b").position, 8);
    }
}
