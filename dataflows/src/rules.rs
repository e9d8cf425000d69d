//! Rule expressions: CEL parsed by the `cel` crate, type-checked and compiled once into a
//! small tree over feature ids, flattened into postfix instructions that evaluate without
//! allocation.
//!
//! The parser is CEL's own; typing and evaluation are ours, for speed (rules run for every
//! changed customer at every tick). Supported: number, boolean and null literals, feature
//! names, `! - + * / % < <= > >= == != && || ?:`, and the functions `min`, `max`, `abs`,
//! `double` and `int` (identity on numbers). Numbers are compared numerically whether
//! written as ints or doubles. Anything else fails at config load: an unknown feature or
//! function, a string, an operand of the wrong type (`!5`, `1 + true`), or a rule whose
//! value is not a boolean.
//!
//! **Null** follows SQL's three-valued logic. docs/CONFIG.md ("Null in rules") is the one
//! statement of it; [`Expression::eval`] implements it. A comparison or arithmetic with
//! null is null (unknown), and so is a result that is not a finite number (a division by
//! zero); `x == null` and `x != null` test for null; `!`, `&&` and `||` are Kleene's; a
//! rule fires only when its value is `true`.
//!
//! **Limits.** The `cel` parser (ANTLR) recurses once per level of the source's parse tree,
//! while parsing, while building its expression and while dropping both; a source nested
//! deeper than the thread's stack allows aborts the process (a 20,000-term rule did, in
//! `check-config` and `replay`). So before it runs, [`check_limits`] scans the source
//! iteratively and rejects more than [`MAX_EXPR_BYTES`] bytes, or a nesting bound above
//! [`MAX_EXPR_DEPTH`]: each bracket, unary operator and operator of an arithmetic or
//! comparison chain counts one level (such chains are left-deep trees), and a `&&`/`||`
//! chain of n terms only about 2·log2(n) (CEL balances it).
//!
//! Measured on a release build of cel 0.15, in a thread of a chosen stack size: a bracket
//! level costs the parser about 6.6 KiB of stack, an operator of a chain about 0.4 KiB
//! (unary operators nothing), on top of 50–110 KiB. The most demanding sources within the
//! limits (30 nested brackets or lists) need about 280 KiB, a seventh of the 2 MiB of a
//! timely worker thread, which compiles live strategy changes (the main thread has 8 MiB).
//! Without the limits, 16 KiB of `a+a+…` would need about 3 MiB. The test
//! `expressions_at_the_limits_compile_on_a_512_kib_stack` pins this.

mod limits;

pub use limits::{check_limits, nesting_bound, MAX_EXPR_BYTES, MAX_EXPR_DEPTH};

use cel::common::ast::operators as ops;
use cel::common::ast::{Expr, LiteralValue};
use cel::IdedExpr;

/// A value during evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// Null: an undefined feature, or unknown (a comparison with null).
    Null,
    /// A boolean.
    Bool(bool),
    /// A finite number.
    Num(f64),
}

/// The static type of a subexpression; `Null` is the literal `null` (or an expression that
/// is always null), which fits any operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Null,
    Bool,
    Num,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Null => "null",
            Ty::Bool => "a boolean",
            Ty::Num => "a number",
        }
    }

    /// The common type of two branches or operands, if they have one.
    fn unify(self, other: Ty) -> Option<Ty> {
        match (self, other) {
            (Ty::Null, t) | (t, Ty::Null) => Some(t),
            (a, b) if a == b => Some(a),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Min,
    Max,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Const(Val),
    Feature(usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    Abs(Box<Node>),
    /// `x == null` (true) or `x != null` (false): the null test, never unknown.
    IsNull(Box<Node>, bool),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Bin(Bin, Box<Node>, Box<Node>),
}

/// One instruction of the flattened expression (postfix order).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Const(Val),
    Feature(usize),
    Not,
    Neg,
    Abs,
    IsNull(bool),
    And,
    Or,
    Cond,
    Bin(Bin),
}

/// A compiled rule expression: the tree flattened into postfix instructions evaluated on a
/// small fixed stack (no allocation, no pointer chasing).
#[derive(Clone, Debug, PartialEq)]
pub struct Expression {
    root: Node,
    ops: Vec<Op>,
    depth: usize,
    features: Vec<usize>,
}

/// Deepest stack the flat evaluation holds; deeper expressions (which the depth limit
/// keeps rare and bounded) fall back to the tree walk.
const MAX_STACK: usize = 32;

fn flatten(n: &Node, ops: &mut Vec<Op>, depth: usize, max: &mut usize) {
    *max = (*max).max(depth + 1);
    match n {
        Node::Const(v) => ops.push(Op::Const(*v)),
        Node::Feature(i) => ops.push(Op::Feature(*i)),
        Node::Not(a) | Node::Neg(a) | Node::Abs(a) | Node::IsNull(a, _) => {
            flatten(a, ops, depth, max);
            ops.push(match n {
                Node::Not(_) => Op::Not,
                Node::Neg(_) => Op::Neg,
                Node::IsNull(_, eq) => Op::IsNull(*eq),
                _ => Op::Abs,
            });
        }
        Node::And(a, b) | Node::Or(a, b) | Node::Bin(_, a, b) => {
            flatten(a, ops, depth, max);
            flatten(b, ops, depth + 1, max);
            ops.push(match n {
                Node::And(..) => Op::And,
                Node::Or(..) => Op::Or,
                Node::Bin(op, ..) => Op::Bin(*op),
                _ => unreachable!("matched above"),
            });
        }
        Node::Cond(c, t, f) => {
            flatten(c, ops, depth, max);
            flatten(t, ops, depth + 1, max);
            flatten(f, ops, depth + 2, max);
            ops.push(Op::Cond);
        }
    }
}

impl Expression {
    /// Checks the limits, parses `source` with CEL, resolves feature names with `feature`,
    /// and type-checks it: the expression must yield a boolean.
    pub fn compile(
        source: &str,
        feature: impl Fn(&str) -> Option<usize>,
    ) -> Result<Expression, String> {
        check_limits(source)?;
        let program = cel::Program::compile(source).map_err(|e| format!("CEL parse error: {e}"))?;
        let mut features = Vec::new();
        let (root, ty) = lower(program.expression(), &feature, &mut features, 0)?;
        match ty {
            Ty::Bool => {}
            Ty::Num => return Err("the expression yields a number; a rule yields a boolean".into()),
            Ty::Null => return Err("the expression is always null; a rule yields a boolean".into()),
        }
        features.sort_unstable();
        features.dedup();
        let mut ops = Vec::new();
        let mut depth = 0;
        flatten(&root, &mut ops, 0, &mut depth);
        Ok(Expression {
            root,
            ops,
            depth,
            features,
        })
    }

    /// Evaluates against feature values (`None`, or a value that is not finite, is null).
    pub fn eval(&self, values: &[Option<f64>]) -> Val {
        if self.depth > MAX_STACK {
            return eval(&self.root, values);
        }
        let mut stack = [Val::Null; MAX_STACK];
        let mut sp = 0;
        for op in &self.ops {
            match *op {
                Op::Const(v) => {
                    stack[sp] = v;
                    sp += 1;
                }
                Op::Feature(i) => {
                    stack[sp] = feature(values, i);
                    sp += 1;
                }
                Op::Not => stack[sp - 1] = not(stack[sp - 1]),
                Op::Neg => stack[sp - 1] = num(stack[sp - 1], |x| -x),
                Op::Abs => stack[sp - 1] = num(stack[sp - 1], f64::abs),
                Op::IsNull(eq) => stack[sp - 1] = is_null(stack[sp - 1], eq),
                Op::And | Op::Or | Op::Bin(_) => {
                    let (a, b) = (stack[sp - 2], stack[sp - 1]);
                    sp -= 1;
                    stack[sp - 1] = match op {
                        Op::And => and(a, b),
                        Op::Or => or(a, b),
                        Op::Bin(bin) => binary(*bin, a, b),
                        _ => unreachable!("matched above"),
                    };
                }
                Op::Cond => {
                    let (c, t, f) = (stack[sp - 3], stack[sp - 2], stack[sp - 1]);
                    sp -= 2;
                    stack[sp - 1] = cond(c, t, f);
                }
            }
        }
        stack[0]
    }

    /// Evaluates by walking the tree (the reference the flat form is tested against).
    pub fn eval_tree(&self, values: &[Option<f64>]) -> Val {
        eval(&self.root, values)
    }

    /// True when the expression evaluates to `true` (not when false or null).
    pub fn fires(&self, values: &[Option<f64>]) -> bool {
        self.eval(values) == Val::Bool(true)
    }

    /// The feature ids the expression reads.
    pub fn features(&self) -> &[usize] {
        &self.features
    }
}

/// The operator as written, for messages (`_+_` → `+`).
fn symbol(name: &str) -> &str {
    match name {
        ops::CONDITIONAL => "?:",
        other => other.trim_matches('_'),
    }
}

fn lower(
    e: &IdedExpr,
    feature: &impl Fn(&str) -> Option<usize>,
    used: &mut Vec<usize>,
    depth: usize,
) -> Result<(Node, Ty), String> {
    // `check_limits` bounds the depth already; this keeps the recursion bounded even if
    // the `cel` parser ever builds deeper trees than the scan expects.
    if depth > MAX_EXPR_DEPTH {
        return Err(format!(
            "expression nests more than {MAX_EXPR_DEPTH} deep, the limit is {MAX_EXPR_DEPTH}"
        ));
    }
    let b = |n: Node| Box::new(n);
    match &e.expr {
        Expr::Literal(lit) => Ok(match lit {
            LiteralValue::Boolean(v) => (Node::Const(Val::Bool(*v.inner())), Ty::Bool),
            LiteralValue::Double(v) if v.inner().is_finite() => {
                (Node::Const(Val::Num(*v.inner())), Ty::Num)
            }
            LiteralValue::Double(v) => {
                return Err(format!("number literal {} is not finite", v.inner()));
            }
            LiteralValue::Int(v) => (Node::Const(Val::Num(*v.inner() as f64)), Ty::Num),
            LiteralValue::UInt(v) => (Node::Const(Val::Num(*v.inner() as f64)), Ty::Num),
            LiteralValue::Null => (Node::Const(Val::Null), Ty::Null),
            other => return Err(format!("unsupported literal {other:?}: rules use numbers")),
        }),
        Expr::Ident(name) => {
            let id = feature(name).ok_or_else(|| format!("unknown feature \"{name}\""))?;
            used.push(id);
            Ok((Node::Feature(id), Ty::Num))
        }
        Expr::Call(call) => {
            if call.target.is_some() {
                return Err(format!("unsupported method call \"{}\"", call.func_name));
            }
            let name = call.func_name.as_str();
            let op = symbol(name);
            let mut args = Vec::with_capacity(call.args.len());
            for a in &call.args {
                args.push(lower(a, feature, used, depth + 1)?);
            }
            let got = args.len();
            let arity = move |n: usize| {
                if got == n {
                    Ok(())
                } else {
                    Err(format!(
                        "\"{op}\" takes {n} argument{}",
                        if n == 1 { "" } else { "s" }
                    ))
                }
            };
            // Each operand must have type `want` (or be null).
            let expect = |want: Ty, got: Ty| {
                if got == want || got == Ty::Null {
                    Ok(())
                } else {
                    Err(format!(
                        "\"{op}\" needs {}, not {}",
                        want.name(),
                        got.name()
                    ))
                }
            };
            let bin = match name {
                ops::ADD => Some(Bin::Add),
                ops::SUBSTRACT => Some(Bin::Sub),
                ops::MULTIPLY => Some(Bin::Mul),
                ops::DIVIDE => Some(Bin::Div),
                ops::MODULO => Some(Bin::Rem),
                ops::LESS => Some(Bin::Lt),
                ops::LESS_EQUALS => Some(Bin::Le),
                ops::GREATER => Some(Bin::Gt),
                ops::GREATER_EQUALS => Some(Bin::Ge),
                ops::EQUALS => Some(Bin::Eq),
                ops::NOT_EQUALS => Some(Bin::Ne),
                "min" => Some(Bin::Min),
                "max" => Some(Bin::Max),
                _ => None,
            };
            if let Some(bin) = bin {
                arity(2)?;
                let (r, rt) = args.pop().expect("arity checked");
                let (l, lt) = args.pop().expect("arity checked");
                if matches!(bin, Bin::Eq | Bin::Ne) {
                    let eq = bin == Bin::Eq;
                    // Comparing with the literal null is the null test.
                    let null = |n: &Node| *n == Node::Const(Val::Null);
                    return Ok(match (null(&l), null(&r)) {
                        (true, true) => (Node::Const(Val::Bool(eq)), Ty::Bool),
                        (true, false) => (Node::IsNull(b(r), eq), Ty::Bool),
                        (false, true) => (Node::IsNull(b(l), eq), Ty::Bool),
                        (false, false) => {
                            if lt.unify(rt).is_none() {
                                return Err(format!(
                                    "\"{op}\" compares {} with {}",
                                    lt.name(),
                                    rt.name()
                                ));
                            }
                            (Node::Bin(bin, b(l), b(r)), Ty::Bool)
                        }
                    });
                }
                expect(Ty::Num, lt)?;
                expect(Ty::Num, rt)?;
                let ty = match bin {
                    Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge => Ty::Bool,
                    _ => Ty::Num,
                };
                return Ok((Node::Bin(bin, b(l), b(r)), ty));
            }
            let mut args = args.into_iter();
            let mut next = || args.next().expect("arity checked");
            match name {
                ops::LOGICAL_AND | ops::LOGICAL_OR => {
                    arity(2)?;
                    let ((l, lt), (r, rt)) = (next(), next());
                    expect(Ty::Bool, lt)?;
                    expect(Ty::Bool, rt)?;
                    let node = if name == ops::LOGICAL_AND {
                        Node::And(b(l), b(r))
                    } else {
                        Node::Or(b(l), b(r))
                    };
                    Ok((node, Ty::Bool))
                }
                ops::LOGICAL_NOT => {
                    arity(1)?;
                    let (a, t) = next();
                    expect(Ty::Bool, t)?;
                    Ok((Node::Not(b(a)), Ty::Bool))
                }
                ops::NEGATE | "abs" | "double" | "int" => {
                    arity(1)?;
                    let (a, t) = next();
                    expect(Ty::Num, t)?;
                    Ok((
                        match name {
                            ops::NEGATE => Node::Neg(b(a)),
                            "abs" => Node::Abs(b(a)),
                            _ => a,
                        },
                        Ty::Num,
                    ))
                }
                ops::CONDITIONAL => {
                    arity(3)?;
                    let ((c, ct), (t, tt), (f, ft)) = (next(), next(), next());
                    expect(Ty::Bool, ct)?;
                    let ty = tt.unify(ft).ok_or_else(|| {
                        format!(
                            "\"?:\" has branches of two types: {} and {}",
                            tt.name(),
                            ft.name()
                        )
                    })?;
                    Ok((Node::Cond(b(c), b(t), b(f)), ty))
                }
                other => Err(format!("unsupported function \"{}\"", symbol(other))),
            }
        }
        other => Err(format!("unsupported expression {other:?}")),
    }
}

fn eval(n: &Node, v: &[Option<f64>]) -> Val {
    match n {
        Node::Const(c) => *c,
        Node::Feature(i) => feature(v, *i),
        Node::Not(a) => not(eval(a, v)),
        Node::Neg(a) => num(eval(a, v), |x| -x),
        Node::Abs(a) => num(eval(a, v), f64::abs),
        Node::IsNull(a, eq) => is_null(eval(a, v), *eq),
        Node::And(a, b) => and(eval(a, v), eval(b, v)),
        Node::Or(a, b) => or(eval(a, v), eval(b, v)),
        Node::Cond(c, t, f) => cond(eval(c, v), eval(t, v), eval(f, v)),
        Node::Bin(op, a, b) => binary(*op, eval(a, v), eval(b, v)),
    }
}

/// A feature's value: null when absent or not finite.
fn feature(values: &[Option<f64>], i: usize) -> Val {
    match values[i] {
        Some(x) if x.is_finite() => Val::Num(x),
        _ => Val::Null,
    }
}

/// A number that is not finite (an overflow, a division by zero) is null.
fn finite(x: f64) -> Val {
    if x.is_finite() {
        Val::Num(x)
    } else {
        Val::Null
    }
}

fn num(a: Val, f: impl Fn(f64) -> f64) -> Val {
    match a {
        Val::Num(x) => finite(f(x)),
        _ => Val::Null,
    }
}

fn not(a: Val) -> Val {
    match a {
        Val::Bool(x) => Val::Bool(!x),
        _ => Val::Null,
    }
}

fn is_null(a: Val, eq: bool) -> Val {
    Val::Bool((a == Val::Null) == eq)
}

fn cond(c: Val, t: Val, f: Val) -> Val {
    match c {
        Val::Bool(true) => t,
        Val::Bool(false) => f,
        _ => Val::Null,
    }
}

/// Kleene's AND: false wins, then null.
fn and(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
        (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
        _ => Val::Null,
    }
}

/// Kleene's OR: true wins, then null.
fn or(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
        (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
        _ => Val::Null,
    }
}

fn binary(op: Bin, a: Val, b: Val) -> Val {
    use Val::*;
    match (op, a, b) {
        (Bin::Eq, Num(x), Num(y)) => Bool(x == y),
        (Bin::Ne, Num(x), Num(y)) => Bool(x != y),
        (Bin::Eq, Bool(x), Bool(y)) => Bool(x == y),
        (Bin::Ne, Bool(x), Bool(y)) => Bool(x != y),
        (_, Num(x), Num(y)) => match op {
            Bin::Add => finite(x + y),
            Bin::Sub => finite(x - y),
            Bin::Mul => finite(x * y),
            Bin::Div => finite(x / y),
            Bin::Rem => finite(x % y),
            Bin::Lt => Bool(x < y),
            Bin::Le => Bool(x <= y),
            Bin::Gt => Bool(x > y),
            Bin::Ge => Bool(x >= y),
            Bin::Min => Num(x.min(y)),
            Bin::Max => Num(x.max(y)),
            Bin::Eq | Bin::Ne => unreachable!("matched above"),
        },
        // Null on either side; type errors are rejected at compile time.
        _ => Null,
    }
}

#[cfg(test)]
mod tests;
