//! `plimsoll validate`: the same checks as the operator, before anything reaches a cluster. Fit
//! for pre-commit hooks (files as arguments) and CI (directories).

use std::io::Write;
use std::path::PathBuf;

use crate::manifests::{self, Decoded, Outcome};

use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads
    /// standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", num_args = 1..)]
    pub filenames: Vec<PathBuf>,
    /// More paths, as pre-commit passes them.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Namespace of SLOs whose manifest names none, as `generate` and `local` place them; two
    /// definitions of one namespace/name are refused.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Print only problems, no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    other: usize,
    io_errors: usize,
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let inputs: Vec<PathBuf> = args.filenames.iter().chain(&args.paths).cloned().collect();
    if inputs.is_empty() {
        let _ = writeln!(
            err,
            "plimsoll validate: no input; give files or directories with -f, or - for stdin"
        );
        return EXIT_ERROR;
    }
    let mut tally = Tally::default();
    let files = match manifests::expand(&inputs) {
        Ok(files) => files,
        Err(e) => {
            let _ = writeln!(err, "plimsoll validate: {e}");
            return EXIT_ERROR;
        }
    };
    let (checked, io_errors) = manifests::check_files(&files);
    for e in &io_errors {
        let _ = writeln!(err, "plimsoll validate: {e}");
    }
    tally.io_errors = io_errors.len();
    let mut definitions = manifests::Definitions::default();
    for doc in checked {
        match doc.outcome {
            Outcome::Decoded(Decoded::Valid(valid)) => {
                let slo = &valid.1;
                let namespace = slo.namespace.as_deref().unwrap_or(&args.namespace);
                match definitions.claim(namespace, &slo.name, &doc.location) {
                    Ok(()) => tally.valid += 1,
                    Err(twice) => {
                        tally.invalid += 1;
                        let _ = writeln!(out, "{}: {twice}", doc.location);
                    }
                }
            }
            Outcome::Decoded(Decoded::Other { .. }) => tally.other += 1,
            Outcome::Decoded(Decoded::Invalid(errors)) => {
                tally.invalid += 1;
                for e in errors.iter() {
                    let _ = writeln!(out, "{}: {e}", doc.location);
                }
            }
            Outcome::Malformed(message) => {
                tally.invalid += 1;
                let _ = writeln!(out, "{}: (yaml): {message}", doc.location);
            }
        }
    }
    if !args.quiet {
        let _ = writeln!(
            err,
            "{} valid, {} invalid ServiceLevelObjective(s) in {} file(s){}",
            tally.valid,
            tally.invalid,
            files.len(),
            match tally.other {
                0 => String::new(),
                n => format!("; {n} other document(s) skipped"),
            }
        );
    }
    if tally.io_errors > 0 {
        EXIT_ERROR
    } else if tally.invalid > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}
