//! Prometheus alert templates: the labels and annotations of alerting rules are Go text/template
//! text with Prometheus' functions, and `promtool check rules` (so Prometheus, local mode's reload
//! and prometheus-operator's admission webhook) refuses the whole rule file when one does not
//! parse. Users' alert text is checked here as Prometheus 2.42 parses it; text of ours that quotes
//! user input is made literal with [`literal`].

mod lex;
mod parse;

/// Go's built-in template functions and Prometheus' own (template/template.go, v2.42).
pub const FUNCTIONS: &[&str] = &[
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// Why a template would not parse, and the part of it that does not.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} in `{at}`")]
pub struct TemplateError {
    pub reason: String,
    /// The action (`{{ ... }}`) where it fails, shortened.
    pub at: String,
}

/// The longest piece of a template quoted in a message.
const SHOWN: usize = 80;

impl TemplateError {
    fn new(reason: impl Into<String>, at: &str) -> Self {
        let at = match at.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}...", &at[..cut]),
            None => at.to_string(),
        };
        TemplateError {
            reason: reason.into(),
            at,
        }
    }
}

/// Checks that Prometheus parses `text` as an alert template.
pub fn check(text: &str) -> Result<(), TemplateError> {
    parse::check(&lex::actions(text)?)
}

/// `text` as template text that renders exactly as written: each `{{` becomes an action that
/// prints `{{`, and a trailing `{` is printed the same way, so no `{{` forms where this text meets
/// what follows it.
pub fn literal(text: &str) -> String {
    const OPEN: &str = r#"{{"{{"}}"#;
    let mut out = text.replace("{{", OPEN);
    if out.ends_with('{') {
        out.pop();
        out.push_str(r#"{{"{"}}"#);
    }
    out
}

#[cfg(test)]
mod tests;
