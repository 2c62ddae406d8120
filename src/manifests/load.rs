//! Reading YAML manifests from files, directories (recursively) and standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// How standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// One YAML document of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file path as given, or [`STDIN_NAME`].
    pub source: String,
    /// 1-based position among the source's non-empty documents.
    pub index: usize,
    /// How many non-empty documents the source holds; the position is shown only when > 1.
    pub count: usize,
    pub value: Value,
}

impl Document {
    /// `file` or `file#2`: where to look.
    pub fn location(&self) -> String {
        if self.count > 1 {
            format!("{}#{}", self.source, self.index)
        } else {
            self.source.clone()
        }
    }
}

/// What one source yielded.
#[derive(Debug)]
pub enum Source {
    Documents(Vec<Document>),
    /// The text is not YAML; nothing in it can be read.
    Malformed {
        source: String,
        message: String,
    },
}

/// Errors that stop reading: the input is not there or not readable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid UTF-8 text")]
    NotText { path: String },
}

/// Expands the inputs into files: directories are walked recursively for `.yaml`, `.yml` and
/// `.json` files, in name order so output is stable. `-` stands for standard input.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            files.push(input.clone());
            continue;
        }
        let meta = std::fs::metadata(input).map_err(|source| io(input, source))?;
        if meta.is_dir() {
            walk(input, &mut files)?;
        } else {
            files.push(input.clone());
        }
    }
    // Overlapping inputs (`-f slos slos/a.yaml`) name one file twice: it is read once, not
    // reported as defining its SLOs twice.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| {
        f.as_os_str() == "-" || seen.insert(std::fs::canonicalize(f).unwrap_or(f.clone()))
    });
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| io(dir, source))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|source| io(dir, source))?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_manifest_file(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Reads one file (or `-`) and splits it into documents.
pub fn read(path: &Path) -> Result<Source, LoadError> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        STDIN_NAME.to_string()
    } else {
        path.display().to_string()
    };
    let bytes = if stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| io(path, source))?;
        buf
    } else {
        std::fs::read(path).map_err(|source| io(path, source))?
    };
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText { path: name.clone() })?;
    Ok(parse(&name, &text))
}

/// Splits YAML text into documents. JSON is YAML too.
pub fn parse(source: &str, text: &str) -> Source {
    match serde_saphyr::from_multiple::<Value>(text) {
        Ok(values) => {
            let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
            let count = values.len();
            Source::Documents(
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| Document {
                        source: source.to_string(),
                        index: i + 1,
                        count,
                        value,
                    })
                    .collect(),
            )
        }
        Err(e) => Source::Malformed {
            source: source.to_string(),
            message: one_line(&e.to_string()),
        },
    }
}

/// Parser messages continue with a source excerpt; the CLI prints one line per problem, and the
/// first line already says where and what.
fn one_line(message: &str) -> String {
    let first = message.lines().map(str::trim).find(|l| !l.is_empty());
    let first = first.unwrap_or("not valid YAML");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn io(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_document_yaml_and_skips_empty_documents() {
        let Source::Documents(docs) = parse("f.yaml", "a: 1\n---\n---\nb: 2\n") else {
            panic!("should parse");
        };
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].location(), "f.yaml#1");
        assert_eq!(docs[1].location(), "f.yaml#2");
        assert_eq!(docs[1].value, serde_json::json!({"b": 2}));
    }

    #[test]
    fn overlapping_inputs_name_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "a: 1\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
        let dotted = dir.path().join(".").join("a.yaml");
        let files = expand(&[dir.path().to_path_buf(), a.clone(), dotted]).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
    }

    #[test]
    fn single_documents_have_no_index() {
        let Source::Documents(docs) = parse("f.yaml", "a: 1\n") else {
            panic!("should parse");
        };
        assert_eq!(docs[0].location(), "f.yaml");
    }

    #[test]
    fn reports_malformed_yaml_on_one_line() {
        let Source::Malformed { message, .. } = parse("f.yaml", "a: [1, 2\nb: }\n") else {
            panic!("should not parse");
        };
        assert!(!message.contains('\n'));
        assert!(!message.is_empty());
    }

    #[test]
    fn walks_directories_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in ["b.yaml", "a.yml", "sub/c.json", "notes.txt", ".hidden.yaml"] {
            std::fs::write(dir.path().join(f), "x: 1\n").unwrap();
        }
        let files = expand(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "sub/c.json"]);
    }

    #[test]
    fn missing_inputs_are_io_errors() {
        let err = expand(&[PathBuf::from("/nonexistent/slo.yaml")]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/slo.yaml"));
    }
}
