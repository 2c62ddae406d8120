//! OpenSLO time windows and budgeting methods in Plimsoll's terms.

use crate::api::{BudgetingMethod, Timeslice};

use super::super::fields::Fields;

/// The window and its time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub window: String,
    pub time_zone: Option<String>,
}

/// `spec.timeWindow` (v1) or `spec.timeWindows` (v1alpha): the first entry; None when refused.
pub fn time_window(spec: &Fields) -> Option<Window> {
    let f = spec.findings();
    let (key, list) = match spec.take_any(&["timeWindow", "timeWindows"]) {
        Some((key, _)) => (key, spec.list(key)),
        None => {
            f.refused(spec.path("timeWindow"), "is missing: the SLO's window");
            return None;
        }
    };
    if list.len() > 1 {
        f.dropped(
            spec.path(&format!("{key}[1]")),
            "a Plimsoll SLO has one window; the first entry is used, the others are not carried",
        );
    }
    let path = format!("{}[0]", spec.path(key));
    let Some(entry) = list.first().and_then(|v| Fields::of(v, path.clone(), f)) else {
        f.refused(
            path,
            "is not a mapping with duration (or count and unit) and isRolling",
        );
        return None;
    };
    let rolling = entry.flag("isRolling");
    let duration = match (
        entry.text("duration"),
        entry.scalar("count"),
        entry.text("unit"),
    ) {
        (Some(d), _, _) => d,
        (None, Some(count), Some(unit)) => match v1alpha_unit(&unit) {
            Some(u) => format!("{count}{u}"),
            None => {
                f.refused(
                    entry.path("unit"),
                    format!("{unit:?} is not a unit OpenSLO defines"),
                );
                return None;
            }
        },
        _ => {
            f.refused(
                entry.path("duration"),
                "is missing: such as 28d, or 1M with isRolling: false",
            );
            return None;
        }
    };
    let calendar = entry.object("calendar");
    let time_zone = calendar.as_ref().and_then(|c| c.text("timeZone"));
    if let Some(c) = &calendar
        && let Some(start) = c.text("startTime")
    {
        f.dropped(
            c.path("startTime"),
            format!(
                "{start:?}: Plimsoll's calendar periods start on Monday (week) or the 1st (month) \
                 at 00:00 in timeZone; the start time is not carried"
            ),
        );
    }
    // OpenSLO v1: "if omitted assumed false if calendar: is present".
    let rolling = rolling.unwrap_or_else(|| {
        let rolling = calendar.is_none();
        f.changed(
            entry.path("isRolling"),
            if rolling {
                "is not given; read as a rolling window (no calendar), as Sloth reads OpenSLO"
            } else {
                "is not given; with a calendar, OpenSLO reads the window as calendar-aligned"
            },
        );
        rolling
    });
    let window = if rolling {
        rolling_window(&duration, &entry.path("duration"), entry.findings())?
    } else {
        calendar_window(&duration, &entry.path("duration"), entry.findings())?
    };
    if rolling && time_zone.is_some() {
        f.dropped(
            entry.path("calendar.timeZone"),
            "a rolling window has no periods; the time zone is not carried",
        );
    }
    Some(Window {
        window,
        time_zone: time_zone.filter(|_| !rolling),
    })
}

fn v1alpha_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "second" => "s",
        "minute" => "m",
        "hour" => "h",
        "day" => "d",
        "week" => "w",
        "month" => "M",
        "quarter" => "Q",
        "year" => "Y",
        _ => return None,
    })
}

/// Hours, days and weeks are Plimsoll's units for rolling windows.
fn rolling_window(duration: &str, path: &str, f: &super::super::Findings) -> Option<String> {
    let (count, unit) = split(duration);
    match (count, unit) {
        (Some(n), "h" | "d" | "w") => Some(format!("{n}{unit}")),
        (Some(_), "M" | "Q" | "Y") => {
            f.refused(
                path,
                format!(
                    "a rolling {duration} has no fixed length; write it in days (such as 30d) \
                     or make it a calendar window"
                ),
            );
            None
        }
        _ => {
            f.refused(
                path,
                format!(
                    "{duration:?} is not a rolling window Plimsoll measures (1d to 90d in h, d, w)"
                ),
            );
            None
        }
    }
}

/// A calendar week or month; `m` is minutes, not months, and is not guessed.
fn calendar_window(duration: &str, path: &str, f: &super::super::Findings) -> Option<String> {
    match split(duration) {
        (Some(1), "w") => Some("week".to_string()),
        (Some(1), "M") => Some("month".to_string()),
        _ => {
            f.refused(
                path,
                format!(
                    "a calendar window of {duration:?}: Plimsoll's calendar windows are 1w (week) \
                     and 1M (month){}",
                    if duration.ends_with('m') {
                        "; `m` is minutes in OpenSLO, a month is 1M"
                    } else {
                        ""
                    }
                ),
            );
            None
        }
    }
}

fn split(duration: &str) -> (Option<u64>, &str) {
    let digits = duration
        .trim()
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    let unit = &duration.trim()[digits.len()..];
    (digits.parse().ok(), unit)
}

/// The budgeting method with its slice, from the method and one objective's slice fields.
pub fn budgeting(
    method: Option<&str>,
    method_path: &str,
    objective: &Fields,
) -> Option<(Option<BudgetingMethod>, Option<Timeslice>)> {
    let f = objective.findings();
    let target = objective.number("timeSliceTarget");
    let slice = objective.scalar("timeSliceWindow");
    if method.is_none() {
        f.changed(
            method_path,
            "is missing (OpenSLO requires it); read as Occurrences",
        );
    }
    match method.unwrap_or("Occurrences") {
        "Occurrences" => {
            if target.is_some() || slice.is_some() {
                f.dropped(
                    objective.path("timeSliceTarget"),
                    "time slice settings apply to Timeslices only; not carried",
                );
            }
            Some((None, None))
        }
        "Timeslices" => {
            let target = match target {
                Some(Ok(t)) => super::percent(t),
                Some(Err(e)) => {
                    f.refused(objective.path("timeSliceTarget"), e);
                    return None;
                }
                None => {
                    f.refused(
                        objective.path("timeSliceTarget"),
                        "is missing: Timeslices needs it",
                    );
                    return None;
                }
            };
            let Some(duration) = slice.as_deref().and_then(slice_length) else {
                f.refused(
                    objective.path("timeSliceWindow"),
                    format!(
                        "{}: Timeslices needs the slice length in whole minutes (1m to 1h), such \
                         as 1m",
                        slice.map_or("is missing".to_string(), |s| format!("{s:?}"))
                    ),
                );
                return None;
            };
            Some((
                Some(BudgetingMethod::Timeslices),
                Some(Timeslice {
                    duration,
                    objective: target,
                }),
            ))
        }
        "RatioTimeslices" => {
            f.refused(
                method_path,
                "RatioTimeslices averages the slices' ratios; Plimsoll's Timeslices counts good \
                 slices and Occurrences counts events: neither is the same budget",
            );
            None
        }
        other => {
            f.refused(
                method_path,
                format!("{other:?} is not Occurrences, Timeslices or RatioTimeslices"),
            );
            None
        }
    }
}

/// `1m`, `5m`, `60s`, `1h` as Plimsoll's slice length.
fn slice_length(text: &str) -> Option<String> {
    match split(text) {
        // OpenSLO: "Default interpretation of unit if specified as a number in minutes".
        (Some(n), "" | "m") if n > 0 => Some(format!("{n}m")),
        (Some(n), "h") if n > 0 => Some(format!("{n}h")),
        (Some(n), "s") if n > 0 && n % 60 == 0 => Some(format!("{}m", n / 60)),
        _ => None,
    }
}
