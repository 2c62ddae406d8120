//! Synthetic request traffic with exactly known counts, in OpenMetrics for
//! `promtool tsdb create-blocks-from openmetrics`. Benchmarks and demos use it; its exact counts are
//! the yardstick generated rules are measured against.

use std::io::{self, Write};

/// A service's daily traffic pattern: requests swing 100x between night and afternoon, and errors
/// can cluster in the quiet hours, as they do when a nightly job breaks things.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The `job` label.
    pub job: String,
    /// Requests per second at the daily peak.
    pub peak_per_second: f64,
    /// Share of failed requests while traffic is below a tenth of the peak.
    pub quiet_error_share: f64,
    /// Share of failed requests the rest of the time.
    pub busy_error_share: f64,
    /// Shifts the daily curve, so services peak at different hours.
    pub phase_hours: f64,
}

/// Cumulative request and error counts at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    pub requests: f64,
    pub errors: f64,
}

/// What [`write_openmetrics`] needs of a service: its name and, per second since the start, its
/// request rate and the share of those requests that fail.
pub trait Traffic {
    /// The `job` label.
    fn job(&self) -> &str;
    /// Requests per second at `second` since the start.
    fn rate(&self, second: u64) -> f64;
    /// Share of the requests at `second` that fail.
    fn error_share(&self, second: u64) -> f64;

    /// The counters after `seconds`, integrated per whole second, so any two instants give the
    /// exact number of requests and errors between them.
    fn counts_until(&self, seconds: u64) -> Counts {
        let mut counts = Counts::default();
        for s in 0..seconds {
            let r = self.rate(s);
            counts.requests += r;
            counts.errors += r * self.error_share(s);
        }
        counts
    }
}

impl Service {
    /// Requests per second at `second` since the start: a cosine from 1% to 100% of the peak, at
    /// its highest at 14:00.
    fn rate(&self, second: u64) -> f64 {
        let hours = second as f64 / 3600.0 + self.phase_hours;
        let phase = 2.0 * std::f64::consts::PI * (hours - 14.0) / 24.0;
        self.peak_per_second * (0.01 + 0.99 * (1.0 + phase.cos()) / 2.0)
    }

    fn error_share(&self, second: u64) -> f64 {
        if self.rate(second) < self.peak_per_second / 10.0 {
            self.quiet_error_share
        } else {
            self.busy_error_share
        }
    }

    /// The counters after `seconds`, integrated per whole second, so any two instants give the
    /// exact number of requests and errors between them.
    pub fn counts_until(&self, seconds: u64) -> Counts {
        Traffic::counts_until(self, seconds)
    }
}

impl Traffic for Service {
    fn job(&self) -> &str {
        &self.job
    }

    fn rate(&self, second: u64) -> f64 {
        Service::rate(self, second)
    }

    fn error_share(&self, second: u64) -> f64 {
        Service::error_share(self, second)
    }
}

/// A stretch of `[from, to)` seconds since the start in which a fixed share of requests fails,
/// whatever the hour: an outage, or a bad release that lingers.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub from: u64,
    pub to: u64,
    pub error_share: f64,
}

/// A service's daily pattern with incidents on top; where incidents overlap, the later one in
/// the list counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Disturbed {
    pub service: Service,
    pub incidents: Vec<Incident>,
}

impl Traffic for Disturbed {
    fn job(&self) -> &str {
        &self.service.job
    }

    fn rate(&self, second: u64) -> f64 {
        self.service.rate(second)
    }

    fn error_share(&self, second: u64) -> f64 {
        self.incidents
            .iter()
            .rev()
            .find(|i| (i.from..i.to).contains(&second))
            .map_or_else(|| self.service.error_share(second), |i| i.error_share)
    }
}

/// Writes `http_requests_total{job, code="200"|"500"}` for every service every `step` seconds
/// from `start` (Unix seconds) through `start + duration`. The value at `start + t` is exactly
/// [`Traffic::counts_until`]`(t)`; values are not rounded, so differences are exact. The good
/// requests are summed on their own rather than written as requests minus errors: in a full
/// outage that difference wobbles by a rounding error, and Prometheus reads a counter that goes
/// down by 1e-9 as a reset (the whole counter counted again in one 5-minute count).
pub fn write_openmetrics<T: Traffic>(
    services: &[T],
    start: u64,
    duration: u64,
    step: u64,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(out, "# HELP http_requests Requests handled.")?;
    writeln!(out, "# TYPE http_requests counter")?;
    let mut counts = vec![Counts::default(); services.len()];
    let mut good = vec![0.0_f64; services.len()];
    for t in (0..=duration).step_by(step.max(1) as usize) {
        for ((service, c), good) in services.iter().zip(&counts).zip(&good) {
            let ts = start + t;
            writeln!(
                out,
                "http_requests_total{{job=\"{}\",code=\"200\"}} {good} {ts}",
                service.job(),
            )?;
            writeln!(
                out,
                "http_requests_total{{job=\"{}\",code=\"500\"}} {} {ts}",
                service.job(),
                c.errors
            )?;
        }
        for ((service, c), good) in services.iter().zip(counts.iter_mut()).zip(good.iter_mut()) {
            for s in t..t + step {
                let r = service.rate(s);
                let share = service.error_share(s);
                c.requests += r;
                c.errors += r * share;
                *good += r * (1.0 - share);
            }
        }
    }
    writeln!(out, "# EOF")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        Service {
            job: "svc".into(),
            peak_per_second: 100.0,
            quiet_error_share: 0.05,
            busy_error_share: 0.0001,
            phase_hours: 0.0,
        }
    }

    #[test]
    fn traffic_swings_100x_over_a_day() {
        let s = service();
        let rates: Vec<f64> = (0..86_400).step_by(60).map(|t| s.rate(t)).collect();
        let max = rates.iter().cloned().fold(f64::MIN, f64::max);
        let min = rates.iter().cloned().fold(f64::MAX, f64::min);
        assert!((max / min - 100.0).abs() < 1.0, "{max} / {min}");
    }

    #[test]
    fn openmetrics_counters_match_the_integrated_counts() {
        let mut text = Vec::new();
        write_openmetrics(&[service()], 1_000, 600, 60, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            text.lines().filter(|l| l.contains("code=\"500\"")).count(),
            11
        );
        let last = text.lines().rev().nth(1).unwrap();
        let mut fields = last.split(' ');
        assert!(fields.next().unwrap().contains("code=\"500\""));
        let value: f64 = fields.next().unwrap().parse().unwrap();
        assert_eq!(fields.next(), Some("1600"));
        let exact = service().counts_until(600).errors;
        assert!((value - exact).abs() < 1e-9 * exact, "{value} vs {exact}");
    }

    #[test]
    fn counters_never_go_down_through_a_full_outage() {
        // Before, the 200s were written as requests minus errors, which in a full outage
        // wobbled by rounding and read as a counter reset.
        let outage = Disturbed {
            service: service(),
            incidents: vec![Incident {
                from: 3_600,
                to: 7_200,
                error_share: 1.0,
            }],
        };
        let mut out = Vec::new();
        write_openmetrics(&[outage], 0, 3 * 3_600, 30, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for code in ["200", "500"] {
            let values: Vec<f64> = text
                .lines()
                .filter(|l| l.contains(&format!("code=\"{code}\"")))
                .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
                .collect();
            assert_eq!(values.len(), 361);
            assert!(values.windows(2).all(|w| w[1] >= w[0]), "{code} went down");
        }
    }
}
