//! Splits an alert template into text and actions, and actions into tokens, by the rules of Go's
//! text/template lexer (Go 1.19, what Prometheus 2.42 is built with). Forms that Go accepts but
//! alert text never needs (imaginary numbers, digit separators, octal escapes) are refused.

use super::TemplateError;

/// One token inside `{{ ... }}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Token<'a> {
    Space,
    Pipe,
    LeftParen,
    RightParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
    /// A string, raw string or character constant.
    Text,
    Number,
    Bool,
    /// `.` alone.
    Dot,
    /// `.Name`, one link of a field chain.
    Field(&'a str),
    /// `$` or `$name`.
    Variable(&'a str),
    /// A keyword or a function name.
    Word(&'a str),
}

/// One `{{ ... }}` with its tokens.
#[derive(Debug)]
pub struct Action<'a> {
    /// The action as written, for messages.
    pub source: &'a str,
    pub tokens: Vec<Token<'a>>,
    /// `{{/* ... */}}`: nothing to check but its delimiters.
    pub comment: bool,
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Go's names are letters, digits and `_` of its Unicode tables; ASCII is the part both agree on.
fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// The actions of a template, in order. Text between them is literal and needs no check.
pub fn actions(template: &str) -> Result<Vec<Action<'_>>, TemplateError> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(OPEN) {
        let start = &rest[at..];
        let mut inner = &start[OPEN.len()..];
        if let Some(after) = left_trim(inner) {
            inner = after;
        }
        let comment = inner.starts_with("/*");
        let (tokens, consumed) = match inner.strip_prefix("/*") {
            Some(comment) => (Vec::new(), comment_length(comment, start)? + 2),
            None => action_tokens(inner, start)?,
        };
        let end = start.len() - inner.len() + consumed;
        found.push(Action {
            source: &start[..end],
            tokens,
            comment,
        });
        rest = &start[end..];
    }
    Ok(found)
}

/// `- ` after `{{`: trims the text before; the dash needs a space after it.
fn left_trim(s: &str) -> Option<&str> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some('-'), Some(c)) if is_space(c) => Some(&s[2..]),
        _ => None,
    }
}

/// Length of ` -}}` or `}}` at the start of `s`, if it closes the action there.
fn right_delimiter(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    if let (Some(c), Some('-')) = (chars.next(), chars.next())
        && is_space(c)
        && s[c.len_utf8() + 1..].starts_with(CLOSE)
    {
        return Some(c.len_utf8() + 1 + CLOSE.len());
    }
    s.starts_with(CLOSE).then_some(CLOSE.len())
}

/// A comment must close right before the delimiter: `{{/* ... */}}` or `{{/* ... */ -}}`.
fn comment_length(comment: &str, action: &str) -> Result<usize, TemplateError> {
    let Some(end) = comment.find("*/") else {
        return Err(TemplateError::new("unclosed comment", action));
    };
    let after = &comment[end + 2..];
    match right_delimiter(after) {
        Some(close) => Ok(end + 2 + close),
        None => Err(TemplateError::new(
            "a comment must end right before `}}`",
            &action[..action.len() - after.len()],
        )),
    }
}

/// The tokens of one action and how many bytes of `s` they span, up to and with its `}}`.
fn action_tokens<'a>(
    s: &'a str,
    action: &'a str,
) -> Result<(Vec<Token<'a>>, usize), TemplateError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut depth = 0usize;
    loop {
        let rest = &s[pos..];
        // The action up to here, and up to and with the next character: what messages quote.
        let before = action.len() - s.len() + pos;
        let through = before + rest.chars().next().map_or(0, char::len_utf8);
        if let Some(close) = right_delimiter(rest) {
            if depth > 0 {
                return Err(TemplateError::new(
                    "unclosed left parenthesis",
                    &action[..before],
                ));
            }
            return Ok((tokens, pos + close));
        }
        if rest.is_empty() {
            return Err(TemplateError::new(
                "unclosed action: `}}` is missing",
                action,
            ));
        }
        let (token, len) = token(rest, &action[..before], &action[..through], &mut depth)?;
        pos += len;
        let after = &s[pos..];
        if matches!(
            token,
            Token::Number | Token::Bool | Token::Word(_) | Token::Field(_) | Token::Variable(_)
        ) && !at_terminator(after)
        {
            let next = action.len() - after.len() + after.chars().next().map_or(0, char::len_utf8);
            return Err(TemplateError::new(
                "a name or number runs into another character",
                &action[..next],
            ));
        }
        tokens.push(token);
    }
}

/// The token at the start of `rest` (not a delimiter, not empty) and its length; `depth` counts
/// open parentheses. `shown` and `through` are the action before and with its first character.
fn token<'a>(
    rest: &'a str,
    shown: &str,
    through: &str,
    depth: &mut usize,
) -> Result<(Token<'a>, usize), TemplateError> {
    let c = rest.chars().next().unwrap_or(' ');
    Ok(match c {
        c if is_space(c) => {
            let len = rest.find(|c: char| !is_space(c)).unwrap_or(rest.len());
            // ` -}}` is a trim marker, not a space and a minus.
            let len = if len > 1 && right_delimiter(&rest[len - 1..]).is_some() {
                len - 1
            } else {
                len
            };
            (Token::Space, len)
        }
        '|' => (Token::Pipe, 1),
        '(' => {
            *depth += 1;
            (Token::LeftParen, 1)
        }
        ')' => {
            *depth = depth
                .checked_sub(1)
                .ok_or_else(|| TemplateError::new("unexpected `)`", shown))?;
            (Token::RightParen, 1)
        }
        ',' => (Token::Comma, 1),
        '=' => (Token::Assign, 1),
        ':' if rest.starts_with(":=") => (Token::Declare, 2),
        '"' => (Token::Text, quoted(rest, shown)?),
        '`' => match rest[1..].find('`') {
            Some(end) => (Token::Text, end + 2),
            None => return Err(TemplateError::new("unterminated raw string", through)),
        },
        '\'' => (Token::Text, character(rest, shown)?),
        '$' => {
            let len = 1 + word_length(&rest[1..]);
            (Token::Variable(&rest[..len]), len)
        }
        '.' if !rest[1..].starts_with(|c: char| c.is_ascii_digit()) => {
            match word_length(&rest[1..]) {
                0 => (Token::Dot, 1),
                n => (Token::Field(&rest[..1 + n]), 1 + n),
            }
        }
        c if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') => {
            let len = number(rest, shown)?;
            in_range(&rest[..len], shown)?;
            (Token::Number, len)
        }
        c if c.is_alphanumeric() && !c.is_ascii() => {
            return Err(TemplateError::new(
                "names in actions are ASCII letters, digits and `_`",
                through,
            ));
        }
        c if is_alphanumeric(c) => {
            let len = word_length(rest);
            match &rest[..len] {
                "true" | "false" => (Token::Bool, len),
                word => (Token::Word(word), len),
            }
        }
        other => {
            return Err(TemplateError::new(
                format!("unexpected {other:?} in an action"),
                through,
            ));
        }
    })
}

fn word_length(s: &str) -> usize {
    s.find(|c: char| !is_alphanumeric(c)).unwrap_or(s.len())
}

/// What may follow a name or number: Go's terminators.
fn at_terminator(s: &str) -> bool {
    match s.chars().next() {
        None => true,
        Some(c) if is_space(c) => true,
        Some('.' | ',' | '|' | ':' | ')' | '(') => true,
        _ => s.starts_with(CLOSE),
    }
}

/// A double-quoted string with Go's simple escapes (`\n`, `\"`, `\\`, `\xFF`, `\u00e9`, ...).
fn quoted(s: &str, shown: &str) -> Result<usize, TemplateError> {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok(i + 1),
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, 'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '"')) => {}
                Some((_, 'x')) => hex_digits(&mut chars, 2, shown)?,
                Some((_, 'u')) => hex_digits(&mut chars, 4, shown)?,
                _ => {
                    return Err(TemplateError::new(
                        "unknown escape in a string: use \\n, \\t, \\\", \\\\, \\xFF or \\u00e9",
                        shown,
                    ));
                }
            },
            _ => {}
        }
    }
    Err(TemplateError::new("unterminated string", shown))
}

fn hex_digits(
    chars: &mut impl Iterator<Item = (usize, char)>,
    count: usize,
    shown: &str,
) -> Result<(), TemplateError> {
    let mut value = 0u32;
    for _ in 0..count {
        match chars.next().and_then(|(_, c)| c.to_digit(16)) {
            Some(d) => value = value * 16 + d,
            None => return Err(TemplateError::new("bad hexadecimal escape", shown)),
        }
    }
    if count == 4 && (0xD800..0xE000).contains(&value) {
        return Err(TemplateError::new("escape of a surrogate half", shown));
    }
    Ok(())
}

/// A character constant: one character, or one of the simple escapes.
fn character(s: &str, shown: &str) -> Result<usize, TemplateError> {
    let mut chars = s.char_indices().skip(1);
    let ok = match chars.next() {
        Some((_, '\\')) => matches!(
            chars.next(),
            Some((_, 'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '\''))
        ),
        Some((_, '\'' | '\n')) | None => false,
        Some(_) => true,
    };
    match chars.next() {
        Some((i, '\'')) if ok => Ok(i + 1),
        _ => Err(TemplateError::new(
            "a character constant holds one character, such as 'a' or '\\n'",
            shown,
        )),
    }
}

/// Go reads integers as 64-bit, a leading 0 as octal, and floats must be finite.
fn in_range(number: &str, shown: &str) -> Result<(), TemplateError> {
    let unsigned = number.trim_start_matches(['+', '-']);
    let ok = if let Some(hex) = unsigned.strip_prefix("0x").or(unsigned.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).is_ok()
    } else if unsigned.contains(['.', 'e', 'E']) {
        number.parse::<f64>().is_ok_and(f64::is_finite)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        u64::from_str_radix(&unsigned[1..], 8).is_ok()
    } else {
        number.parse::<i64>().is_ok() || unsigned.parse::<u64>().is_ok()
    };
    match ok {
        true => Ok(()),
        false => Err(TemplateError::new(
            "number out of range (integers are 64-bit, a leading 0 means octal)",
            shown,
        )),
    }
}

/// A decimal number (sign, digits, fraction, exponent) or a hexadecimal integer.
fn number(s: &str, shown: &str) -> Result<usize, TemplateError> {
    let bytes = s.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |from: usize, hex: bool| {
        from + bytes[from..]
            .iter()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count()
    };
    if s[i..].starts_with("0x") || s[i..].starts_with("0X") {
        let end = digits(i + 2, true);
        if end == i + 2 {
            return Err(TemplateError::new("bad number", shown));
        }
        return Ok(end);
    }
    let whole = digits(i, false);
    let mut any = whole > i;
    i = whole;
    if bytes.get(i) == Some(&b'.') {
        let fraction = digits(i + 1, false);
        any |= fraction > i + 1;
        i = fraction;
    }
    if any && matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = i + 1 + usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
        let exponent = digits(sign, false);
        if exponent == sign {
            return Err(TemplateError::new("bad number", shown));
        }
        i = exponent;
    }
    if any {
        Ok(i)
    } else {
        Err(TemplateError::new("bad number", shown))
    }
}
