//! Aggregate formulas in CEL (cel-interpreter): a safe, side-effect-free expression language.
//! Variables: each task's normalized score by task name, and the map `raw` of raw scores.
//! Functions beyond CEL's own (`min`, `max`): exp, ln, sqrt, pow, abs, clamp.
//!
//! Formulas come from files a validator runs unattended, so they have budgets, checked before
//! anything is evaluated: [`MAX_BYTES`] of source, [`MAX_NESTING`] levels of brackets and
//! [`MAX_OPERATORS`] operators (the parser and the interpreter recurse on both, and a deep tree
//! overflows the stack), and [`MAX_COST`] evaluation steps, a static bound computed on the
//! syntax tree: comprehensions (`map`, `filter`, `all`, `exists`, `exists_one`) cost their body
//! times the length of what they iterate, which must be a list or map literal, `raw`, or lists
//! built from those. The bound does not depend on the scores, so a formula within budget is within
//! budget for every submission, and validators agree on which formulas run.

use std::collections::BTreeMap;

use cel_interpreter::{Context, Program, Value};
use cel_parser::Expression;
use cel_parser::ast::{EntryExpr, Expr};

/// Longest formula, in bytes.
pub const MAX_BYTES: usize = 4096;
/// Deepest nesting of `(`, `[` and `{`.
pub const MAX_NESTING: usize = 24;
/// Most operators (arithmetic, comparison, logic, `?:`, member access) in one formula.
pub const MAX_OPERATORS: usize = 256;
/// Most evaluation steps one evaluation may take, bounded statically (see the module docs).
pub const MAX_COST: u64 = 100_000;

pub struct Formula {
    program: Program,
    source: String,
    /// CEL's built-in functions plus ours, registered once; each evaluation adds its variables
    /// in a child scope.
    functions: Context<'static>,
    uses_raw: bool,
}

impl std::fmt::Debug for Formula {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Formula({:?})", self.source)
    }
}

impl Formula {
    /// Compiles `expr` for a competition with `tasks` tasks (the length of `raw`).
    pub fn compile(expr: &str, tasks: usize) -> Result<Self, String> {
        if expr.trim().is_empty() {
            return Err("the formula is empty".into());
        }
        if let Some(c) = expr.chars().find(|c| !c.is_ascii()) {
            return Err(format!("the formula contains `{c}`: names, numbers and operators are ASCII"));
        }
        lexical_budget(expr)?;
        // The CEL parser panics on some malformed inputs: a bad formula is an error, not a crash.
        let parsed = quietly(|| cel_parser::Parser::new().parse(expr))
            .ok_or_else(|| "the CEL parser cannot read this expression".to_string())?;
        let tree = parsed.map_err(|e| format!("CEL syntax: {}", e.to_string().trim()))?;
        match cost(&tree, tasks as u64) {
            None => {
                return Err("the formula iterates over a value whose length is not known before it runs; \
                            comprehensions may iterate over list or map literals, `raw`, and lists built from them"
                    .to_string());
            }
            Some(cost) if cost > MAX_COST => {
                return Err(format!(
                    "the formula may take {cost} evaluation steps; the budget is {MAX_COST}"
                ));
            }
            Some(_) => {}
        }
        let compiled = quietly(|| Program::compile(expr))
            .ok_or_else(|| "the CEL parser cannot read this expression".to_string())?;
        let program = compiled.map_err(|e| format!("CEL syntax: {}", e.to_string().trim()))?;
        let mut functions = Context::default();
        functions.add_function("exp", |x: f64| x.exp());
        functions.add_function("ln", |x: f64| x.ln());
        functions.add_function("sqrt", |x: f64| x.sqrt());
        functions.add_function("pow", |x: f64, y: f64| x.powf(y));
        functions.add_function("abs", |x: f64| x.abs());
        functions.add_function("clamp", |x: f64, lo: f64, hi: f64| x.max(lo).min(hi));
        let uses_raw = program.references().has_variable("raw");
        Ok(Formula { program, source: expr.to_string(), functions, uses_raw })
    }

    /// The variables the formula reads (task names, `raw`).
    pub fn variables(&self) -> Vec<String> {
        self.program.references().variables().into_iter().map(str::to_string).collect()
    }

    /// Evaluates with `vars` (task name → normalized score) and `raw` (task name → raw score).
    pub fn eval(&self, vars: &BTreeMap<&str, f64>, raw: &BTreeMap<&str, f64>) -> Result<f64, String> {
        let mut ctx = self.functions.new_inner_scope();
        for (name, value) in vars {
            ctx.add_variable_from_value(*name, Value::Float(*value));
        }
        if self.uses_raw {
            let raw: std::collections::HashMap<String, f64> =
                raw.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            ctx.add_variable("raw", raw).map_err(|e| e.to_string())?;
        }
        let result = quietly(|| self.program.execute(&ctx))
            .ok_or_else(|| "the CEL interpreter failed on this expression".to_string())?;
        match result {
            Ok(Value::Float(f)) => Ok(f),
            Ok(Value::Int(i)) => Ok(i as f64),
            Ok(Value::UInt(u)) => Ok(u as f64),
            Ok(other) => Err(format!("the formula gave {other:?}, not a number")),
            Err(e) => Err(explain(&e.to_string())),
        }
    }
}

/// Size, bracket nesting and operator count, on the source text, before the parser (which
/// recurses on both) sees it.
fn lexical_budget(expr: &str) -> Result<(), String> {
    if expr.len() > MAX_BYTES {
        return Err(format!("the formula is {} bytes long; the limit is {MAX_BYTES}", expr.len()));
    }
    let bytes = expr.as_bytes();
    let (mut depth, mut deepest, mut operators) = (0usize, 0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            match b {
                b'\\' => i += 1,
                _ if b == q => quote = None,
                _ => {}
            }
        } else {
            match b {
                b'"' | b'\'' => quote = Some(b),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                // `&&`, `||`, `==`, `<=` and the like count twice: a coarser bound, never a laxer one.
                b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!' | b'&' | b'|' | b'?' | b':' => {
                    operators += 1
                }
                // Member access, not a decimal point.
                b'.' if bytes.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') => {
                    operators += 1
                }
                _ => {}
            }
        }
        i += 1;
    }
    if deepest > MAX_NESTING {
        return Err(format!("the formula nests brackets {deepest} deep; the limit is {MAX_NESTING}"));
    }
    if operators > MAX_OPERATORS {
        return Err(format!("the formula has {operators} operators; the limit is {MAX_OPERATORS}"));
    }
    Ok(())
}

/// A static upper bound on the steps one evaluation takes (saturating); `None` when a
/// comprehension iterates over something whose length is not known before it runs.
fn cost(e: &Expression, tasks: u64) -> Option<u64> {
    let sum = |xs: &mut dyn Iterator<Item = &Expression>| {
        let mut total = 1u64;
        for x in xs {
            total = total.saturating_add(cost(x, tasks)?);
        }
        Some(total)
    };
    match &e.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Some(1),
        Expr::Call(c) => sum(&mut c.target.iter().map(|t| &**t).chain(c.args.iter())),
        Expr::List(l) => sum(&mut l.elements.iter()),
        Expr::Map(m) => sum(&mut m.entries.iter().flat_map(|en| entry_parts(&en.expr))),
        Expr::Struct(st) => sum(&mut st.entries.iter().flat_map(|en| entry_parts(&en.expr))),
        Expr::Select(s) => cost(&s.operand, tasks).map(|c| c.saturating_add(1)),
        Expr::Comprehension(c) => {
            let n = length(&c.iter_range, tasks)?;
            let body =
                cost(&c.loop_cond, tasks)?.saturating_add(cost(&c.loop_step, tasks)?).saturating_add(1);
            Some(
                cost(&c.iter_range, tasks)?
                    .saturating_add(cost(&c.accu_init, tasks)?)
                    .saturating_add(n.saturating_mul(body))
                    .saturating_add(cost(&c.result, tasks)?),
            )
        }
    }
}

fn entry_parts(e: &EntryExpr) -> Vec<&Expression> {
    match e {
        EntryExpr::StructField(f) => vec![&f.value],
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
    }
}

/// An upper bound on the length of what a comprehension iterates over; `None`: not known.
fn length(e: &Expression, tasks: u64) -> Option<u64> {
    match &e.expr {
        Expr::List(l) => Some(l.elements.len() as u64),
        Expr::Map(m) => Some(m.entries.len() as u64),
        Expr::Ident(name) if name == "raw" => Some(tasks),
        Expr::Call(c) if c.func_name == "_+_" && c.args.len() == 2 => {
            Some(length(&c.args[0], tasks)?.saturating_add(length(&c.args[1], tasks)?))
        }
        Expr::Comprehension(c) => length(&c.iter_range, tasks),
        _ => None,
    }
}

fn explain(message: &str) -> String {
    if message.contains("Unsupported binary operator") || message.contains("Unexpected type") {
        format!("{message} (CEL does not mix integers and doubles: write 8.0, not 8)")
    } else {
        message.to_string()
    }
}

/// Runs `f`, turning a panic into `None` without printing it.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str) -> Result<f64, String> {
        let f = Formula::compile(expr, 2)?;
        let vars: BTreeMap<&str, f64> = [("a", 0.25), ("b", 0.5)].into();
        f.eval(&vars, &vars)
    }

    #[test]
    fn ordinary_formulas_are_within_budget() {
        assert_eq!(eval("a * 0.5 + b").unwrap(), 0.625);
        assert_eq!(eval("clamp(pow(a, 2.0) + max(a, b), 0.0, 1.0)").unwrap(), 0.5625);
        assert_eq!(eval("raw.a < raw.b ? 1.0 : 0.0").unwrap(), 1.0);
        assert_eq!(eval("[a, b].all(x, x > 0.1) ? 1.0 : 0.0").unwrap(), 1.0);
        assert_eq!(eval("raw.exists(k, raw[k] > 0.4) ? 1.0 : 0.0").unwrap(), 1.0);
    }

    #[test]
    fn each_budget_refuses_with_its_reason() {
        let long = format!("a{}", " + a".repeat(MAX_BYTES / 4));
        assert!(eval(&long).unwrap_err().contains("bytes long"), "{}", eval(&long).unwrap_err());
        let deep = format!("{}a{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(eval(&deep).unwrap_err().contains("nests brackets 25 deep"));
        let chain = format!("a{}", "+a".repeat(MAX_OPERATORS + 1));
        assert!(eval(&chain).unwrap_err().contains("257 operators"));
        // 30 x 30 x 30 x 4 steps and more: a cubic comprehension over literals.
        let list = format!("[{}]", vec!["1.0"; 30].join(","));
        let cubic = format!("{list}.all(x, {list}.all(y, {list}.all(z, x + y + z > 0.0))) ? 1.0 : 0.0");
        let e = eval(&cubic).unwrap_err();
        assert!(e.contains("evaluation steps; the budget is 100000"), "{e}");
        // Two levels of the same list are fine.
        let quadratic = format!("{list}.all(x, {list}.all(y, x + y > 0.0)) ? 1.0 : 0.0");
        assert_eq!(eval(&quadratic).unwrap(), 1.0);
        let unknown = "[a].map(x, [x, x]).exists(l, l.exists(y, y > 0.0)) ? 1.0 : 0.0";
        assert!(eval(unknown).unwrap_err().contains("not known before it runs"));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!("'{}' == '' ? 0.0 : a", "(".repeat(100));
        assert_eq!(eval(&s).unwrap(), 0.25);
    }

    /// The worst formulas within budget compile and run on a 1 MiB stack (test threads have 2 MiB;
    /// the CLI scores on its main thread, 8 MiB).
    #[test]
    fn the_deepest_formula_within_budget_fits_a_small_stack() {
        let nested = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        let chain = format!("a{}", " + a".repeat(MAX_OPERATORS));
        let ternary = format!("{}a", "a > 0.0 ? a : ".repeat(MAX_OPERATORS / 3));
        let calls = format!("{}a{}", "abs(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        let mixed = format!("{}a{}", "(a + ".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        for expr in [nested, chain, ternary, calls, mixed] {
            let handle = std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || eval(&expr).map(|v| v.is_finite()))
                .unwrap();
            assert_eq!(handle.join().expect("no stack overflow"), Ok(true));
        }
    }
}
