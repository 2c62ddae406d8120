//! `plimsoll import`: Sloth, Pyrra and OpenSLO SLOs in, Plimsoll SLO manifests out, with every
//! source field that was not carried over as it was reported on stderr and in the output.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::import::{self, Finding, Imported, Severity};
use crate::manifests::{self, Source};

use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sloth, Pyrra or OpenSLO files or directories (directories recursively: .yaml, .yml,
    /// .json); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", num_args = 1.., required = true)]
    pub filenames: Vec<PathBuf>,
    /// Namespace of the SLOs whose source names none (Sloth spec files, OpenSLO); without it they
    /// have no metadata.namespace, as kubectl then applies them to its current namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// `-` (default) writes all SLOs to standard output as one YAML stream; a directory gets one
    /// file per SLO, `<namespace>/<name>.yaml` (or `<name>.yaml` without a namespace).
    #[arg(short, long, value_name = "DIR|-", default_value = "-")]
    pub out: PathBuf,
    /// Print only refusals on stderr, not what was changed or left out.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let files = match manifests::expand(&args.filenames) {
        Ok(files) => files,
        Err(e) => {
            let _ = writeln!(err, "plimsoll import: {e}");
            return EXIT_ERROR;
        }
    };
    let mut documents = Vec::new();
    let mut unreadable = 0;
    for file in &files {
        match manifests::read(file) {
            Ok(Source::Documents(docs)) => documents.extend(docs),
            Ok(Source::Malformed { source, message }) => {
                let _ = writeln!(err, "{source}: (document): refused: not YAML: {message}");
                unreadable += 1;
            }
            // Text that is not UTF-8 is one file's problem, as YAML that does not parse.
            Err(e @ manifests::LoadError::NotText { .. }) => {
                let _ = writeln!(err, "{e}: (document): refused");
                unreadable += 1;
            }
            Err(e) => {
                let _ = writeln!(err, "plimsoll import: {e}");
                return EXIT_ERROR;
            }
        }
    }
    let result = import::import(&documents, args.namespace.as_deref());
    // On a terminal, the stream's comments above each SLO already show the findings.
    let to_terminal = args.out.as_os_str() == "-" && std::io::stdout().is_terminal();
    for line in report(&result.findings, args.quiet || to_terminal) {
        let _ = writeln!(err, "{}", one_line(&line));
    }
    let written = if args.out.as_os_str() == "-" {
        write_stream(&result.slos, out).map_err(|e| format!("standard output: {e}"))
    } else {
        write_dir(&result.slos, &args.out)
    };
    if let Err(e) = written {
        let _ = writeln!(err, "plimsoll import: {e}");
        return EXIT_ERROR;
    }
    let refused = result
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Refused)
        .count();
    let _ = writeln!(
        err,
        "plimsoll import: {} SLO(s) from {} document(s) in {} file(s); {} refusal(s), {} \
         reported change(s) and left-out field(s)",
        result.slos.len(),
        documents.len(),
        files.len(),
        refused + unreadable,
        result.findings.len() - refused,
    );
    if refused + unreadable > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}

/// The report on stderr: each finding once. The same note about the same field of many SLOs (a
/// default every Pyrra SLO gets, say) is one line naming where, not one line per SLO.
fn report(findings: &[Finding], quiet: bool) -> Vec<String> {
    let mut groups: Vec<(&Finding, Vec<&str>)> = Vec::new();
    for finding in findings {
        if quiet && finding.severity != Severity::Refused {
            continue;
        }
        let same = |(f, _): &&mut (&Finding, Vec<&str>)| {
            f.field == finding.field
                && f.severity == finding.severity
                && f.message == finding.message
        };
        match groups.iter_mut().find(same) {
            Some((_, locations)) => locations.push(&finding.location),
            None => groups.push((finding, vec![&finding.location])),
        }
    }
    groups
        .into_iter()
        .map(|(finding, locations)| match locations[..] {
            [_] => finding.to_string(),
            _ => format!(
                "{}: {}: {} (in {} documents: {})",
                finding.field,
                finding.severity.as_str(),
                finding.message,
                locations.len(),
                listed(&locations)
            ),
        })
        .collect()
}

/// `a.yaml, b.yaml#2, c.yaml and 36 more`.
fn listed(locations: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut text = locations[..locations.len().min(SHOWN)].join(", ");
    if locations.len() > SHOWN {
        text.push_str(&format!(" and {} more", locations.len() - SHOWN));
    }
    text
}

fn write_stream(slos: &[Imported], out: &mut impl Write) -> std::io::Result<()> {
    for (i, slo) in slos.iter().enumerate() {
        if i > 0 {
            writeln!(out, "---")?;
        }
        out.write_all(manifest(slo).as_bytes())?;
    }
    Ok(())
}

fn write_dir(slos: &[Imported], dir: &Path) -> Result<(), String> {
    for slo in slos {
        let name = slo.object.metadata.name.as_deref().unwrap_or("slo");
        let folder = match &slo.object.metadata.namespace {
            Some(ns) => dir.join(ns),
            None => dir.to_path_buf(),
        };
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let path = folder.join(format!("{name}.yaml"));
        std::fs::write(&path, manifest(slo)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The manifest, with what the import changed or left out as comments above it.
fn manifest(slo: &Imported) -> String {
    let mut text = String::new();
    for finding in &slo.findings {
        text.push_str(&comment(finding));
    }
    text.push_str(&serde_saphyr::to_string(&slo.object).unwrap_or_default());
    text
}

fn comment(finding: &Finding) -> String {
    one_line(&format!(
        "# {}: {}: {}",
        finding.field,
        finding.severity.as_str(),
        finding.message
    )) + "\n"
}

/// Source text in a report or a YAML comment must not start a line of its own.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
