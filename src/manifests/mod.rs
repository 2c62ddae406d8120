//! SLO manifests as users write them: YAML files in, validated models out.

mod decode;
mod load;

pub use decode::{Decoded, cel_check, decode};
pub use load::{Document, LoadError, Source, expand, parse, read};

use std::collections::HashMap;
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

/// A second definition of one SLO (namespace and name) among the inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "metadata.name: SLO {key} is also defined in {first}; define each SLO (namespace/name) once"
)]
pub struct DuplicateSlo {
    /// `<namespace>/<name>`.
    pub key: String,
    /// Where the first definition is.
    pub first: String,
}

/// Where each SLO was first defined. Two definitions would give two rule groups of one name, and
/// Prometheus refuses the whole file for that, so the second is refused naming both places.
#[derive(Debug, Default)]
pub struct Definitions(HashMap<String, String>);

impl Definitions {
    /// Records `namespace/name` as defined at `location`, unless it was defined before.
    pub fn claim(
        &mut self,
        namespace: &str,
        name: &str,
        location: &str,
    ) -> Result<(), DuplicateSlo> {
        let key = format!("{namespace}/{name}");
        match self.0.get(&key) {
            Some(first) => Err(DuplicateSlo {
                key,
                first: first.clone(),
            }),
            None => {
                self.0.insert(key, location.to_string());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_definition_names_the_first() {
        let mut seen = Definitions::default();
        assert!(seen.claim("shop", "checkout", "a.yaml").is_ok());
        assert!(seen.claim("other", "checkout", "a.yaml#2").is_ok());
        let twice = seen.claim("shop", "checkout", "b.yaml#3").unwrap_err();
        assert_eq!(twice.first, "a.yaml");
        assert_eq!(
            twice.to_string(),
            "metadata.name: SLO shop/checkout is also defined in a.yaml; define each SLO \
             (namespace/name) once"
        );
    }
}
