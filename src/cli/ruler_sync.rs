//! `plimsoll generate --ruler-url`: the rules go to a Mimir or Cortex ruler once, and the
//! command prints what it did to each group.

use std::io::Write;

use super::generate::{Args, Format};
use super::{EXIT_ERROR, EXIT_OK};
use crate::model::Slo;
use crate::{ruler, rules};

/// Syncs the SLOs' groups to the ruler: 0 when every group is in place, 2 when the ruler could
/// not be read, refused a group, or holds a foreign group under one of our names.
pub fn generate(slos: &[Slo], args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    if args.format != Format::Prometheus || !args.rule_labels.is_empty() {
        let _ = writeln!(
            err,
            "plimsoll generate: --ruler-url writes rule groups; --format prometheusrule and \
             --rule-label do not apply to it"
        );
        return EXIT_ERROR;
    }
    let client = match args.ruler.client() {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            let _ = writeln!(err, "plimsoll generate: {e}");
            return EXIT_ERROR;
        }
        None => return EXIT_ERROR,
    };
    let rendered: Vec<(String, Vec<rules::RuleGroup>)> = slos
        .iter()
        .map(|slo| {
            let namespace = slo.namespace.clone().unwrap_or(args.namespace.clone());
            let groups = rules::render(slo, &namespace);
            (namespace, groups)
        })
        .collect();
    let wanted = ruler::wanted(rendered.iter().map(|(ns, g)| (ns.as_str(), g.clone())));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(
                err,
                "plimsoll generate: cannot start the async runtime: {e}"
            );
            return EXIT_ERROR;
        }
    };
    let prefix = &args.ruler.ruler_namespace_prefix;
    match runtime.block_on(ruler::sync(&client, prefix, &wanted)) {
        Ok(report) => {
            for line in report.lines() {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(err, "ruler {}: {}", client.url(), report.summary());
            if report.failures().next().is_some() || report.conflicts() > 0 {
                EXIT_ERROR
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            let _ = writeln!(err, "plimsoll generate: nothing written: {e}");
            EXIT_ERROR
        }
    }
}
