//! `plimsoll generate`: the rules the operator would apply, for review, for GitOps, or for a
//! Prometheus without the operator.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use crate::manifests::{self, Decoded, Outcome};
use crate::model::Slo;
use crate::rules;

use super::ruler_flags::RulerFlags;
use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK, parse_label};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A plain Prometheus rule file (`rule_files:`), all SLOs in one file.
    Prometheus,
    /// prometheus-operator PrometheusRule manifests, one per SLO, as the operator applies them.
    Prometheusrule,
    /// VictoriaMetrics operator VMRule manifests (operator.victoriametrics.com/v1beta1), one per
    /// SLO, named and labelled as the PrometheusRules, for vmalert.
    Vmrule,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories with SLO manifests; `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", num_args = 1.., required = true)]
    pub filenames: Vec<PathBuf>,
    /// Output shape.
    #[arg(long, value_enum, default_value = "prometheus")]
    pub format: Format,
    /// Namespace for SLOs whose manifest names none.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Extra label on every PrometheusRule or VMRule, such as `release=kube-prometheus-stack`, so
    /// the Prometheus rule selector (or VMAlert's `ruleSelector`) picks it up. Repeatable.
    #[arg(long = "rule-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub rule_labels: Vec<(String, String)>,
    /// `partial_response_strategy` (`warn` or `abort`) on the groups of every SLO that sets no
    /// `spec.partialResponseStrategy`. For Thanos Ruler: a plain Prometheus refuses rule files
    /// with it. Unset: written only for SLOs that set it.
    #[arg(long, value_enum)]
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
    /// With `--ruler-url`: write the groups to the ruler once and print what changed, instead of
    /// printing the rules.
    #[command(flatten)]
    pub ruler: RulerFlags,
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let files = match manifests::expand(&args.filenames) {
        Ok(files) => files,
        Err(e) => {
            let _ = writeln!(err, "plimsoll generate: {e}");
            return EXIT_ERROR;
        }
    };
    let (checked, io_errors) = manifests::check_files(&files);
    for e in &io_errors {
        let _ = writeln!(err, "plimsoll generate: {e}");
    }
    let mut slos: Vec<Slo> = Vec::new();
    let mut invalid = false;
    let mut definitions = manifests::Definitions::default();
    for doc in checked {
        match doc.outcome {
            Outcome::Decoded(Decoded::Valid(valid)) => {
                let slo = valid.1;
                let namespace = slo.namespace.as_deref().unwrap_or(&args.namespace);
                match definitions.claim(namespace, &slo.name, &doc.location) {
                    Ok(()) => slos.push(slo),
                    Err(twice) => {
                        invalid = true;
                        let _ = writeln!(err, "{}: {twice}", doc.location);
                    }
                }
            }
            Outcome::Decoded(Decoded::Other { .. }) => {}
            Outcome::Decoded(Decoded::Invalid(errors)) => {
                invalid = true;
                for e in errors.iter() {
                    let _ = writeln!(err, "{}: {e}", doc.location);
                }
            }
            Outcome::Malformed(message) => {
                invalid = true;
                let _ = writeln!(err, "{}: (yaml): {message}", doc.location);
            }
        }
    }
    if !io_errors.is_empty() {
        return EXIT_ERROR;
    }
    if invalid {
        let _ = writeln!(
            err,
            "plimsoll generate: nothing written; fix the problems above"
        );
        return EXIT_INVALID;
    }
    if args.ruler.ruler_url.is_some() {
        return super::ruler_sync::generate(&slos, args, out, err);
    }
    match render(&slos, args) {
        Ok(text) => match out.write_all(text.as_bytes()) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                let _ = writeln!(err, "plimsoll generate: {e}");
                EXIT_ERROR
            }
        },
        Err(e) => {
            let _ = writeln!(err, "plimsoll generate: {e}");
            EXIT_ERROR
        }
    }
}

fn render(slos: &[Slo], args: &Args) -> Result<String, rules::OutputError> {
    let namespace = |slo: &Slo| slo.namespace.clone().unwrap_or(args.namespace.clone());
    match args.format {
        Format::Prometheus => {
            let mut groups: Vec<rules::RuleGroup> = slos
                .iter()
                .flat_map(|slo| rules::render(slo, &namespace(slo)))
                .collect();
            rules::default_partial_response(&mut groups, args.partial_response_strategy);
            rules::rule_file(&groups)
        }
        Format::Prometheusrule | Format::Vmrule => {
            let labels: BTreeMap<String, String> = args.rule_labels.iter().cloned().collect();
            let mut text = String::new();
            for slo in slos {
                let ns = namespace(slo);
                let mut groups = rules::render(slo, &ns);
                rules::default_partial_response(&mut groups, args.partial_response_strategy);
                text.push_str("---\n");
                text.push_str(&if args.format == Format::Vmrule {
                    serde_saphyr::to_string(&rules::vm_rule(&slo.name, &ns, groups, &labels))?
                } else {
                    serde_saphyr::to_string(&rules::prometheus_rule(
                        &slo.name, &ns, groups, &labels,
                    ))?
                });
            }
            Ok(text)
        }
    }
}
