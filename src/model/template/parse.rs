//! The structure of an alert template: balanced `if`/`with`/`range` ... `end`, pipelines of
//! known functions, declared variables; the checks Go's text/template parser makes, and a few
//! stricter ones where Go would only fail when the alert fires.

use super::lex::{Action, Token};
use super::{FUNCTIONS, TemplateError};

/// Variables Prometheus declares before every alert template (`$` is the data itself).
const PREDECLARED: [&str; 5] = ["$", "$labels", "$externalLabels", "$externalURL", "$value"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    If,
    With,
    Range,
}

/// An open `if`, `with` or `range`.
struct Block<'a> {
    kind: Kind,
    source: &'a str,
    in_else: bool,
    /// How many variables were declared before the block; its own go at `{{ end }}`.
    outer_vars: usize,
    /// How many variables its pipeline declared; they stay visible in `{{ else }}`.
    own_vars: usize,
    /// `{{ else if }}`: closed by the `{{ end }}` of the block it continues.
    continues: bool,
}

/// Checks the actions of one template, in order.
pub fn check(actions: &[Action<'_>]) -> Result<(), TemplateError> {
    let mut checker = Checker {
        vars: PREDECLARED.iter().map(|v| v.to_string()).collect(),
        blocks: Vec::new(),
    };
    for action in actions.iter().filter(|a| !a.comment) {
        checker.action(action)?;
    }
    match checker.blocks.iter().rev().find(|b| !b.continues) {
        Some(open) => Err(TemplateError::new(
            "this block is never closed with `{{ end }}`",
            open.source,
        )),
        None => Ok(()),
    }
}

struct Checker<'a> {
    vars: Vec<String>,
    blocks: Vec<Block<'a>>,
}

impl<'a> Checker<'a> {
    fn action(&mut self, action: &Action<'a>) -> Result<(), TemplateError> {
        let tokens = trimmed(&action.tokens);
        let fail = |reason: &str| Err(TemplateError::new(reason, action.source));
        let keyword = match tokens.first() {
            Some(Token::Word(w)) => *w,
            _ => return self.pipeline(tokens, action, "command", false),
        };
        let rest = trimmed(&tokens[1..]);
        match keyword {
            "if" | "with" | "range" => {
                let kind = match keyword {
                    "if" => Kind::If,
                    "with" => Kind::With,
                    _ => Kind::Range,
                };
                self.open(kind, rest, action, false)
            }
            "else" => self.otherwise(rest, action),
            "end" if rest.is_empty() => self.end(action),
            "break" | "continue" if rest.is_empty() => {
                match self
                    .blocks
                    .iter()
                    .any(|b| b.kind == Kind::Range && !b.in_else)
                {
                    true => Ok(()),
                    false => fail("`break` and `continue` belong inside `{{ range }}`"),
                }
            }
            "end" | "break" | "continue" => fail("this keyword stands alone in its action"),
            "define" | "block" | "template" => fail(
                "named templates (define, block, template) are not supported in alert text; \
                 write the text out",
            ),
            _ => self.pipeline(tokens, action, "command", false),
        }
    }

    fn open(
        &mut self,
        kind: Kind,
        pipeline: &[Token<'a>],
        action: &Action<'a>,
        continues: bool,
    ) -> Result<(), TemplateError> {
        let outer_vars = self.vars.len();
        let context = match kind {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        };
        self.pipeline(pipeline, action, context, kind == Kind::Range)?;
        self.blocks.push(Block {
            kind,
            source: action.source,
            in_else: false,
            outer_vars,
            own_vars: self.vars.len() - outer_vars,
            continues,
        });
        Ok(())
    }

    fn otherwise(&mut self, rest: &[Token<'a>], action: &Action<'a>) -> Result<(), TemplateError> {
        let Some(block) = self.blocks.last_mut().filter(|b| !b.in_else) else {
            return Err(TemplateError::new(
                "`{{ else }}` without an open `if`, `with` or `range`",
                action.source,
            ));
        };
        block.in_else = true;
        let keep = block.outer_vars + block.own_vars;
        let kind = block.kind;
        self.vars.truncate(keep);
        match rest.first() {
            None => Ok(()),
            Some(Token::Word("if")) if kind == Kind::If => {
                self.open(Kind::If, trimmed(&rest[1..]), action, true)
            }
            Some(_) => Err(TemplateError::new(
                "`{{ else }}` takes nothing but `if` after it, and only inside `{{ if }}`",
                action.source,
            )),
        }
    }

    fn end(&mut self, action: &Action<'a>) -> Result<(), TemplateError> {
        while let Some(block) = self.blocks.pop() {
            self.vars.truncate(block.outer_vars);
            if !block.continues {
                return Ok(());
            }
        }
        Err(TemplateError::new(
            "`{{ end }}` without an open `if`, `with` or `range`",
            action.source,
        ))
    }

    /// Declarations (`$x :=`, `$i, $e :=` in range), then commands joined by `|`.
    fn pipeline(
        &mut self,
        tokens: &[Token<'a>],
        action: &Action<'a>,
        context: &str,
        two_variables: bool,
    ) -> Result<(), TemplateError> {
        let mut p = Tokens {
            tokens,
            pos: 0,
            action,
            vars: &self.vars,
        };
        let declared = p.declarations(two_variables)?;
        p.commands(context, None)?;
        self.vars.extend(declared);
        Ok(())
    }
}

fn trimmed<'t, 'a>(tokens: &'t [Token<'a>]) -> &'t [Token<'a>] {
    let start = tokens.iter().take_while(|t| **t == Token::Space).count();
    let end = tokens.len()
        - tokens
            .iter()
            .rev()
            .take_while(|t| **t == Token::Space)
            .count();
    &tokens[start.min(end)..end]
}

/// What an operand is, as far as what may follow it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    Function,
    Nil,
    Value,
}

struct Tokens<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
    action: &'t Action<'a>,
    vars: &'t [String],
}

impl<'a> Tokens<'_, 'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, TemplateError> {
        Err(TemplateError::new(reason, self.action.source))
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Token::Space) {
            self.pos += 1;
        }
    }

    /// `$x :=` or `$x =` at the start; in range also `$i, $e :=`. Returns the new names.
    fn declarations(&mut self, two: bool) -> Result<Vec<String>, TemplateError> {
        let start = self.pos;
        let mut names = Vec::new();
        loop {
            self.skip_space();
            let Some(Token::Variable(name)) = self.peek().cloned() else {
                break;
            };
            self.pos += 1;
            self.skip_space();
            match self.peek() {
                Some(Token::Declare) => names.push(name.to_string()),
                Some(Token::Assign) if self.vars.iter().any(|v| v == name) => {}
                Some(Token::Assign) => return self.fail(format!("undefined variable {name}")),
                Some(Token::Comma) if two && names.is_empty() && start == 0 => {
                    names.push(name.to_string());
                    self.pos += 1;
                    continue;
                }
                _ if names.is_empty() => {
                    self.pos = start;
                    return Ok(names);
                }
                _ => return self.fail("expected `:=` after the range variables"),
            }
            self.pos += 1;
            return Ok(names);
        }
        if !names.is_empty() {
            return self.fail("expected a second variable after `,`");
        }
        self.pos = start;
        Ok(names)
    }

    /// Commands joined by `|`, up to the end of the action or a `)` when `closing` is set.
    fn commands(&mut self, context: &str, closing: Option<()>) -> Result<(), TemplateError> {
        let mut stage = 0;
        loop {
            self.skip_space();
            match self.peek() {
                None if closing.is_none() => break,
                Some(Token::RightParen) if closing.is_some() => {
                    self.pos += 1;
                    break;
                }
                None | Some(Token::RightParen) | Some(Token::Pipe) if stage > 0 => {
                    return self.fail("`|` must be followed by a function");
                }
                _ => {}
            }
            self.command(stage)?;
            stage += 1;
            if self.peek() == Some(&Token::Pipe) {
                self.pos += 1;
                self.skip_space();
                if matches!(self.peek(), None | Some(Token::RightParen)) {
                    return self.fail("`|` must be followed by a function");
                }
            }
        }
        if stage == 0 {
            return self.fail(format!("missing value for {context}"));
        }
        Ok(())
    }

    /// One command: an operand, or a function with its arguments.
    fn command(&mut self, stage: usize) -> Result<(), TemplateError> {
        let mut first = None;
        let mut count = 0;
        loop {
            self.skip_space();
            let operand = self.operand()?;
            first.get_or_insert(operand);
            count += 1;
            self.skip_space();
            if matches!(
                self.peek(),
                None | Some(Token::Pipe) | Some(Token::RightParen)
            ) {
                break;
            }
        }
        match first {
            Some(Operand::Nil) => self.fail("nil is not a command"),
            Some(Operand::Function) => Ok(()),
            _ if stage > 0 => self.fail("a stage after `|` must be a function"),
            _ if count > 1 => self.fail("only a function takes arguments"),
            _ => Ok(()),
        }
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let Some(token) = self.peek().cloned() else {
            return self.fail("missing value");
        };
        self.pos += 1;
        let (operand, chains) = match token {
            Token::Word("nil") => (Operand::Nil, false),
            Token::Word(w) if FUNCTIONS.contains(&w) => (Operand::Function, false),
            Token::Word(w) if is_keyword(w) => return self.fail(format!("unexpected `{w}`")),
            Token::Word(w) => {
                return self.fail(format!(
                    "function {w:?} is not one of Prometheus' template functions (such as \
                     humanize, humanizePercentage, printf, toUpper; the list is in Prometheus' \
                     template reference)"
                ));
            }
            Token::Variable(v) if !self.vars.iter().any(|d| d == v) => {
                return self.fail(format!(
                    "undefined variable {v}; Prometheus declares $value, $labels, \
                     $externalLabels and $externalURL"
                ));
            }
            Token::Variable(_) | Token::Field(_) => (Operand::Value, true),
            Token::Dot | Token::Number | Token::Bool | Token::Text => (Operand::Value, false),
            Token::LeftParen => {
                self.commands("parenthesized pipeline", Some(()))?;
                (Operand::Value, true)
            }
            other => return self.fail(format!("unexpected {}", describe(&other))),
        };
        while let Some(Token::Field(_)) = self.peek() {
            if !chains {
                return self.fail("a field (`.name`) may follow only a variable, a field or `( )`");
            }
            self.pos += 1;
        }
        if !matches!(
            self.peek(),
            None | Some(Token::Space | Token::Pipe | Token::RightParen)
        ) {
            return self.fail("operands must be separated by spaces");
        }
        Ok(operand)
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "block"
            | "template"
            | "break"
            | "continue"
    )
}

fn describe(token: &Token) -> &'static str {
    match token {
        Token::Declare => "`:=`",
        Token::Assign => "`=`",
        Token::Comma => "`,`",
        Token::Pipe => "`|`",
        Token::RightParen => "`)`",
        _ => "token",
    }
}
