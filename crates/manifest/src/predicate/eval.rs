//! Evaluation with NSComparisonPredicate semantics over borrowed fact values.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::text::{compile_regex, fold, like};
use super::{Comparison, Expr, Member, Node, Op, Quantifier, StrOptions};
use crate::facts::{FactValue, Facts, Timestamp, names};

/// What a predicate sees: the device's facts, plus the effective `catalogs` of the manifest
/// being processed (only for manifest conditions, never for `installable_condition`).
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    facts: &'a Facts,
    catalogs: Option<&'a FactValue>,
}

impl<'a> Bindings<'a> {
    /// Facts alone.
    pub fn new(facts: &'a Facts) -> Self {
        Self {
            facts,
            catalogs: None,
        }
    }

    /// Facts plus the `catalogs` fact (an array of strings); it overrides any `catalogs` fact.
    pub fn with_catalogs(facts: &'a Facts, catalogs: &'a FactValue) -> Self {
        Self {
            facts,
            catalogs: Some(catalogs),
        }
    }

    fn key(&self, name: &str) -> Option<&'a FactValue> {
        if name == names::CATALOGS
            && let Some(catalogs) = self.catalogs
        {
            return Some(catalogs);
        }
        self.facts.get(name)
    }
}

/// A value during evaluation: borrowed from facts or literals where possible.
#[derive(Debug, Clone)]
enum Val<'a> {
    /// A missing key or NIL.
    Nil,
    Ref(&'a FactValue),
    Num(f64),
    Date(Timestamp),
    List(Vec<Val<'a>>),
}

enum Shape<'v, 'a> {
    Nil,
    Num(f64),
    Str(&'a str),
    Date(Timestamp),
    List(Items<'v, 'a>),
    Dict,
}

/// A collection seen without copying: a fact array or a computed list.
#[derive(Clone, Copy)]
enum Items<'v, 'a> {
    Facts(&'a [FactValue]),
    Vals(&'v [Val<'a>]),
}

impl<'a> Items<'_, 'a> {
    fn len(&self) -> usize {
        match self {
            Items::Facts(items) => items.len(),
            Items::Vals(items) => items.len(),
        }
    }

    fn get(&self, i: usize) -> Val<'a> {
        match self {
            Items::Facts(items) => items.get(i).map_or(Val::Nil, Val::Ref),
            Items::Vals(items) => items.get(i).cloned().unwrap_or(Val::Nil),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<'a> Val<'a> {
    fn shape(&self) -> Shape<'_, 'a> {
        match self {
            Val::Nil => Shape::Nil,
            Val::Num(n) => Shape::Num(*n),
            Val::Date(d) => Shape::Date(*d),
            Val::List(items) => Shape::List(Items::Vals(items)),
            Val::Ref(v) => match v {
                FactValue::Bool(b) => Shape::Num(f64::from(u8::from(*b))),
                FactValue::Integer(i) => Shape::Num(*i as f64),
                FactValue::Real(r) => Shape::Num(*r),
                FactValue::String(s) => Shape::Str(s),
                FactValue::Date(d) => Shape::Date(*d),
                FactValue::Array(items) => Shape::List(Items::Facts(items)),
                FactValue::Dict(_) => Shape::Dict,
            },
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Val::Nil)
    }
}

struct Evaluator<'a> {
    bindings: Bindings<'a>,
    vars: Vec<(&'a str, Val<'a>)>,
}

pub(super) fn evaluate(root: &Node, bindings: &Bindings<'_>) -> bool {
    let mut evaluator = Evaluator {
        bindings: *bindings,
        vars: Vec::new(),
    };
    evaluator.node(root)
}

impl<'a> Evaluator<'a> {
    fn node(&mut self, node: &'a Node) -> bool {
        match node {
            Node::Const(b) => *b,
            Node::Not(inner) => !self.node(inner),
            Node::And(terms) => terms.iter().all(|t| self.node(t)),
            Node::Or(terms) => terms.iter().any(|t| self.node(t)),
            Node::Compare(cmp) => self.compare(cmp),
        }
    }

    fn compare(&mut self, cmp: &'a Comparison) -> bool {
        let left = self.expr(&cmp.left);
        let right = self.expr(&cmp.right);
        match cmp.quantifier {
            None => test(&left, &right, cmp),
            Some(quantifier) => {
                let Shape::List(items) = left.shape() else {
                    // NSPredicate raises on an aggregate over a non-collection; Munki
                    // treats the exception as false.
                    return false;
                };
                match quantifier {
                    Quantifier::Any => items.iter().any(|item| test(&item, &right, cmp)),
                    Quantifier::All => items.iter().all(|item| test(&item, &right, cmp)),
                    Quantifier::None => !items.iter().any(|item| test(&item, &right, cmp)),
                }
            }
        }
    }

    fn expr(&mut self, expr: &'a Expr) -> Val<'a> {
        match expr {
            Expr::Literal(v) => Val::Ref(v),
            Expr::Nil => Val::Nil,
            Expr::Key(name) => self.bindings.key(name).map_or(Val::Nil, Val::Ref),
            Expr::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| *n == name.as_str())
                .map_or(Val::Nil, |(_, v)| v.clone()),
            Expr::Array(items) => Val::List(items.iter().map(|e| self.expr(e)).collect()),
            Expr::CastToDate(inner) => match self.expr(inner).shape() {
                Shape::Num(n) => Val::Date(Timestamp(n + Timestamp::APPLE_REFERENCE_OFFSET)),
                Shape::Date(d) => Val::Date(d),
                Shape::Str(s) => super::text::parse_date_literal(s).map_or(Val::Nil, Val::Date),
                _ => Val::Nil,
            },
            Expr::Subquery {
                collection,
                var,
                predicate,
            } => {
                let collection = self.expr(collection);
                let Shape::List(items) = collection.shape() else {
                    return Val::Nil;
                };
                let mut kept = Vec::new();
                for item in items.iter() {
                    self.vars.push((var.as_str(), item.clone()));
                    let keep = self.node(predicate);
                    self.vars.pop();
                    if keep {
                        kept.push(item);
                    }
                }
                Val::List(kept)
            }
            Expr::Member { base, member } => {
                let base = self.expr(base);
                member_of(base, member)
            }
        }
    }
}

/// Key-value coding: a key of a dict is its value; a key of an array maps over the array.
fn member_of<'a>(base: Val<'a>, member: &Member) -> Val<'a> {
    match member {
        Member::Count => match base.shape() {
            Shape::List(items) => Val::Num(items.len() as f64),
            _ => match base {
                Val::Ref(FactValue::Dict(d)) => Val::Num(d.len() as f64),
                _ => Val::Nil,
            },
        },
        Member::Key(key) => match base {
            Val::Ref(FactValue::Dict(d)) => d.get(key).map_or(Val::Nil, Val::Ref),
            Val::Ref(FactValue::Array(items)) => Val::List(
                items
                    .iter()
                    .map(|item| member_of(Val::Ref(item), member))
                    .collect(),
            ),
            Val::List(items) => Val::List(
                items
                    .into_iter()
                    .map(|item| member_of(item, member))
                    .collect(),
            ),
            _ => Val::Nil,
        },
    }
}

/// One comparison of two values.
fn test(left: &Val<'_>, right: &Val<'_>, cmp: &Comparison) -> bool {
    let options = cmp.options;
    // A missing key makes every comparison false (Munki: an unknown key evaluates false),
    // except an explicit test against NIL.
    if left.is_nil() || right.is_nil() {
        return match cmp.op {
            Op::Eq => left.is_nil() && right.is_nil(),
            Op::Ne => left.is_nil() != right.is_nil() && matches!(cmp.right, Expr::Nil),
            _ => false,
        };
    }
    match cmp.op {
        Op::Eq => equal(left, right, options),
        Op::Ne => !equal(left, right, options),
        Op::Lt => order(left, right, options) == Some(Ordering::Less),
        Op::Le => matches!(
            order(left, right, options),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::Gt => order(left, right, options) == Some(Ordering::Greater),
        Op::Ge => matches!(
            order(left, right, options),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::BeginsWith => strings(left, right, options).is_some_and(|(l, r)| l.starts_with(&*r)),
        Op::EndsWith => strings(left, right, options).is_some_and(|(l, r)| l.ends_with(&*r)),
        Op::Like => strings(left, right, options).is_some_and(|(l, r)| like(&l, &r)),
        Op::Matches => matches_regex(left, right, cmp),
        Op::Contains => contains(left, right, options),
        Op::In => contains(right, left, options),
        Op::Between => match right.shape() {
            Shape::List(bounds) if bounds.len() == 2 => {
                matches!(
                    order(left, &bounds.get(0), options),
                    Some(Ordering::Greater | Ordering::Equal)
                ) && matches!(
                    order(left, &bounds.get(1), options),
                    Some(Ordering::Less | Ordering::Equal)
                )
            }
            _ => false,
        },
    }
}

/// `haystack CONTAINS needle`: membership for a collection, substring for a string.
fn contains(haystack: &Val<'_>, needle: &Val<'_>, options: StrOptions) -> bool {
    match haystack.shape() {
        Shape::List(items) => items.iter().any(|item| equal(&item, needle, options)),
        Shape::Str(_) => strings(haystack, needle, options).is_some_and(|(h, n)| h.contains(&*n)),
        _ => false,
    }
}

fn matches_regex(left: &Val<'_>, right: &Val<'_>, cmp: &Comparison) -> bool {
    let Shape::Str(text) = left.shape() else {
        return false;
    };
    let text = fold(
        text,
        StrOptions {
            case_insensitive: false,
            ..cmp.options
        },
    );
    if let Some(regex) = &cmp.regex {
        return regex.is_match(&text);
    }
    let Shape::Str(pattern) = right.shape() else {
        return false;
    };
    compile_regex(pattern, cmp.options.case_insensitive).is_ok_and(|re| re.is_match(&text))
}

fn strings<'l>(
    left: &'l Val<'_>,
    right: &'l Val<'_>,
    options: StrOptions,
) -> Option<(Cow<'l, str>, Cow<'l, str>)> {
    match (left.shape(), right.shape()) {
        (Shape::Str(l), Shape::Str(r)) => Some((fold(l, options), fold(r, options))),
        _ => None,
    }
}

fn equal(left: &Val<'_>, right: &Val<'_>, options: StrOptions) -> bool {
    match (left.shape(), right.shape()) {
        (Shape::Nil, Shape::Nil) => true,
        // NSNumber equality is exact, as here.
        (Shape::Num(l), Shape::Num(r)) => l.partial_cmp(&r) == Some(Ordering::Equal),
        (Shape::Str(l), Shape::Str(r)) => fold(l, options) == fold(r, options),
        (Shape::Date(l), Shape::Date(r)) => l == r,
        (Shape::List(l), Shape::List(r)) => {
            l.len() == r.len() && l.iter().zip(r.iter()).all(|(a, b)| equal(&a, &b, options))
        }
        (Shape::Dict, Shape::Dict) => match (left, right) {
            (Val::Ref(a), Val::Ref(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// Ordering for `< <= > >=`: numbers numerically, strings lexicographically (NSString
/// `compare:`), dates chronologically; anything else is not ordered (false).
fn order(left: &Val<'_>, right: &Val<'_>, options: StrOptions) -> Option<Ordering> {
    match (left.shape(), right.shape()) {
        (Shape::Num(l), Shape::Num(r)) => l.partial_cmp(&r),
        (Shape::Str(l), Shape::Str(r)) => Some(fold(l, options).cmp(&fold(r, options))),
        (Shape::Date(l), Shape::Date(r)) => l.0.partial_cmp(&r.0),
        _ => None,
    }
}
