//! Validation errors: where the problem is, what it is, and what would be valid.

use std::fmt;

/// One problem in one field of a manifest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    /// Dotted path from the object's root, such as `spec.indicator.ratio.total`.
    pub path: String,
    /// What is wrong, with the fix.
    pub problem: Problem,
}

impl FieldError {
    pub fn new(path: impl Into<String>, problem: Problem) -> Self {
        Self {
            path: path.into(),
            problem,
        }
    }
}

/// Every problem validation reports. Each message says what would be valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("is required: {hint}")]
    Required { hint: &'static str },
    #[error("{message}")]
    Invalid { message: String },
    #[error("must be {bound}, got {value}")]
    OutOfRange { value: String, bound: String },
    #[error("{reason} in duration {value:?}: {hint}")]
    Duration {
        value: String,
        reason: String,
        hint: String,
    },
    #[error("PromQL does not parse: {detail} (in `{query}`)")]
    PromqlSyntax { query: String, detail: String },
    #[error(
        "must be a plain vector selector such as `metric{{label=\"value\"}}`, not {found}: {hint}"
    )]
    NotASelector { found: String, hint: String },
    #[error(
        "{what} {name:?} is not a valid Prometheus label name: use letters, digits and underscores, not starting with a digit or \"__\""
    )]
    LabelName { what: &'static str, name: String },
    #[error("label {name:?} is reserved for Plimsoll's own series ({reserved}); pick another name")]
    ReservedLabel { name: String, reserved: String },
    #[error(
        "is not a Prometheus alert template that parses: {detail}; for a literal `{{{{` write `{{{{ \"{{{{\" }}}}`"
    )]
    Template { detail: String },
    #[error("{name:?} is listed twice; list each once")]
    Duplicate { name: String },
    #[error("set exactly one of {fields}, found {found}")]
    ExactlyOne { fields: String, found: String },
    #[error("is not allowed here: {hint}")]
    NotAllowed { hint: String },
    #[error("unknown field: {hint}")]
    UnknownField { hint: String },
    #[error("{message}")]
    Decode { message: String },
}

impl Problem {
    /// A short, fixed reason, for condition reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::Required { .. } => "Required",
            Problem::Invalid { .. } => "Invalid",
            Problem::OutOfRange { .. } => "OutOfRange",
            Problem::Duration { .. } => "InvalidDuration",
            Problem::PromqlSyntax { .. } => "PromQLSyntax",
            Problem::NotASelector { .. } => "NotASelector",
            Problem::LabelName { .. } => "InvalidLabelName",
            Problem::ReservedLabel { .. } => "ReservedLabel",
            Problem::Template { .. } => "AlertTemplate",
            Problem::Duplicate { .. } => "Duplicate",
            Problem::ExactlyOne { .. } => "ExactlyOne",
            Problem::NotAllowed { .. } => "NotAllowed",
            Problem::UnknownField { .. } => "UnknownField",
            Problem::Decode { .. } => "Decode",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Problem::Invalid {
            message: message.into(),
        }
    }
}

/// All problems found in one object, in the order of the fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, path: impl Into<String>, problem: Problem) {
        self.0.push(FieldError::new(path, problem));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
