//! Local mode with a ruler instead of rule files: every round brings the ruler's groups in line
//! with the SLOs (one list, then writes only for what differs). A ruler that is down or refuses
//! is reported and tried again next round; the budgets are read all the same.

use std::io::Write;

use super::catalog::Loaded;
use crate::ruler::{self, Client};

/// The ruler, and what was last said about it, so a ruler that stays down is reported once
/// rather than every round.
pub struct RulerSync {
    client: Client,
    prefix: String,
    said: Vec<String>,
}

impl RulerSync {
    pub fn new(client: Client, prefix: String) -> RulerSync {
        RulerSync {
            client,
            prefix,
            said: Vec::new(),
        }
    }

    /// One sync; false when the ruler could not be read or a group is not in place.
    pub async fn round(
        &mut self,
        slos: &[Loaded],
        ui_url: Option<&str>,
        err: &mut impl Write,
    ) -> bool {
        let wanted = ruler::wanted(slos.iter().map(|l| {
            (
                l.namespace.as_str(),
                crate::ui::linked_rules(&l.slo, &l.namespace, ui_url),
            )
        }));
        let url = self.client.url().to_string();
        match ruler::sync(&self.client, &self.prefix, &wanted).await {
            Ok(report) => {
                let mut problems = Vec::new();
                for (line, (step, result)) in report.lines().into_iter().zip(&report.steps) {
                    match (step.action, result) {
                        (ruler::Action::Unchanged, Ok(())) => {}
                        (ruler::Action::Conflict, _) | (_, Err(_)) => problems.push(line),
                        (_, Ok(())) => {
                            let _ = writeln!(err, "ruler {url}: {line}");
                        }
                    }
                }
                let complete = problems.is_empty();
                if problems.is_empty() && !self.said.is_empty() {
                    let _ = writeln!(err, "ruler {url}: every rule group in place again");
                }
                self.say(&url, problems, err);
                complete
            }
            Err(e) => {
                self.say(&url, vec![format!("{e}; trying again next round")], err);
                false
            }
        }
    }

    /// Prints the problems when they differ from the ones printed last.
    fn say(&mut self, url: &str, problems: Vec<String>, err: &mut impl Write) {
        if problems != self.said {
            for line in &problems {
                let _ = writeln!(err, "ruler {url}: {line}");
            }
            self.said = problems;
        }
    }
}
