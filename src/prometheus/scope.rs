//! The labels that scope every reading to this cluster or tenant (`--reading-selector`): behind
//! Thanos, Mimir or a federating Prometheus, series of the same SLO name arrive from several
//! clusters, told apart only by their external labels.

use std::collections::BTreeSet;

use crate::model::promql::{LabelMatcher, parse_selector};
use crate::rules::names;

/// Matchers added to every status query, and the label names they allow on our series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadingScope {
    matchers: Vec<LabelMatcher>,
}

/// Why a `--reading-selector` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "--reading-selector {given:?} is not a list of label matchers: {problem}; write it as \
         `cluster=\"a\"` or `cluster=\"a\",tenant=~\"t1|t2\"`"
    )]
    Syntax { given: String, problem: String },
    #[error(
        "--reading-selector {given:?}: {label:?} is not a plain label name ([a-zA-Z_][a-zA-Z0-9_]*); \
         external labels are such names, such as `cluster`"
    )]
    Name { given: String, label: String },
    #[error(
        "--reading-selector may not match the label {label:?}: Plimsoll sets it on its own series; \
         name the external labels of your cluster instead, such as `cluster=\"a\"`"
    )]
    Reserved { given: String, label: String },
}

impl ReadingScope {
    /// Parses `cluster="a",tenant=~"x|y"` (braces optional). Empty text scopes nothing.
    pub fn parse(text: &str) -> Result<ReadingScope, ScopeError> {
        let inner = text
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim();
        if inner.is_empty() {
            return Ok(ReadingScope::default());
        }
        let selector = parse_selector(&format!("plimsoll_scope{{{inner}}}")).map_err(|p| {
            ScopeError::Syntax {
                given: text.to_string(),
                problem: p.to_string(),
            }
        })?;
        let ours = [
            names::LABEL_SLO,
            names::LABEL_NAMESPACE,
            names::LABEL_SERVICE,
            names::LABEL_UID,
            "__name__",
        ];
        if let Some(m) = selector
            .matchers
            .iter()
            .find(|m| !crate::model::names::is_label_name(&m.name))
        {
            return Err(ScopeError::Name {
                given: text.to_string(),
                label: m.name.clone(),
            });
        }
        if let Some(m) = selector
            .matchers
            .iter()
            .find(|m| ours.contains(&m.name.as_str()))
        {
            return Err(ScopeError::Reserved {
                given: text.to_string(),
                label: m.name.clone(),
            });
        }
        Ok(ReadingScope {
            matchers: selector.matchers,
        })
    }

    /// `,cluster="a"`: to append inside a selector's braces.
    pub fn suffix(&self) -> String {
        self.matchers.iter().map(|m| format!(",{m}")).collect()
    }

    /// Labels our series may carry besides their own: those the scope names (external labels).
    pub fn allowed_labels(&self) -> BTreeSet<String> {
        self.matchers.iter().map(|m| m.name.clone()).collect()
    }

    pub fn matchers(&self) -> &[LabelMatcher] {
        &self.matchers
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }
}

impl std::fmt::Display for ReadingScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
        write!(f, "{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_matchers_with_or_without_braces() {
        let s = ReadingScope::parse(r#"cluster="a", tenant=~"t1|t2""#).unwrap();
        assert_eq!(s.suffix(), r#",cluster="a",tenant=~"t1|t2""#);
        assert_eq!(
            s.allowed_labels().into_iter().collect::<Vec<_>>(),
            ["cluster", "tenant"]
        );
        assert_eq!(
            ReadingScope::parse(r#"{cluster="a"}"#).unwrap().suffix(),
            r#",cluster="a""#
        );
        assert!(ReadingScope::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_syntax_and_our_own_labels() {
        let bad = ReadingScope::parse("cluster=a").unwrap_err();
        assert!(bad.to_string().contains("--reading-selector"), "{bad}");
        let ours = ReadingScope::parse(r#"slo_namespace="shop""#).unwrap_err();
        assert!(matches!(ours, ScopeError::Reserved { .. }), "{ours}");
        let dotted = ReadingScope::parse(r#""k8s.cluster"="a""#).unwrap_err();
        assert!(dotted.to_string().contains("\"k8s.cluster\""), "{dotted}");
    }
}
