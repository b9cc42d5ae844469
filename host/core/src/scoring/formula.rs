//! Aggregate formulas in CEL (cel-interpreter): a safe, side-effect-free expression language.
//! Variables: each task's normalized score by task name, and the map `raw` of raw scores.
//! Functions beyond CEL's own (`min`, `max`): exp, ln, sqrt, pow, abs, clamp.

use std::collections::BTreeMap;

use cel_interpreter::{Context, Program, Value};

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
    pub fn compile(expr: &str) -> Result<Self, String> {
        if expr.trim().is_empty() {
            return Err("the formula is empty".into());
        }
        if let Some(c) = expr.chars().find(|c| !c.is_ascii()) {
            return Err(format!("the formula contains `{c}`: names, numbers and operators are ASCII"));
        }
        // The CEL parser panics on some malformed inputs: a bad formula is an error, not a crash.
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
