//! SLO manifests as users write them: YAML files in, validated models out.

mod decode;
mod load;

pub use decode::{Decoded, cel_check, decode};
pub use load::{Document, LoadError, Source, expand, parse, read};

use std::path::PathBuf;

/// One document's verdict, with where it came from.
#[derive(Debug)]
pub struct Checked {
    /// `file` or `file#2`.
    pub location: String,
    pub outcome: Outcome,
}

/// What a document turned out to be; a file that is not YAML counts as one malformed document.
#[derive(Debug)]
pub enum Outcome {
    Decoded(Decoded),
    Malformed(String),
}

/// Reads and checks every document of the given files, in order. Files that cannot be read are
/// returned as errors beside the verdicts, so one missing file does not hide the others' problems.
pub fn check_files(files: &[PathBuf]) -> (Vec<Checked>, Vec<LoadError>) {
    let mut checked = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match read(file) {
            Ok(Source::Documents(docs)) => checked.extend(docs.into_iter().map(|doc| Checked {
                location: doc.location(),
                outcome: Outcome::Decoded(decode(&doc.value)),
            })),
            Ok(Source::Malformed { source, message }) => checked.push(Checked {
                location: source,
                outcome: Outcome::Malformed(message),
            }),
            Err(e) => errors.push(e),
        }
    }
    (checked, errors)
}
