//! Line charts as inline SVG, drawn on the server: no script, no library, no network.

use std::fmt::Write;

use super::html::escape;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// One line of a chart: `(unix seconds, value)` points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A stroke color with at least 3:1 contrast on white.
    pub color: &'static str,
    /// Reference lines (a threshold, the even spend) are dashed.
    pub dashed: bool,
}

/// How the value axis is labelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Values are percent already.
    Percent,
    /// Values are ratios, shown as percent.
    Ratio,
}

impl Unit {
    fn text(self, value: f64) -> String {
        let percent = match self {
            Unit::Percent => value,
            Unit::Ratio => value * 100.0,
        };
        let decimals = if percent.abs() >= 10.0 || percent == 0.0 {
            0
        } else if percent.abs() >= 1.0 {
            1
        } else {
            3
        };
        format!("{percent:.decimals$}%")
    }
}

/// A chart: lines over a time range, with a caption for screen readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Unix seconds the x axis spans.
    pub from: f64,
    pub to: f64,
    pub unit: Unit,
    /// The value axis always includes these (such as 0 and 100 for a budget).
    pub include: Vec<f64>,
    pub lines: Vec<Line>,
}

/// The chart as an `<svg>` element with a legend below it.
pub fn svg(chart: &Chart) -> String {
    let (low, high) = value_range(chart);
    let x = |t: f64| LEFT + (t - chart.from) / (chart.to - chart.from).max(1.0) * plot_width();
    let y = |v: f64| TOP + (high - v) / (high - low) * plot_height();
    let mut out = format!(
        "<figure class=\"chart\"><svg id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" width=\"100%\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" stroke=\"#8a96a3\"/>",
        escape(&chart.title),
        escape(&chart.description),
        plot_width(),
        plot_height(),
        id = escape(&chart.id),
    );
    for tick in ticks(low, high) {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e8ee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            chart.unit.text(tick),
            y = y(tick),
        );
    }
    for (i, t) in time_ticks(chart.from, chart.to).into_iter().enumerate() {
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(t),
            HEIGHT - 10.0,
            time_label(t, chart.to - chart.from)
        );
    }
    for line in &chart.lines {
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v.clamp(low, high))))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" data-label=\"{}\" data-points=\"{}\" points=\"{}\" \
             fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
            escape(&line.label),
            points.len(),
            points.join(" "),
            line.color,
            if line.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            }
        );
    }
    out.push_str("</svg><figcaption class=\"legend\">");
    for line in &chart.lines {
        let _ = write!(
            out,
            "<span><svg width=\"22\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" y1=\"5\" \
             x2=\"22\" y2=\"5\" stroke=\"{}\" stroke-width=\"3\"{}/></svg> {}</span> ",
            line.color,
            if line.dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            },
            escape(&line.label)
        );
    }
    out.push_str("</figcaption></figure>");
    out
}

/// A small line without axes, for the list: budget left over the window.
pub fn sparkline(points: &[(f64, f64)], from: f64, to: f64) -> String {
    if points.is_empty() {
        return "<span class=\"muted\">no history</span>".to_string();
    }
    let (w, h) = (120.0, 28.0);
    let low = points.iter().map(|p| p.1).fold(0.0_f64, f64::min);
    let high = points.iter().map(|p| p.1).fold(100.0_f64, f64::max);
    let coords: Vec<String> = points
        .iter()
        .map(|&(t, v)| {
            let x = (t - from) / (to - from).max(1.0) * w;
            let y = 2.0 + (high - v) / (high - low).max(1e-9) * (h - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let last = points.last().map_or(0.0, |p| p.1);
    format!(
        "<svg class=\"spark\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"budget left \
         over the window, now {last:.1}%\"><line x1=\"0\" x2=\"{w}\" y1=\"{zero:.1}\" \
         y2=\"{zero:.1}\" stroke=\"#c9d1d9\"/><polyline data-points=\"{}\" points=\"{}\" \
         fill=\"none\" stroke=\"#0b5cad\" stroke-width=\"1.5\"/></svg>",
        coords.len(),
        coords.join(" "),
        zero = 2.0 + high / (high - low).max(1e-9) * (h - 4.0),
    )
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

fn value_range(chart: &Chart) -> (f64, f64) {
    let values = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(chart.include.iter().copied())
        .filter(|v| v.is_finite());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 1.0);
    }
    if (high - low).abs() < 1e-12 {
        return (
            low - 1.0_f64.max(low.abs() * 0.1),
            high + 1.0_f64.max(high.abs() * 0.1),
        );
    }
    let pad = (high - low) * 0.05;
    (low - pad, high + pad)
}

/// About five round values between `low` and `high`.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let raw = (high - low) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(magnitude * 10.0);
    let mut out = Vec::new();
    let mut value = (low / step).ceil() * step;
    while value <= high && out.len() < 12 {
        out.push(if value.abs() < step * 1e-9 {
            0.0
        } else {
            value
        });
        value += step;
    }
    out
}

fn time_ticks(from: f64, to: f64) -> Vec<f64> {
    (0..5)
        .map(|i| from + (to - from) * f64::from(i) / 4.0)
        .collect()
}

/// Dates for long spans, times of day for short ones (UTC).
fn time_label(unix: f64, span: f64) -> String {
    let Ok(at) = jiff::Timestamp::from_second(unix as i64) else {
        return String::new();
    };
    let format = if span > 3.0 * 86_400.0 {
        "%b %d"
    } else {
        "%b %d %H:%M"
    };
    at.strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(lines: Vec<Line>) -> Chart {
        Chart {
            id: "c".into(),
            title: "t <b>".into(),
            description: "d".into(),
            from: 0.0,
            to: 100.0,
            unit: Unit::Percent,
            include: vec![0.0, 100.0],
            lines,
        }
    }

    #[test]
    fn every_finite_point_is_drawn_inside_the_plot() {
        let line = Line {
            label: "left".into(),
            points: vec![(0.0, 100.0), (50.0, f64::NAN), (100.0, -20.0)],
            color: "#0b5cad",
            dashed: false,
        };
        let svg = svg(&chart(vec![line]));
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert!(svg.contains("t &lt;b&gt;"), "titles are escaped");
        let (low, high) = value_range(&chart(vec![]));
        assert!(low < 0.0 + 1e-9 && high > 100.0 - 1e-9);
    }

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 100.0), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let small = ticks(0.0, 0.0042);
        assert!(small.len() >= 3 && small.iter().all(|t| *t <= 0.0042));
        assert_eq!(Unit::Ratio.text(0.001), "0.100%");
        assert_eq!(Unit::Percent.text(-40.0), "-40%");
    }

    #[test]
    fn a_sparkline_without_points_says_so() {
        assert!(sparkline(&[], 0.0, 1.0).contains("no history"));
        assert!(sparkline(&[(0.0, 100.0), (1.0, 50.0)], 0.0, 1.0).contains("data-points=\"2\""));
    }
}
