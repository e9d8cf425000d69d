//! Rule expressions: CEL parsed by the `cel` crate, compiled once into a small tree over
//! feature ids that evaluates without allocation.
//!
//! The parser is CEL's own; only evaluation is ours, for speed (rules run for every changed
//! customer at every tick). Supported: number, boolean and null literals, feature names,
//! `! - + * / % < <= > >= == != && || ?:`, and the functions `min`, `max`, `abs`, `double`
//! and `int` (identity on numbers). Numbers are compared numerically whether written as
//! ints or doubles. Errors follow CEL: comparing or computing with null, or dividing by
//! zero, is an error; `&&` and `||` absorb errors when the other side decides; a rule whose
//! result is an error or not `true` does not fire. Anything else fails at config load.

use cel::common::ast::operators as ops;
use cel::common::ast::{Expr, LiteralValue};
use cel::IdedExpr;

/// A value during evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// CEL null (an undefined feature).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(f64),
    /// An evaluation error (e.g. `null > 1`).
    Err,
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

/// Deepest stack a rule may need; deeper expressions fall back to the tree walk.
const MAX_STACK: usize = 32;

fn flatten(n: &Node, ops: &mut Vec<Op>, depth: usize, max: &mut usize) {
    *max = (*max).max(depth + 1);
    match n {
        Node::Const(v) => ops.push(Op::Const(*v)),
        Node::Feature(i) => ops.push(Op::Feature(*i)),
        Node::Not(a) | Node::Neg(a) | Node::Abs(a) => {
            flatten(a, ops, depth, max);
            ops.push(match n {
                Node::Not(_) => Op::Not,
                Node::Neg(_) => Op::Neg,
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
    /// Parses `source` with CEL and resolves feature names with `feature`.
    pub fn compile(
        source: &str,
        feature: impl Fn(&str) -> Option<usize>,
    ) -> Result<Expression, String> {
        let program = cel::Program::compile(source).map_err(|e| format!("CEL parse error: {e}"))?;
        let mut features = Vec::new();
        let root = lower(program.expression(), &feature, &mut features)?;
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

    /// Evaluates against feature values (`None` = null).
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
                    stack[sp] = match values[i] {
                        Some(x) if x.is_finite() => Val::Num(x),
                        _ => Val::Null,
                    };
                    sp += 1;
                }
                Op::Not | Op::Neg | Op::Abs => {
                    stack[sp - 1] = match (op, stack[sp - 1]) {
                        (Op::Not, Val::Bool(x)) => Val::Bool(!x),
                        (Op::Neg, Val::Num(x)) => Val::Num(-x),
                        (Op::Abs, Val::Num(x)) => Val::Num(x.abs()),
                        _ => Val::Err,
                    };
                }
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
                    stack[sp - 1] = match c {
                        Val::Bool(true) => t,
                        Val::Bool(false) => f,
                        _ => Val::Err,
                    };
                }
            }
        }
        stack[0]
    }

    /// Evaluates by walking the tree (the reference the flat form is tested against).
    pub fn eval_tree(&self, values: &[Option<f64>]) -> Val {
        eval(&self.root, values)
    }

    /// True when the expression evaluates to `true`.
    pub fn fires(&self, values: &[Option<f64>]) -> bool {
        self.eval(values) == Val::Bool(true)
    }

    /// The feature ids the expression reads.
    pub fn features(&self) -> &[usize] {
        &self.features
    }
}

fn lower(
    e: &IdedExpr,
    feature: &impl Fn(&str) -> Option<usize>,
    used: &mut Vec<usize>,
) -> Result<Node, String> {
    let b = |n: Node| Box::new(n);
    match &e.expr {
        Expr::Literal(lit) => Ok(Node::Const(match lit {
            LiteralValue::Boolean(v) => Val::Bool(*v.inner()),
            LiteralValue::Double(v) => Val::Num(*v.inner()),
            LiteralValue::Int(v) => Val::Num(*v.inner() as f64),
            LiteralValue::UInt(v) => Val::Num(*v.inner() as f64),
            LiteralValue::Null => Val::Null,
            other => return Err(format!("unsupported literal {other:?}: rules use numbers")),
        })),
        Expr::Ident(name) => {
            let id = feature(name).ok_or_else(|| format!("unknown feature \"{name}\""))?;
            used.push(id);
            Ok(Node::Feature(id))
        }
        Expr::Call(call) => {
            if call.target.is_some() {
                return Err(format!("unsupported method call \"{}\"", call.func_name));
            }
            let mut args = Vec::with_capacity(call.args.len());
            for a in &call.args {
                args.push(lower(a, feature, used)?);
            }
            let name = call.func_name.as_str();
            let arity = |n: usize| {
                if args.len() == n {
                    Ok(())
                } else {
                    Err(format!("\"{name}\" takes {n} arguments"))
                }
            };
            let bin = |op: Bin, mut args: Vec<Node>| {
                let r = args.pop().expect("arity checked");
                let l = args.pop().expect("arity checked");
                Node::Bin(op, b(l), b(r))
            };
            let op = match name {
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
            if let Some(op) = op {
                arity(2)?;
                return Ok(bin(op, args));
            }
            let mut args = args.into_iter();
            let mut next = || args.next().expect("arity checked");
            match name {
                ops::LOGICAL_AND | ops::LOGICAL_OR => {
                    if call.args.len() != 2 {
                        return Err(format!("\"{name}\" takes 2 arguments"));
                    }
                    let (l, r) = (next(), next());
                    Ok(if name == ops::LOGICAL_AND {
                        Node::And(b(l), b(r))
                    } else {
                        Node::Or(b(l), b(r))
                    })
                }
                ops::LOGICAL_NOT | ops::NEGATE | "abs" | "double" | "int" => {
                    if call.args.len() != 1 {
                        return Err(format!("\"{name}\" takes 1 argument"));
                    }
                    let a = next();
                    Ok(match name {
                        ops::LOGICAL_NOT => Node::Not(b(a)),
                        ops::NEGATE => Node::Neg(b(a)),
                        "abs" => Node::Abs(b(a)),
                        _ => a,
                    })
                }
                ops::CONDITIONAL => {
                    if call.args.len() != 3 {
                        return Err("\"?:\" takes 3 arguments".to_string());
                    }
                    let (c, t, f) = (next(), next(), next());
                    Ok(Node::Cond(b(c), b(t), b(f)))
                }
                other => Err(format!("unsupported function \"{other}\"")),
            }
        }
        other => Err(format!("unsupported expression {other:?}")),
    }
}

fn eval(n: &Node, v: &[Option<f64>]) -> Val {
    match n {
        Node::Const(c) => *c,
        Node::Feature(i) => match v[*i] {
            Some(x) if x.is_finite() => Val::Num(x),
            _ => Val::Null,
        },
        Node::Not(a) => match eval(a, v) {
            Val::Bool(x) => Val::Bool(!x),
            _ => Val::Err,
        },
        Node::Neg(a) => match eval(a, v) {
            Val::Num(x) => Val::Num(-x),
            _ => Val::Err,
        },
        Node::Abs(a) => match eval(a, v) {
            Val::Num(x) => Val::Num(x.abs()),
            _ => Val::Err,
        },
        Node::And(a, b) => and(eval(a, v), eval(b, v)),
        Node::Or(a, b) => or(eval(a, v), eval(b, v)),
        Node::Cond(c, t, f) => match eval(c, v) {
            Val::Bool(true) => eval(t, v),
            Val::Bool(false) => eval(f, v),
            _ => Val::Err,
        },
        Node::Bin(op, a, b) => binary(*op, eval(a, v), eval(b, v)),
    }
}

fn and(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
        (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
        _ => Val::Err,
    }
}

fn or(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
        (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
        _ => Val::Err,
    }
}

fn binary(op: Bin, a: Val, b: Val) -> Val {
    use Val::*;
    match op {
        Bin::Eq | Bin::Ne => {
            let eq = match (a, b) {
                (Err, _) | (_, Err) => return Err,
                (Num(x), Num(y)) => x == y,
                (Bool(x), Bool(y)) => x == y,
                (Null, Null) => true,
                _ => false,
            };
            Bool(eq == (op == Bin::Eq))
        }
        _ => {
            let (Num(x), Num(y)) = (a, b) else {
                return Err;
            };
            match op {
                Bin::Add => Num(x + y),
                Bin::Sub => Num(x - y),
                Bin::Mul => Num(x * y),
                Bin::Div if y == 0.0 => Err,
                Bin::Div => Num(x / y),
                Bin::Rem if y == 0.0 => Err,
                Bin::Rem => Num(x % y),
                Bin::Lt => Bool(x < y),
                Bin::Le => Bool(x <= y),
                Bin::Gt => Bool(x > y),
                Bin::Ge => Bool(x >= y),
                Bin::Min => Num(x.min(y)),
                Bin::Max => Num(x.max(y)),
                Bin::Eq | Bin::Ne => unreachable!("handled above"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &str) -> Option<usize> {
        ["a", "b", "c"].iter().position(|x| *x == n)
    }

    fn run(src: &str, v: &[Option<f64>]) -> Val {
        Expression::compile(src, names).unwrap().eval(v)
    }

    #[test]
    fn arithmetic_and_comparison() {
        let v = [Some(3.0), Some(0.5), None];
        assert_eq!(run("a >= 3", &v), Val::Bool(true));
        assert_eq!(run("a * 2 > 7", &v), Val::Bool(false));
        assert_eq!(run("b < 0.6 && a == 3", &v), Val::Bool(true));
        assert_eq!(run("(a + b) / 2 == 1.75", &v), Val::Bool(true));
        assert_eq!(run("a > 5 ? 1 : 2", &v), Val::Num(2.0));
        assert_eq!(
            run("max(a, b) == 3 && min(a, b) == 0.5", &v),
            Val::Bool(true)
        );
        assert_eq!(run("!(a > 1)", &v), Val::Bool(false));
        assert_eq!(run("-a < 0", &v), Val::Bool(true));
    }

    #[test]
    fn null_and_errors_follow_cel() {
        let v = [Some(3.0), Some(0.0), None];
        assert_eq!(run("c > 1", &v), Val::Err);
        assert_eq!(run("c == null", &v), Val::Bool(true));
        assert_eq!(run("a / b > 1", &v), Val::Err);
        // && and || absorb an error when the other side decides.
        assert_eq!(run("c > 1 && a < 0", &v), Val::Bool(false));
        assert_eq!(run("c > 1 || a > 0", &v), Val::Bool(true));
        assert_eq!(run("c > 1 || a < 0", &v), Val::Err);
        assert!(!Expression::compile("c > 1", names).unwrap().fires(&v));
    }

    #[test]
    fn flat_evaluation_equals_the_tree_walk_on_random_inputs() {
        let exprs = [
            "a >= 3 && (b < 0.5 || c == null)",
            "(a + b) * 2 > c ? a / b > 1 : !(c < 0)",
            "max(a, min(b, c)) - abs(-a) % 3 == 0",
            "-(a - b) <= c && a != b || !(a > 10)",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for src in exprs {
            let e = Expression::compile(src, names).unwrap();
            for _ in 0..2000 {
                let mut v = [None; 3];
                for slot in v.iter_mut() {
                    *slot = match next() % 5 {
                        0 => None,
                        1 => Some(0.0),
                        _ => Some((next() % 2000) as f64 / 100.0 - 5.0),
                    };
                }
                assert_eq!(e.eval(&v), e.eval_tree(&v), "{src} at {v:?}");
            }
        }
    }

    #[test]
    fn bad_expressions_fail_at_compile_time() {
        assert!(Expression::compile("a >", names)
            .unwrap_err()
            .contains("parse"));
        assert!(Expression::compile("zz > 1", names)
            .unwrap_err()
            .contains("zz"));
        assert!(Expression::compile("size(a) > 1", names).is_err());
        assert!(Expression::compile("a > 'x'", names).is_err());
        assert_eq!(
            Expression::compile("a > 1 && b < c", names)
                .unwrap()
                .features(),
            &[0, 1, 2]
        );
    }
}
