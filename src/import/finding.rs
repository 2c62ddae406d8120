//! What the importer tells the user about each source field it did not carry over as it was.

use std::cell::RefCell;
use std::fmt;

/// How a source field fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Carried over, but changed or completed: a rename, a fallback, a default Plimsoll adds.
    Changed,
    /// Has no counterpart in a Plimsoll SLO and is not carried over.
    Dropped,
    /// The SLO this field belongs to is not produced.
    Refused,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Changed => "changed",
            Severity::Dropped => "not carried",
            Severity::Refused => "refused",
        }
    }
}

/// One report: where (file, document, field path), how, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `file` or `file#2`.
    pub location: String,
    /// The source field's path, such as `slos[0].alerting.name`.
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.location,
            self.field,
            self.severity.as_str(),
            self.message
        )
    }
}

/// The findings of one source document, collected while its fields are read.
#[derive(Debug, Default)]
pub struct Findings {
    location: String,
    list: RefCell<Vec<Finding>>,
}

impl Findings {
    pub fn new(location: impl Into<String>) -> Self {
        Findings {
            location: location.into(),
            list: RefCell::default(),
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn push(&self, field: impl Into<String>, severity: Severity, message: impl Into<String>) {
        self.list.borrow_mut().push(Finding {
            location: self.location.clone(),
            field: field.into(),
            severity,
            message: message.into(),
        });
    }

    pub fn changed(&self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, Severity::Changed, message);
    }

    pub fn dropped(&self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, Severity::Dropped, message);
    }

    pub fn refused(&self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, Severity::Refused, message);
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.list.into_inner()
    }
}
