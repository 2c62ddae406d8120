//! The SLOs of local mode: read from manifest files, re-read when a file changes. Invalid
//! documents are reported with `plimsoll validate`'s messages and skipped; the rest are used.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::manifests::{self, Decoded, LoadError, Outcome};
use crate::model::Slo;

/// One valid SLO and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// `<namespace>/<name>`.
    pub key: String,
    pub namespace: String,
    pub slo: Slo,
    /// `file` or `file#2`.
    pub location: String,
    /// The document as read, printed as YAML (the UI shows it).
    pub manifest: Arc<str>,
}

/// What the manifest files hold: the valid SLOs in file order, and one line per problem.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    pub slos: Vec<Loaded>,
    /// `<file>[#doc]: <field>: <problem>`, as `plimsoll validate` prints them.
    pub problems: Vec<String>,
    /// Files with at least one problem.
    pub skipped_files: Vec<String>,
}

/// When each manifest file was last changed, to tell whether anything needs re-reading.
pub type Snapshot = BTreeMap<PathBuf, Option<(SystemTime, u64)>>;

/// The manifest files under `inputs` and their modification times and sizes.
pub fn snapshot(inputs: &[PathBuf]) -> Result<Snapshot, LoadError> {
    let files = manifests::expand(inputs)?;
    Ok(files
        .into_iter()
        .map(|file| {
            let stamp = std::fs::metadata(&file)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (file, stamp)
        })
        .collect())
}

/// Reads and checks the files of a snapshot.
pub fn load(files: &Snapshot, default_namespace: &str) -> Catalog {
    let paths: Vec<PathBuf> = files.keys().cloned().collect();
    let (checked, io_errors) = manifests::check_files(&paths);
    let mut catalog = Catalog::default();
    let mut definitions = manifests::Definitions::default();
    for e in io_errors {
        catalog.problems.push(e.to_string());
        let (LoadError::Io { path, .. } | LoadError::NotText { path }) = e;
        catalog.skipped_files.push(path);
    }
    for doc in checked {
        let file = doc
            .location
            .split_once('#')
            .map_or(doc.location.as_str(), |(f, _)| f)
            .to_string();
        let before = catalog.problems.len();
        match doc.outcome {
            Outcome::Decoded(Decoded::Valid(valid)) => {
                let (object, slo) = *valid;
                let manifest = Arc::from(serde_saphyr::to_string(&object).unwrap_or_default());
                let namespace = slo
                    .namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_string());
                match definitions.claim(&namespace, &slo.name, &doc.location) {
                    Err(twice) => catalog
                        .problems
                        .push(format!("{}: {twice}; this one is skipped", doc.location)),
                    Ok(()) => catalog.slos.push(Loaded {
                        key: format!("{namespace}/{}", slo.name),
                        namespace,
                        slo,
                        location: doc.location,
                        manifest,
                    }),
                }
            }
            Outcome::Decoded(Decoded::Other { .. }) => {}
            Outcome::Decoded(Decoded::Invalid(errors)) => catalog
                .problems
                .extend(errors.iter().map(|e| format!("{}: {e}", doc.location))),
            Outcome::Malformed(message) => catalog
                .problems
                .push(format!("{}: (yaml): {message}", doc.location)),
        }
        if catalog.problems.len() > before && !catalog.skipped_files.contains(&file) {
            catalog.skipped_files.push(file);
        }
    }
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(name: &str, objective: &str) -> String {
        format!(
            "apiVersion: plimsoll.dev/v1alpha1\nkind: ServiceLevelObjective\n\
             metadata: {{name: {name}}}\n\
             spec:\n  service: s\n  objective: {objective}\n  window: 30d\n\
             \x20 indicator: {{ratio: {{errors: 'e_total{{code=\"500\"}}', total: e_total}}}}\n"
        )
    }

    #[test]
    fn valid_slos_load_and_bad_documents_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), slo("a", "99.9")).unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            format!("{}---\n{}", slo("b", "100"), slo("c", "99")),
        )
        .unwrap();
        std::fs::write(dir.path().join("d.yaml"), slo("a", "99.5")).unwrap();
        std::fs::write(dir.path().join("e.yaml"), "a: [1\n").unwrap();
        let files = snapshot(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.len(), 4);
        let catalog = load(&files, "team");
        let keys: Vec<&str> = catalog.slos.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["team/a", "team/c"]);
        let b = dir.path().join("b.yaml").display().to_string();
        let d = dir.path().join("d.yaml").display().to_string();
        let e = dir.path().join("e.yaml").display().to_string();
        assert_eq!(catalog.problems.len(), 3, "{:?}", catalog.problems);
        assert_eq!(
            catalog.problems[0],
            format!(
                "{b}#1: spec.objective: must be a percentage strictly between 0 and 100, such as \
                 99.9, got 100"
            )
        );
        assert!(
            catalog.problems[1].starts_with(&format!(
                "{d}: metadata.name: SLO team/a is also defined in"
            )),
            "{}",
            catalog.problems[1]
        );
        assert!(catalog.problems[2].starts_with(&format!("{e}: (yaml): ")));
        assert_eq!(catalog.skipped_files, [b, d, e]);
        assert_eq!(
            catalog.slos[1].location,
            format!("{}#2", dir.path().join("b.yaml").display())
        );
    }

    #[test]
    fn a_snapshot_changes_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, slo("a", "99.9")).unwrap();
        let first = snapshot(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(first, snapshot(&[dir.path().to_path_buf()]).unwrap());
        std::fs::write(&file, slo("a", "99.95")).unwrap();
        assert_ne!(
            first,
            snapshot(&[dir.path().to_path_buf()]).unwrap(),
            "size"
        );
        std::fs::write(dir.path().join("b.yml"), "x: 1\n").unwrap();
        assert_eq!(snapshot(&[dir.path().to_path_buf()]).unwrap().len(), 2);
    }
}
