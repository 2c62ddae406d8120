//! The status table local mode prints every round, pure: one row per SLO with the numbers the
//! operator writes to status, then a line per SLO that needs attention, then a summary.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::board::{Board, Decision, Entry};
use k8s_openapi::jiff::Timestamp;

use crate::api::BudgetState;
use crate::model::Duration;
use crate::rules::windows::burn_windows;

/// What the table says besides the board.
pub struct Context<'a> {
    pub prometheus: &'a str,
    /// Manifest files skipped because of problems (reported separately).
    pub skipped_files: &'a [String],
}

/// The alert conditions whose long windows the burn columns show, in `burn_windows`' order.
const CONDITIONS: [&str; 4] = ["PAGE FAST", "PAGE SLOW", "TICKET FAST", "TICKET SLOW"];

/// The table, ready to print.
pub fn render(board: &Board, context: &Context) -> String {
    let mut out = String::new();
    let when = board
        .evaluated_at
        .and_then(|t| Timestamp::from_second(t.as_second()).ok())
        .map_or_else(|| "-".into(), |t| t.to_string());
    let _ = writeln!(
        out,
        "plimsoll local: {} SLO(s), Prometheus {}, {when}",
        board.entries.len(),
        context.prometheus
    );
    if let Some(e) = &board.prometheus_error {
        let _ = writeln!(out, "Prometheus cannot be queried: {e}");
    }
    // Burn rates over the long windows of the four alert conditions (1h, 6h, 1d, 3d for 30
    // days), one column each. When the SLOs' windows differ, so do these (14m for 7 days where
    // 30 days has 1h): the columns are then the conditions, each cell naming its window.
    let long_windows = |e: &Entry| -> Vec<Duration> {
        burn_windows(&e.slo.window).iter().map(|b| b.long).collect()
    };
    let shared: BTreeSet<Vec<Duration>> = board.entries.iter().map(long_windows).collect();
    let shared = match shared.len() {
        1 => shared.into_iter().next(),
        _ => None,
    };
    let mut header = vec![
        "SLO".to_string(),
        "OBJECTIVE".to_string(),
        "SLI".to_string(),
        "BUDGET LEFT".to_string(),
    ];
    match &shared {
        Some(windows) => header.extend(windows.iter().map(|w| format!("BURN {w}"))),
        None => header.extend(CONDITIONS.iter().map(|c| format!("BURN {c}"))),
    }
    header.extend(["STATE".to_string(), "DECISION".to_string()]);
    let mut rows = vec![header];
    for e in &board.entries {
        let s = &e.status;
        let mut row = vec![
            e.key.clone(),
            format!("{}% {}", e.slo.objective, window_text(&e.slo.window)),
            s.sli.as_ref().map_or("-".into(), |v| format!("{v}%")),
            s.error_budget
                .as_ref()
                .map_or("-".into(), |b| format!("{}%", b.remaining)),
        ];
        row.extend(long_windows(e).iter().map(|w| {
            match (s.burn_rates.get(&w.to_string()), &shared) {
                (Some(rate), Some(_)) => rate.clone(),
                (Some(rate), None) => format!("{rate} ({w})"),
                (None, _) => "-".into(),
            }
        }));
        row.push(e.shown().to_string());
        row.push(e.decision().text().to_string());
        rows.push(row);
    }
    // Left: names and words; right: numbers.
    let numeric = |column: usize| column >= 2 && column < 4 + CONDITIONS.len();
    out.push('\n');
    out.push_str(&columns(&rows, numeric));
    let notes: Vec<String> = board
        .entries
        .iter()
        .filter_map(|e| e.note.as_ref().map(|n| format!("{}: {n}", e.key)))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "{}", summary(board));
    if !context.skipped_files.is_empty() {
        let _ = writeln!(
            out,
            "Skipped (invalid, see the messages above): {}",
            context.skipped_files.join(", ")
        );
    }
    out
}

pub fn window_text(window: &crate::model::Window) -> String {
    match window {
        crate::model::Window::Rolling(d) => d.to_string(),
        crate::model::Window::Calendar { period, .. } => format!("{period:?}").to_lowercase(),
    }
}

/// `3 SLOs: 1 Healthy, 1 Burning, 1 Exhausted. Roll back: shop/payments.`
fn summary(board: &Board) -> String {
    if board.entries.is_empty() {
        return "No valid SLOs.".to_string();
    }
    let counts: Vec<String> = BudgetState::ALL
        .iter()
        .filter_map(|state| {
            let n = board.entries.iter().filter(|e| e.shown() == *state).count();
            (n > 0).then(|| format!("{n} {state}"))
        })
        .collect();
    let mut text = format!("{} SLO(s): {}.", board.entries.len(), counts.join(", "));
    let rollback: Vec<&str> = board
        .entries
        .iter()
        .filter(|e| e.decision() == Decision::RollBack)
        .map(|e| e.key.as_str())
        .collect();
    if !rollback.is_empty() {
        let _ = write!(text, " Roll back: {}.", rollback.join(", "));
    }
    let blind = board
        .entries
        .iter()
        .filter(|e| e.decision() == Decision::NoData)
        .count();
    if blind > 0 {
        let _ = write!(
            text,
            " {blind} without fresh data: nothing decided for them."
        );
    }
    text.push_str(" A burn rate of 1 spends exactly the whole budget over the SLO's window.");
    text
}

/// Rows as aligned columns separated by two spaces, without trailing spaces.
pub fn columns(rows: &[Vec<String>], right_aligned: impl Fn(usize) -> bool) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if right_aligned(c) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::budget::{Action, Reading};
    use crate::local::board::advance;
    use crate::local::catalog::Loaded;
    use crate::prometheus::Readings;

    #[test]
    fn columns_align_words_left_and_numbers_right() {
        let rows = vec![
            vec!["NAME".into(), "N".into(), "NOTE".into()],
            vec!["a".into(), "12.5".into(), "x".into()],
            vec!["long name".into(), "-3".into(), "".into()],
        ];
        assert_eq!(
            columns(&rows, |c| c == 1),
            "NAME          N  NOTE\n\
             a          12.5  x\n\
             long name    -3\n"
        );
    }

    /// A printed row's cells: the columns are at least two spaces apart.
    fn cells(line: &str) -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn slos_of_one_window_name_the_windows_in_the_header() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let slos = [loaded("a", "7d", false), loaded("b", "7d", false)];
        let mut readings = Readings::default();
        readings.insert_own(
            "shop",
            "a",
            "a",
            None,
            Reading {
                window_error_ratio: Some(0.0005),
                error_ratios: [(14, 2.0), (84, 1.5), (335, 1.0), (1010, 0.5)]
                    .iter()
                    .map(|(m, burn)| (Duration::from_minutes(*m), burn / 1000.0))
                    .collect(),
                ..Reading::default()
            }
            .written_at(now),
        );
        let board = advance(&Default::default(), &slos, &Ok(readings), now);
        let text = render(
            &board,
            &Context {
                prometheus: "p",
                skipped_files: &[],
            },
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            cells(lines[2])[4..8],
            ["BURN 14m", "BURN 1h24m", "BURN 5h35m", "BURN 16h50m"]
        );
        assert_eq!(cells(lines[3])[4..8], ["2.0", "1.5", "1.0", "0.5"]);
    }

    fn loaded(name: &str, window: &str, rollback: bool) -> Loaded {
        let mut spec = serde_json::json!({
            "service": name, "objective": 99.9, "window": window,
            "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
        });
        if rollback {
            spec["rollback"] = serde_json::json!({});
        }
        let object = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec,
        }))
        .unwrap();
        Loaded {
            key: format!("shop/{name}"),
            namespace: "shop".into(),
            slo: crate::model::validate(&object).unwrap(),
            location: format!("{name}.yaml"),
            manifest: "".into(),
        }
    }

    #[test]
    fn the_table_shows_each_slo_its_state_and_decision() {
        let now = Timestamp::from_second(1_800_000_000).unwrap()
            + k8s_openapi::jiff::SignedDuration::from_millis(250);
        let slos = [
            loaded("catalog", "30d", false),
            loaded("checkout", "30d", false),
            loaded("payments", "30d", true),
            loaded("search", "7d", false),
        ];
        let reading = |window: f64, burn: f64| {
            Reading {
                window_error_ratio: Some(window),
                error_ratios: [1, 6, 24, 72]
                    .iter()
                    .map(|h| (Duration::from_hours(*h), burn / 1000.0))
                    .collect(),
                ..Reading::default()
            }
            .written_at(now)
        };
        let mut readings = Readings::default();
        for (name, window, burn) in [
            ("catalog", 0.0003, 0.3),
            ("checkout", 0.0006, 3.0),
            ("payments", 0.0015, 0.2),
        ] {
            readings.insert_own("shop", name, name, None, reading(window, burn));
        }
        let readings = Ok(readings);
        let board = advance(&Default::default(), &slos, &readings, now);
        assert_eq!(board.entries[2].action, Action::Trigger);
        let text = render(
            &board,
            &Context {
                prometheus: "http://127.0.0.1:9090",
                skipped_files: &["slos/bad.yaml".to_string()],
            },
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "plimsoll local: 4 SLO(s), Prometheus http://127.0.0.1:9090, 2027-01-15T08:00:00Z"
        );
        // The 7d SLO's windows scale: 1h -> 14m, 6h -> 1h24m, 1d -> 5h35m... so the columns are
        // the four alert conditions, and each cell names its SLO's window.
        assert!(lines[2].starts_with("SLO  "), "{}", lines[2]);
        let header: Vec<&str> = lines[2]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            header,
            [
                "SLO",
                "OBJECTIVE",
                "SLI",
                "BUDGET LEFT",
                "BURN PAGE FAST",
                "BURN PAGE SLOW",
                "BURN TICKET FAST",
                "BURN TICKET SLOW",
                "STATE",
                "DECISION"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            [
                "shop/catalog",
                "99.9% 30d",
                "99.9700%",
                "70.0%",
                "0.3 (1h)",
                "0.3 (6h)",
                "0.3 (1d)",
                "0.3 (3d)",
                "Healthy",
                "none"
            ]
        );
        assert_eq!(
            cells(lines[4])[3..],
            [
                "40.0%", "3.0 (1h)", "3.0 (6h)", "3.0 (1d)", "3.0 (3d)", "Burning", "none"
            ]
        );
        assert_eq!(
            cells(lines[5])[3..],
            [
                "-50.0%",
                "0.2 (1h)",
                "0.2 (6h)",
                "0.2 (1d)",
                "0.2 (3d)",
                "Exhausted",
                "ROLL BACK"
            ]
        );
        assert_eq!(
            cells(lines[6])[1..],
            [
                "99.9% 1w",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "Unknown",
                "none (no data)"
            ]
        );
        assert!(
            lines[8].starts_with(
                "shop/checkout: at the 6h burn rate of 3.0 the budget is gone in 4d 0h ("
            ),
            "{}",
            lines[8]
        );
        assert!(
            lines[9]
                .starts_with("shop/payments: rollback signalled now: -50.0% of the error budget"),
            "{}",
            lines[9]
        );
        assert_eq!(
            lines[10],
            "shop/search: nothing decided: no recorded series for this SLO in Prometheus yet"
        );
        assert_eq!(
            lines[12],
            "4 SLO(s): 1 Healthy, 1 Burning, 1 Exhausted, 1 Unknown. Roll back: shop/payments. 1 without fresh data: \
             nothing decided for them. A burn rate of 1 spends exactly the whole budget over the \
             SLO's window."
        );
        assert_eq!(
            lines[13],
            "Skipped (invalid, see the messages above): slos/bad.yaml"
        );
    }
}
