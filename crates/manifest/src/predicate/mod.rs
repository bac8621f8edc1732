//! Munki conditions: a parser and evaluator for the NSPredicate subset Munki admins use.
//!
//! Grammar (keywords are case-insensitive):
//!
//! ```text
//! predicate  := or
//! or         := and (("OR" | "||") and)*
//! and        := not (("AND" | "&&") not)*
//! not        := ("NOT" | "!") not | "(" predicate ")" | TRUEPREDICATE | FALSEPREDICATE | comparison
//! comparison := [ANY | SOME | ALL | NONE] expr operator [options] expr
//! operator   := == = != <> < > <= >= =< => BEGINSWITH ENDSWITH CONTAINS LIKE MATCHES IN BETWEEN
//! options    := [c] | [d] | [cd]
//! expr       := primary ("." key | ".@count")*
//! primary    := string | number | TRUE | FALSE | YES | NO | NIL | NULL | key | $var
//!             | "{" expr ("," expr)* "}" | SUBQUERY(expr, $var, predicate)
//!             | CAST(expr, "NSDate") | "(" expr ")"
//! ```
//!
//! Parsing is recursive descent with a depth limit ([`MAX_PREDICATE_DEPTH`]) so hostile input
//! cannot overflow the stack; syntax errors carry the 1-based character position.

mod eval;
mod lexer;
mod parser;
mod text;

use std::fmt;

use regex::Regex;

use crate::facts::{FactValue, Facts};

pub use eval::Bindings;
pub(crate) use text::parse_date_literal;

/// How deeply parentheses, NOT, array literals and subqueries may nest.
pub const MAX_PREDICATE_DEPTH: usize = 64;

/// A syntax error in a predicate, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("predicate syntax error at character {position}: {message}")]
pub struct PredicateError {
    /// 1-based character position (not byte offset) in the predicate text.
    pub position: usize,
    /// What was wrong.
    pub message: String,
}

impl PredicateError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// A parsed predicate, ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct Predicate {
    root: Node,
}

impl Predicate {
    /// Parses an NSPredicate format string.
    pub fn parse(text: &str) -> Result<Self, PredicateError> {
        parser::parse(text).map(|root| Self { root })
    }

    /// Evaluates against facts alone (as for `installable_condition`).
    pub fn evaluate(&self, facts: &Facts) -> bool {
        self.evaluate_with(&Bindings::new(facts))
    }

    /// Evaluates against facts plus the `catalogs` of the manifest being processed.
    pub fn evaluate_with(&self, bindings: &Bindings<'_>) -> bool {
        eval::evaluate(&self.root, bindings)
    }
}

/// Parses and evaluates in one step; a syntax error counts as false (Munki logs it and
/// moves on). This is the entry point the fuzz target drives.
pub fn evaluate_text(text: &str, facts: &Facts) -> Result<bool, PredicateError> {
    Predicate::parse(text).map(|p| p.evaluate(facts))
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Compare(Box<Comparison>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantifier {
    Any,
    All,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BeginsWith,
    EndsWith,
    Contains,
    Like,
    Matches,
    In,
    Between,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StrOptions {
    case_insensitive: bool,
    diacritic_insensitive: bool,
}

#[derive(Debug, Clone)]
struct Comparison {
    quantifier: Option<Quantifier>,
    left: Expr,
    op: Op,
    options: StrOptions,
    right: Expr,
    /// For MATCHES against a literal: compiled once at parse time.
    regex: Option<Regex>,
}

#[derive(Debug, Clone)]
enum Expr {
    Literal(FactValue),
    Nil,
    Key(String),
    Var(String),
    Array(Vec<Expr>),
    Subquery {
        collection: Box<Expr>,
        var: String,
        predicate: Box<Node>,
    },
    /// `CAST(x, "NSDate")` of a non-literal (literals are cast at parse time).
    CastToDate(Box<Expr>),
    Member {
        base: Box<Expr>,
        member: Member,
    },
}

#[derive(Debug, Clone)]
enum Member {
    Key(String),
    Count,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::BeginsWith => "BEGINSWITH",
            Op::EndsWith => "ENDSWITH",
            Op::Contains => "CONTAINS",
            Op::Like => "LIKE",
            Op::Matches => "MATCHES",
            Op::In => "IN",
            Op::Between => "BETWEEN",
        })
    }
}
