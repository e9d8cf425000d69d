//! Tests of rule expressions: operators, SQL's three-valued logic for null, the flat
//! evaluator against the tree walk, compile-time errors, and the size and nesting limits.

use super::*;

fn names(n: &str) -> Option<usize> {
    ["a", "b", "c", "d"].iter().position(|x| *x == n)
}

fn run(src: &str, v: &[Option<f64>]) -> Val {
    let e = Expression::compile(src, names).unwrap_or_else(|err| panic!("{src}: {err}"));
    let flat = e.eval(v);
    assert_eq!(flat, e.eval_tree(v), "{src}: flat and tree disagree");
    flat
}

/// Runs `f` on a thread with `kib` KiB of stack and returns its result: a stack overflow
/// aborts the whole test binary, so a passing test proves the stack was enough.
fn on_stack<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic")
}

#[test]
fn arithmetic_and_comparison() {
    let v = [Some(3.0), Some(0.5), None, None];
    assert_eq!(run("a >= 3", &v), Val::Bool(true));
    assert_eq!(run("a * 2 > 7", &v), Val::Bool(false));
    assert_eq!(run("b < 0.6 && a == 3", &v), Val::Bool(true));
    assert_eq!(run("(a + b) / 2 == 1.75", &v), Val::Bool(true));
    assert_eq!(run("(a > 5 ? 1 : 2) == 2", &v), Val::Bool(true));
    assert_eq!(
        run("max(a, b) == 3 && min(a, b) == 0.5", &v),
        Val::Bool(true)
    );
    assert_eq!(run("!(a > 1)", &v), Val::Bool(false));
    assert_eq!(run("-a < 0", &v), Val::Bool(true));
    assert_eq!(
        run("abs(-a) == double(a) && int(a) == 3", &v),
        Val::Bool(true)
    );
    assert_eq!(run("a % 2 == 1 && a - b == 2.5", &v), Val::Bool(true));
}

/// Every operator with a null operand, as SQL's three-valued logic has it (docs/CONFIG.md,
/// "Null in rules"). `a` = 3, `b` = 0, `c` = null, `d` = 0.5. `N` is null (unknown).
#[test]
fn null_follows_sql_three_valued_logic_for_every_operator() {
    const T: Val = Val::Bool(true);
    const F: Val = Val::Bool(false);
    const N: Val = Val::Null;
    let v = [Some(3.0), Some(0.0), None, Some(0.5)];
    let table: &[(&str, Val)] = &[
        // Comparisons with null are unknown.
        ("c < 1", N),
        ("c <= 1", N),
        ("c > 1", N),
        ("c >= 1", N),
        ("1 < c", N),
        ("c == 1", N),
        ("c != 0", N),
        ("c == c", N),
        ("c != c", N),
        ("(c > 1) == true", N),
        ("(c > 1) != false", N),
        // Comparing with the literal null is the null test, never unknown.
        ("c == null", T),
        ("c != null", F),
        ("null == c", T),
        ("a == null", F),
        ("a != null", T),
        ("null == null", T),
        ("null != null", F),
        ("(c > 1) == null", T),
        ("c + 1 == null", T),
        // Arithmetic with null is null.
        ("c + 1 > 0", N),
        ("1 - c > 0", N),
        ("c * 0 == 0", N),
        ("c / 1 > 0", N),
        ("c % 2 == 0", N),
        ("-c < 0", N),
        ("abs(c) >= 0", N),
        ("double(c) > 0", N),
        ("int(c) > 0", N),
        ("min(a, c) < 10", N),
        ("max(c, a) > 0", N),
        // A result that is not finite is null: division by zero, overflow.
        ("a / b > 0", N),
        ("a % b == 0", N),
        ("a * 1e308 * 10 > 0", N),
        ("a / b == null", T),
        // NOT of unknown is unknown.
        ("!(c > 1)", N),
        ("!(c > 1) == null", T),
        ("!!(c > 1)", N),
        // Kleene AND and OR.
        ("c > 1 && false", F),
        ("false && c > 1", F),
        ("c > 1 && true", N),
        ("true && c > 1", N),
        ("c > 1 && c > 1", N),
        ("c > 1 || true", T),
        ("true || c > 1", T),
        ("c > 1 || false", N),
        ("false || c > 1", N),
        ("c > 1 || c > 1", N),
        ("!(c > 1) || a > 1", T),
        ("!(c > 1) && a > 1", N),
        // A null condition is unknown; a null branch is null only when taken.
        ("c > 1 ? true : false", N),
        ("a > 1 ? c > 0 : true", N),
        ("a > 1 ? true : c > 0", T),
        ("(a > 1 ? c : a) > 0", N),
        ("(a > 1 ? a : c) > 0", T),
        ("(a > 1 ? null : a) == null", T),
        // Non-null values are two-valued as before.
        ("d < 1 && a == 3", T),
        ("d > 1 || a != 3", F),
    ];
    for &(src, want) in table {
        assert_eq!(run(src, &v), want, "{src}");
        let fires = Expression::compile(src, names).unwrap().fires(&v);
        assert_eq!(fires, want == T, "{src}: a rule fires only when true");
    }
}

/// Issue 8: `x != 0` fired for a null `x`, because `!=` returned a boolean.
#[test]
fn not_equal_with_a_null_feature_does_not_fire() {
    let e = Expression::compile("c != 0", names).unwrap();
    assert!(!e.fires(&[None, None, None, None]));
    assert!(e.fires(&[None, None, Some(1.0), None]));
    assert!(!e.fires(&[None, None, Some(0.0), None]));
}

/// Issue 8: `!(cash_ratio_30d > 0.5)` fired for a customer without spend (null ratio),
/// although the rule author meant "a known low ratio".
#[test]
fn negated_comparison_with_a_null_feature_does_not_fire() {
    let e = Expression::compile("!(d > 0.5)", names).unwrap();
    assert!(!e.fires(&[None, None, None, None]));
    assert!(e.fires(&[None, None, None, Some(0.2)]));
    assert!(!e.fires(&[None, None, None, Some(0.7)]));
}

#[test]
fn flat_evaluation_equals_the_tree_walk_on_random_inputs() {
    // The last one needs a deeper stack than the flat form holds, so the tree walk
    // evaluates it: both paths are compared either way.
    let deep = format!(
        "({}d) > 0",
        (0..20)
            .map(|i| format!("a > {i} ? b + {i} : "))
            .collect::<String>()
    );
    let exprs = [
        "a >= 3 && (b < 0.5 || c == null)",
        "((a + b) * 2 > c ? a / b > 1 : !(c < 0))",
        "max(a, min(b, c)) - abs(-a) % 3 == 0",
        "-(a - b) <= c && a != b || !(a > 10)",
        "c != 0 || !(d > 0.5) && a / b != null",
        "(a > 1 ? c : d) > b == (b != null) || c == d",
        &deep,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for src in exprs {
        let e = Expression::compile(src, names).unwrap_or_else(|err| panic!("{src}: {err}"));
        assert_eq!(
            e.depth > MAX_STACK,
            src == deep,
            "{src}: {} stack slots",
            e.depth
        );
        for _ in 0..2000 {
            let mut v = [None; 4];
            for slot in v.iter_mut() {
                *slot = match next() % 6 {
                    0 => None,
                    1 => Some(0.0),
                    2 => Some(f64::NAN),
                    _ => Some((next() % 2000) as f64 / 100.0 - 5.0),
                };
            }
            assert_eq!(e.eval(&v), e.eval_tree(&v), "{src} at {v:?}");
        }
    }
}

#[test]
fn bad_expressions_fail_at_compile_time() {
    let err = |src: &str| Expression::compile(src, names).unwrap_err();
    assert!(err("a >").contains("parse"), "{}", err("a >"));
    assert_eq!(err("zz > 1"), "unknown feature \"zz\"");
    assert_eq!(err("size(a) > 1"), "unsupported function \"size\"");
    assert_eq!(
        err("a > 'x'"),
        "string literals are not supported: rules use numbers"
    );
    assert_eq!(err("!a"), "\"!\" needs a boolean, not a number");
    assert_eq!(
        err("a + (b > 1) > 0"),
        "\"+\" needs a number, not a boolean"
    );
    assert_eq!(
        err("(a > 1) == 1"),
        "\"==\" compares a boolean with a number"
    );
    assert_eq!(
        err("(a > 1 ? a : true) == 1"),
        "\"?:\" has branches of two types: a number and a boolean"
    );
    assert_eq!(
        err("a ? true : false"),
        "\"?:\" needs a boolean, not a number"
    );
    assert_eq!(
        err("a + 1"),
        "the expression yields a number; a rule yields a boolean"
    );
    assert_eq!(
        err("null"),
        "the expression is always null; a rule yields a boolean"
    );
    // CEL's own parser refuses a double literal that overflows.
    assert!(
        err("a > 1e999").contains("invalid double literal"),
        "{}",
        err("a > 1e999")
    );
    assert_eq!(err("max(a) > 1"), "\"max\" takes 2 arguments");
    assert_eq!(
        Expression::compile("a > 1 && b < c", names)
            .unwrap()
            .features(),
        &[0, 1, 2]
    );
}

#[test]
fn nesting_bound_counts_brackets_chains_unary_and_logic() {
    let bound = |s: &str| nesting_bound(s).unwrap();
    assert_eq!(bound("a"), 1);
    assert_eq!(bound("a > 1"), 2);
    assert_eq!(bound("(a > 1)"), 3);
    assert_eq!(bound("a + a + a > 1"), 4);
    assert_eq!(bound("!(a > 1)"), 4);
    assert_eq!(bound("max(a, b + 1) > 1"), 4);
    // && and || chains are balanced by CEL: 2·⌈log2⌉ of the operator count.
    assert_eq!(bound("a > 1 && b > 1"), 2 + 2);
    assert_eq!(bound(&vec!["a > 1"; 1000].join(" || ")), 2 + 2 * 10);
    assert_eq!(bound("a > 1 ? b > 1 : c > 1 ? true : false"), 2 + 2);
    assert_eq!(bound("a in b"), 2);
    // Operators inside a comment only make the bound more careful.
    assert_eq!(bound("a > 1 // + + +"), 7);
    // Unbalanced brackets are left for the parser.
    assert_eq!(bound("((a > 1"), 4);
    assert_eq!(bound("a > 1))"), 2);
}

/// Issue 8: a rule of 20,000 `+` terms (about 200 KB) overflowed the stack of
/// `check-config` and `replay` (exit 134). It is rejected by size now, on any stack.
#[test]
fn rule_of_20000_terms_is_rejected_by_size_not_a_stack_overflow() {
    let src = format!("{} > 0", vec!["spend_30d"; 20_000].join(" + "));
    let len = src.len();
    let err = on_stack(64, move || {
        Expression::compile(&src, |_| Some(0)).unwrap_err()
    });
    assert_eq!(
        err,
        format!("expression is {len} bytes, the limit is {MAX_EXPR_BYTES}")
    );
    // Within the byte limit, the same chain is rejected by its depth.
    let src = format!("{} > 0", vec!["a"; 8_000].join("+"));
    let err = on_stack(64, move || Expression::compile(&src, names).unwrap_err());
    assert_eq!(err, "expression nests 8001 deep, the limit is 32");
}

#[test]
fn parentheses_10000_deep_and_nested_negations_are_rejected_with_the_limit() {
    let cases = [
        // 10,000 parentheses: too long already.
        (
            format!("{}a > 1{}", "(".repeat(10_000), ")".repeat(10_000)),
            "expression is 20005 bytes, the limit is 16384",
        ),
        // 5,000 fit the byte limit and are rejected by depth.
        (
            format!("{}a > 1{}", "(".repeat(5_000), ")".repeat(5_000)),
            "expression nests 5002 deep, the limit is 32",
        ),
        (
            format!("{}a > 1{}", "!(".repeat(5_000), ")".repeat(5_000)),
            "expression nests 10002 deep, the limit is 32",
        ),
        (
            format!("{}(a > 1)", "!".repeat(10_000)),
            "expression nests 10003 deep, the limit is 32",
        ),
        (
            format!("{}a > 1", "-".repeat(10_000)),
            "expression nests 10002 deep, the limit is 32",
        ),
        (
            format!("{}a{} > 1", "max(".repeat(2_000), ", 1)".repeat(2_000)),
            "expression nests 2002 deep, the limit is 32",
        ),
    ];
    for (src, want) in cases {
        let err = on_stack(64, move || Expression::compile(&src, names).unwrap_err());
        assert_eq!(err, want);
    }
}

/// The largest `n` for which `make(n)` passes [`check_limits`].
fn largest_accepted(make: impl Fn(usize) -> String) -> usize {
    let mut n = 0;
    while check_limits(&make(n + 1)).is_ok() {
        n += 1;
        assert!(n < 20_000, "the limits must stop this family");
    }
    n
}

/// The most demanding sources the limits accept, of every shape that makes the `cel`
/// parser recurse, compile (or fail cleanly) on a 512 KiB stack, a quarter of a timely
/// worker thread's 2 MiB (measured need: about 280 KiB; module docs). Release builds only,
/// like every test here: a debug build's frames are several times larger.
#[test]
fn expressions_at_the_limits_compile_on_a_512_kib_stack() {
    type Family = fn(usize) -> String;
    let families: [(&str, Family); 10] = [
        ("parens", |n| {
            format!("{}a > 1{}", "(".repeat(n), ")".repeat(n))
        }),
        ("calls", |n| {
            format!("{}a{} > 1", "max(".repeat(n), ", 1)".repeat(n))
        }),
        ("not", |n| {
            format!("{}a > 1{}", "!(".repeat(n), ")".repeat(n))
        }),
        ("chain", |n| format!("{} > 1", vec!["a"; n + 1].join(" + "))),
        ("relations", |n| vec!["a"; n + 1].join(" < ")),
        ("ternary", |n| {
            format!("{}false", "a > 1 ? true : ".repeat(n))
        }),
        ("unary", |n| format!("{}a > 1", "-".repeat(n))),
        ("lists", |n| {
            format!("{}1{} > 1", "[".repeat(n), "]".repeat(n))
        }),
        ("members", |n| format!("a{} > 1", ".b".repeat(n))),
        ("mixed", |n| {
            format!("{}a{} > 1", "(a + ".repeat(n), ")".repeat(n))
        }),
    ];
    for (name, make) in families {
        let n = largest_accepted(make);
        assert!(n >= 14, "{name}: only {n} levels accepted");
        let src = make(n);
        let result = on_stack(512, move || {
            Expression::compile(&src, names).map(|e| e.eval(&[Some(1.0); 4]))
        });
        if matches!(
            name,
            "parens" | "calls" | "not" | "chain" | "ternary" | "unary" | "mixed"
        ) {
            assert!(result.is_ok(), "{name} at {n}: {result:?}");
        }
    }
    // The longest `||` chain the byte limit allows is shallow: CEL balances it.
    let mut src = String::from("a > 1");
    while src.len() + " || a > 1".len() <= MAX_EXPR_BYTES {
        src.push_str(" || a > 1");
    }
    let fired = on_stack(512, move || {
        Expression::compile(&src, names)
            .unwrap()
            .fires(&[Some(2.0); 4])
    });
    assert!(fired);
}
