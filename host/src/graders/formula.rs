//! OpenAI's `calculate_output` language for `multi` graders, parsed into a tree and evaluated
//! over the sub-graders' scores. Never an `eval`: only what the grammar below accepts runs.
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/') unary)*
//! unary   := '-' unary | power
//! power   := atom ('^' unary)?          // right-associative; -2^2 = -(2^2)
//! atom    := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//! Functions: `min`, `max` (two or more arguments: like OpenAI's evaluator, which follows
//! Python, `min(a)` of one number is refused), `abs`, `floor`, `ceil`, `exp`, `sqrt`, `log`
//! (natural; one argument). Variables are the keys of the `graders` map.

use std::collections::HashMap;

/// Deepest nesting accepted, so a hostile formula cannot overflow the host's stack.
const MAX_DEPTH: usize = 64;
/// Longest formula accepted.
const MAX_LEN: usize = 4096;

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Number(f64),
    /// A sub-grader's score.
    Var(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary(Op, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
}

/// Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// n-ary minimum.
    Min,
    /// n-ary maximum.
    Max,
    /// Absolute value.
    Abs,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// e^x.
    Exp,
    /// Square root.
    Sqrt,
    /// Natural logarithm.
    Log,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "min" => Func::Min,
            "max" => Func::Max,
            "abs" => Func::Abs,
            "floor" => Func::Floor,
            "ceil" => Func::Ceil,
            "exp" => Func::Exp,
            "sqrt" => Func::Sqrt,
            "log" => Func::Log,
            _ => return None,
        })
    }

    fn variadic(self) -> bool {
        matches!(self, Func::Min | Func::Max)
    }
}

/// Why a formula was refused; `position` is a 0-based character offset. The message does not
/// name the field: the definition error that carries it does (`calculate_output: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct FormulaError {
    /// Where.
    pub position: usize,
    /// What.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Sym(char),
}

fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, FormulaError> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let value = text.parse::<f64>().map_err(|_| FormulaError {
                position: start,
                message: format!("`{text}` is not a number"),
            })?;
            tokens.push((start, Token::Number(value)));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((start, Token::Name(chars[start..i].iter().collect())));
        } else if "+-*/^(),".contains(c) {
            tokens.push((i, Token::Sym(c)));
            i += 1;
        } else {
            return Err(FormulaError {
                position: i,
                message: format!("unexpected character `{c}`"),
            });
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
    variables: &'a [&'a str],
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(o, _)| *o)
            .unwrap_or(self.end)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, FormulaError> {
        Err(FormulaError {
            position: self.offset(),
            message: message.into(),
        })
    }

    fn eat(&mut self, sym: char) -> bool {
        if self.peek() == Some(&Token::Sym(sym)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), FormulaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, FormulaError> {
        self.enter()?;
        let mut left = self.term()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                break;
            };
            let right = self.term()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                break;
            };
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        self.enter()?;
        let result = if self.eat('-') {
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else {
            self.power()
        };
        self.depth -= 1;
        result
    }

    fn power(&mut self) -> Result<Expr, FormulaError> {
        let base = self.atom()?;
        if self.eat('^') {
            let exponent = self.unary()?;
            return Ok(Expr::Binary(Op::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, FormulaError> {
        let start = self.offset();
        match self.peek().cloned() {
            Some(Token::Number(value)) => {
                self.pos += 1;
                Ok(Expr::Number(value))
            }
            Some(Token::Name(name)) => {
                self.pos += 1;
                if self.eat('(') {
                    let Some(func) = Func::from_name(&name) else {
                        return Err(FormulaError {
                            position: start,
                            message: format!(
                                "unknown function `{name}` (known: min, max, abs, floor, ceil, exp, sqrt, log)"
                            ),
                        });
                    };
                    let mut args = vec![self.expr()?];
                    while self.eat(',') {
                        args.push(self.expr()?);
                    }
                    if !self.eat(')') {
                        return self.error("expected `)` or `,`");
                    }
                    if !func.variadic() && args.len() != 1 {
                        return Err(FormulaError {
                            position: start,
                            message: format!("`{name}` takes one argument, not {}", args.len()),
                        });
                    }
                    if func.variadic() && args.len() < 2 {
                        // Python's min(0.5) raises "'float' object is not iterable", and
                        // OpenAI refuses the formula; a one-argument min is not a no-op here.
                        return Err(FormulaError {
                            position: start,
                            message: format!("`{name}` takes two or more arguments, not 1"),
                        });
                    }
                    Ok(Expr::Call(func, args))
                } else if self.variables.contains(&name.as_str()) {
                    Ok(Expr::Var(name))
                } else {
                    Err(FormulaError {
                        position: start,
                        message: format!(
                            "unknown variable `{name}` (the graders are: {})",
                            self.variables.join(", ")
                        ),
                    })
                }
            }
            Some(Token::Sym('(')) => {
                self.pos += 1;
                let inner = self.expr()?;
                if !self.eat(')') {
                    return self.error("expected `)`");
                }
                Ok(inner)
            }
            Some(Token::Sym(c)) => self.error(format!("unexpected `{c}`")),
            None => self.error("unexpected end of formula"),
        }
    }
}

/// Parses `src`, accepting only the names in `variables` as variables.
pub fn parse(src: &str, variables: &[&str]) -> Result<Expr, FormulaError> {
    if src.len() > MAX_LEN {
        return Err(FormulaError {
            position: MAX_LEN,
            message: format!("longer than {MAX_LEN} bytes"),
        });
    }
    let tokens = tokenize(src)?;
    let end = src.chars().count();
    let mut parser = Parser {
        tokens,
        pos: 0,
        end,
        variables,
        depth: 0,
    };
    let expr = parser.expr()?;
    if parser.pos < parser.tokens.len() {
        return parser.error("unexpected input after the end of the formula");
    }
    Ok(expr)
}

impl Expr {
    /// Evaluates over the sub-graders' scores. A variable without a value is NaN, so the
    /// caller decides what a missing score means.
    pub fn eval(&self, values: &HashMap<String, f64>) -> f64 {
        match self {
            Expr::Number(v) => *v,
            Expr::Var(name) => values.get(name).copied().unwrap_or(f64::NAN),
            Expr::Neg(e) => -e.eval(values),
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval(values), b.eval(values));
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                    Op::Pow => a.powf(b),
                }
            }
            Expr::Call(func, args) => {
                let mut vals = args.iter().map(|a| a.eval(values));
                match func {
                    Func::Min => vals.fold(f64::INFINITY, f64::min),
                    Func::Max => vals.fold(f64::NEG_INFINITY, f64::max),
                    other => {
                        let x = vals.next().unwrap_or(f64::NAN);
                        match other {
                            Func::Abs => x.abs(),
                            Func::Floor => x.floor(),
                            Func::Ceil => x.ceil(),
                            Func::Exp => x.exp(),
                            Func::Sqrt => x.sqrt(),
                            _ => x.ln(),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eval(src: &str, vars: &[(&str, f64)]) -> f64 {
        let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        let values = vars.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        parse(src, &names)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(&values)
    }

    #[test]
    fn precedence_associativity_and_unary_minus() {
        assert_eq!(eval("1 + 2 * 3", &[]), 7.0);
        assert_eq!(eval("(1 + 2) * 3", &[]), 9.0);
        assert_eq!(eval("2 ^ 3 ^ 2", &[]), 512.0);
        assert_eq!(eval("-2 ^ 2", &[]), -4.0);
        assert_eq!(eval("2 ^ -1", &[]), 0.5);
        assert_eq!(eval("8 / 4 / 2", &[]), 1.0);
        assert_eq!(eval("10 - 4 - 3", &[]), 3.0);
        assert_eq!(eval("--3", &[]), 3.0);
        assert_eq!(eval("1.5e1 + .5", &[]), 15.5);
    }

    #[test]
    fn variables_and_functions() {
        assert_eq!(
            eval("(name + email) / 2", &[("name", 1.0), ("email", 0.0)]),
            0.5
        );
        assert_eq!(eval("min(a, b, 0.3)", &[("a", 0.5), ("b", 0.4)]), 0.3);
        assert_eq!(eval("abs(-2) + floor(1.7) + ceil(1.2)", &[]), 5.0);
        assert!((eval("exp(1)", &[]) - std::f64::consts::E).abs() < 1e-12);
        assert_eq!(eval("sqrt(16) * log(1)", &[]), 0.0);
        assert_eq!(
            eval(
                "0.5 * text_score + 0.5 * check_2",
                &[("text_score", 1.0), ("check_2", 0.0)]
            ),
            0.5
        );
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse("a + b", &["a"]).unwrap_err();
        assert_eq!(e.position, 4);
        assert!(e.message.contains("unknown variable `b`"), "{e}");
        let e = parse("pow(a, 2)", &["a"]).unwrap_err();
        assert_eq!(e.position, 0);
        assert!(e.message.contains("unknown function `pow`"));
        let e = parse("0.5 * a + 0.5 * b)", &["a", "b"]).unwrap_err();
        assert_eq!(e.position, 17);
        let e = parse("(a + ", &["a"]).unwrap_err();
        assert!(e.message.contains("end of formula"), "{e}");
        let e = parse("a; drop", &["a"]).unwrap_err();
        assert_eq!(e.position, 1);
        assert!(
            parse("abs(1, 2)", &[])
                .unwrap_err()
                .message
                .contains("one argument")
        );
        for one in ["min(a)", "max(a)", "min((a))", "1 + max(0.5)"] {
            let e = parse(one, &["a"]).unwrap_err();
            assert!(e.message.contains("two or more arguments"), "{one}: {e}");
        }
        assert!(parse("max(a, a)", &["a"]).is_ok());
        assert!(parse("__import__('os')", &[]).is_err());
        assert!(parse("", &[]).is_err());
        assert!(parse("1..2", &[]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let src = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&src[..MAX_LEN.min(src.len())], &[]).is_err());
        let src = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(
            parse(&src, &[])
                .unwrap_err()
                .message
                .contains("nested deeper")
        );
        let minus = format!("{}1", "-".repeat(1000));
        assert!(parse(&minus, &[]).is_err());
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(src in ".{0,200}") {
            let _ = parse(&src, &["a", "b"]).map(|e| e.eval(&HashMap::new()));
        }

        #[test]
        fn the_parser_never_panics_on_formula_like_input(src in "[ab0-9.+*/^()\\-, minaxlogsqrt]{0,120}") {
            let _ = parse(&src, &["a", "b"]).map(|e| e.eval(&HashMap::new()));
        }
    }
}
