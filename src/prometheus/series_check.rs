//! "Are the metrics I reference real?": an SLO's selectors checked against a live Prometheus, for
//! `plimsoll validate --prometheus-url`. Errors are what would make the SLI wrong or missing (no
//! total series, no bucket at the threshold, errors the total does not count, a groupBy label on
//! no series); warnings are what may be fine (no error series yet, a groupBy label on only some
//! series, a free query that returns nothing now).

use super::client::{Client, Error};
use crate::model::promql::WINDOW_PLACEHOLDER;
use crate::model::{BadEvents, Indicator, LabelMatcher, MatchKind, Selector, Slo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One thing the live series say about one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The field, such as `spec.indicator.ratio.total`.
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

/// Every finding for one SLO. A query Prometheus refuses is a finding on its field; an
/// unreachable Prometheus is an error of the whole check.
pub async fn check(client: &Client, slo: &Slo) -> Result<Vec<Finding>, Error> {
    let mut c = Checker {
        client,
        findings: Vec::new(),
    };
    match &slo.indicator {
        Indicator::Ratio {
            bad,
            total,
            group_by,
        } => {
            const AT: &str = "spec.indicator.ratio";
            if let Some(all) = c
                .present(&format!("{AT}.total"), total, Severity::Error)
                .await?
            {
                c.group_by(&format!("{AT}.groupBy"), total, all, group_by)
                    .await?;
                let (field, part, missing) = match bad {
                    BadEvents::Errors(s) => ("errors", s, Severity::Warning),
                    BadEvents::Good(s) => ("good", s, Severity::Error),
                };
                let path = format!("{AT}.{field}");
                if c.present(&path, part, missing).await?.is_some() {
                    c.inside_total(&path, part, total).await?;
                }
            }
        }
        Indicator::Latency {
            histogram,
            threshold,
            group_by,
        } => {
            const AT: &str = "spec.indicator.latency";
            let count = histogram.with_metric(format!("{}_count", histogram.metric));
            if let Some(all) = c
                .present(&format!("{AT}.histogram"), &count, Severity::Error)
                .await?
            {
                c.group_by(&format!("{AT}.groupBy"), &count, all, group_by)
                    .await?;
                c.bucket(AT, histogram, *threshold).await?;
            }
        }
        Indicator::NativeLatency {
            histogram,
            threshold,
            group_by,
        } => {
            const AT: &str = "spec.indicator.nativeLatency";
            if let Err(too_old) = super::version::check_native_histograms(client).await? {
                c.found(AT, Severity::Error, too_old.to_string());
                return Ok(c.findings);
            }
            let path = format!("{AT}.histogram");
            if let Some(all) = c.present(&path, histogram, Severity::Error).await? {
                c.group_by(&format!("{AT}.groupBy"), histogram, all, group_by)
                    .await?;
                c.native(AT, histogram, *threshold).await?;
            }
        }
        Indicator::Gauge { metric, group_by } => {
            const AT: &str = "spec.indicator.gauge";
            if let Some(all) = c
                .present(&format!("{AT}.metric"), metric, Severity::Error)
                .await?
            {
                c.group_by(&format!("{AT}.groupBy"), metric, all, group_by)
                    .await?;
            }
        }
        Indicator::Query { error_ratio } => {
            let path = "spec.indicator.query.errorRatio";
            let query = format!("count({})", error_ratio.replace(WINDOW_PLACEHOLDER, "5m"));
            if c.count(path, &query).await? == Some(0.0) {
                c.found(
                    path,
                    Severity::Warning,
                    "returns no series now (with $window=5m): check its metrics".into(),
                );
            }
        }
    }
    Ok(c.findings)
}

/// Whether `threshold` is a bucket boundary of a native histogram with these populated buckets
/// (lower, upper). A threshold strictly inside a populated bucket is not one. Where the bounds
/// are those of an exponential schema (each bucket `(b^k, b^(k+1)]` with `b = 2^(2^-schema)`,
/// schema -4 to 8), the threshold must be a power of `b` even where its bucket is empty now: the
/// schema holds for every future observation. Custom buckets (NHCB) show only the populated
/// bounds, so an empty bucket's bound cannot be told from a point inside it.
pub fn boundary(buckets: &[(f64, f64)], threshold: f64) -> Result<(), String> {
    if let Some((lower, upper)) = buckets
        .iter()
        .find(|(lower, upper)| *lower < threshold && threshold < *upper)
    {
        return Err(format!("it falls inside the bucket ({lower}, {upper}]"));
    }
    let Some(schema) = exponential_schema(buckets) else {
        return Ok(());
    };
    let base_exponent = (-f64::from(schema)).exp2(); // log2 of the base
    let k = threshold.log2() / base_exponent;
    if (k - k.round()).abs() < 1e-9 {
        return Ok(());
    }
    let below = (k.floor() * base_exponent).exp2();
    let above = (k.ceil() * base_exponent).exp2();
    Err(format!(
        "the histogram's exponential schema {schema} has the boundaries {below} and {above} around \
         it (powers of 2^(2^-{schema}))"
    ))
}

/// The exponential schema the populated buckets' bounds belong to, if they all fit one: every
/// positive finite bucket away from the zero bucket spans a factor `2^(2^-schema)` between
/// powers of it.
fn exponential_schema(buckets: &[(f64, f64)]) -> Option<i32> {
    let spans: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(l, u)| *l > 0.0 && u.is_finite() && *u > *l)
        .collect();
    let (l, u) = *spans.first()?;
    let width = (u / l).log2(); // 2^-schema
    let schema = -width.log2();
    let rounded = schema.round();
    if (schema - rounded).abs() > 1e-9 || !(-4.0..=8.0).contains(&rounded) {
        return None;
    }
    let step = (-rounded).exp2();
    let on_grid = |x: f64| {
        let k = x.log2() / step;
        (k - k.round()).abs() < 1e-6
    };
    let fits = spans
        .iter()
        .all(|(l, u)| on_grid(*l) && on_grid(*u) && ((u / l).log2() - step).abs() < 1e-9);
    // The schema is an i32 in -4..=8 here.
    fits.then_some(rounded as i32)
}

struct Checker<'a> {
    client: &'a Client,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn found(&mut self, path: &str, severity: Severity, message: String) {
        self.findings.push(Finding {
            path: path.to_string(),
            severity,
            message,
        });
    }

    /// The value of a `count(...)` query (0 when it has no result), or `None` when Prometheus
    /// refused it, which is then a finding.
    async fn count(&mut self, path: &str, query: &str) -> Result<Option<f64>, Error> {
        let answer = self.client.query(query).await;
        Ok(self
            .unless_refused(path, query, answer)?
            .map(|samples| samples.iter().map(|s| s.value).sum()))
    }

    /// The answer to `query`, or `None` when Prometheus refused it, which is then a finding on
    /// `path` (the SLO is wrong, not the check); other errors end the check.
    fn unless_refused<T>(
        &mut self,
        path: &str,
        query: &str,
        answer: Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match answer {
            Ok(value) => Ok(Some(value)),
            Err(Error::Refused { message, .. }) => {
                self.found(
                    path,
                    Severity::Error,
                    format!("Prometheus refuses `{query}`: {message}"),
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// How many series the selector matches now, when any; a finding of `severity` when none.
    async fn present(
        &mut self,
        path: &str,
        selector: &Selector,
        severity: Severity,
    ) -> Result<Option<f64>, Error> {
        match self.count(path, &format!("count({selector})")).await? {
            Some(n) if n > 0.0 => Ok(Some(n)),
            Some(_) => {
                let why = match severity {
                    Severity::Warning => {
                        "fine if nothing has failed yet (no error series counts as no errors), \
                         but check the selector"
                    }
                    Severity::Error => "check the metric name and labels",
                };
                self.found(
                    path,
                    severity,
                    format!("`{selector}` matches no series in Prometheus now: {why}"),
                );
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn group_by(
        &mut self,
        path: &str,
        series: &Selector,
        all: f64,
        labels: &[String],
    ) -> Result<(), Error> {
        for (i, label) in labels.iter().enumerate() {
            let labelled = series.with_matcher(LabelMatcher::new(label, MatchKind::NotEqual, ""));
            let with = format!("count({labelled})");
            let Some(labelled) = self.count(path, &with).await? else {
                continue;
            };
            let item = format!("{path}[{i}]");
            if labelled == 0.0 {
                self.found(
                    &item,
                    Severity::Error,
                    format!(
                        "label {label:?} is on none of the {all} series of `{series}`: they would \
                         all fall into one group with an empty {label}"
                    ),
                );
            } else if labelled < all {
                self.found(
                    &item,
                    Severity::Warning,
                    format!(
                        "label {label:?} is missing on {} of the {all} series of `{series}`: \
                         those form a group of their own with an empty {label}",
                        all - labelled
                    ),
                );
            }
        }
        Ok(())
    }

    /// Bad (or good) events must be events the total counts, or the ratio mixes populations.
    /// Series of the same metric must be among the total's (an error when not); for another
    /// metric they are matched on the labels one series of each has, a guess, so a warning.
    async fn inside_total(
        &mut self,
        path: &str,
        part: &Selector,
        total: &Selector,
    ) -> Result<(), Error> {
        let (matching, severity) = if part.metric == total.metric {
            (String::new(), Severity::Error)
        } else {
            let common = self.common_labels(part, total).await?;
            (format!(" on({})", common.join(", ")), Severity::Warning)
        };
        let query = format!("count({part} unless{matching} {total})");
        if let Some(outside) = self.count(path, &query).await?
            && outside > 0.0
        {
            self.found(
                path,
                severity,
                format!(
                    "{outside} series of `{part}` are not among the series of the total \
                     `{total}`{matching}: the ratio would count events the total does not; narrow \
                     the selector to the total's series"
                ),
            );
        }
        Ok(())
    }

    /// Label names (without `__name__`) of one series of each selector that both have.
    async fn common_labels(&mut self, a: &Selector, b: &Selector) -> Result<Vec<String>, Error> {
        let names = |samples: Vec<super::answer::Sample>| -> Vec<String> {
            samples
                .first()
                .map(|s| {
                    s.labels
                        .keys()
                        .filter(|k| *k != "__name__")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let of_a = names(self.client.query(&format!("topk(1, {a})")).await?);
        let of_b = names(self.client.query(&format!("topk(1, {b})")).await?);
        Ok(of_a.into_iter().filter(|l| of_b.contains(l)).collect())
    }

    /// The series must be native histograms, and the threshold a bucket boundary of each, or
    /// histogram_fraction interpolates and the SLI is an estimate.
    async fn native(
        &mut self,
        at: &str,
        histogram: &Selector,
        threshold: f64,
    ) -> Result<(), Error> {
        let path = format!("{at}.histogram");
        let Some(native) = self
            .count(&path, &format!("count(histogram_count({histogram}))"))
            .await?
        else {
            return Ok(());
        };
        if native == 0.0 {
            self.found(
                &path,
                Severity::Error,
                format!(
                    "`{histogram}` has float samples now, no native histograms: for a classic \
                     histogram (`_bucket` series with `le`) use indicator.latency; for a native \
                     one, check that Prometheus stores them (scrape_native_histograms, or \
                     --enable-feature=native-histograms before 3.8)"
                ),
            );
            return Ok(());
        }
        let query = histogram.to_string();
        let answer = self.client.query_histograms(&query).await;
        let Some(samples) = self.unless_refused(&path, &query, answer)? else {
            return Ok(());
        };
        let path = format!("{at}.threshold");
        // One finding for the first series that misses, naming it: the rest are alike, usually.
        for sample in &samples {
            if let Err(why) = boundary(&sample.buckets, threshold) {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                self.found(
                    &path,
                    Severity::Error,
                    format!(
                        "{threshold} is not a bucket boundary of the native histogram {{{}}}: \
                         {why}; histogram_fraction would interpolate inside the bucket, an \
                         estimate, not a count",
                        labels.join(", ")
                    ),
                );
                break;
            }
        }
        Ok(())
    }

    async fn bucket(
        &mut self,
        at: &str,
        histogram: &Selector,
        threshold: f64,
    ) -> Result<(), Error> {
        let buckets = histogram.with_metric(format!("{}_bucket", histogram.metric));
        let path = format!("{at}.threshold");
        // The bucket exactly as the rules select it: a bound they would not match is missing.
        let selected = crate::rules::threshold_bucket(histogram, threshold);
        if self.count(&path, &format!("count({selected})")).await? != Some(0.0) {
            return Ok(());
        }
        let query = format!("count by (le) ({buckets})");
        let answer = self.client.query(&query).await;
        let Some(bounds) = self.unless_refused(&path, &query, answer)? else {
            return Ok(());
        };
        // Each bound as a threshold is written (`1`, where Prometheus 3 stores the `1.0` it
        // normalises `le` to), once: a Prometheus upgraded from 2 holds both spellings.
        let mut les: Vec<(f64, String)> = bounds
            .iter()
            .filter_map(|s| s.labels.get("le"))
            .map(|le| match le.parse::<f64>() {
                Ok(bound) if bound.is_finite() => (bound, bound.to_string()),
                Ok(bound) => (bound, le.clone()),
                Err(_) => (f64::INFINITY, le.clone()),
            })
            .collect();
        les.sort_by(|x, y| x.0.total_cmp(&y.0));
        les.dedup_by(|x, y| x.1 == y.1);
        let message = match les.is_empty() {
            true => format!("`{buckets}` matches no series: the histogram has no buckets"),
            false => format!(
                "the histogram has no bucket at le=\"{threshold}\", so the SLI would have no \
                 data; its bounds are {}: pick one of them",
                les.iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.found(&path, Severity::Error, message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The populated buckets of a schema-`s` histogram at indices `ks`.
    fn exponential(schema: i32, ks: &[i32]) -> Vec<(f64, f64)> {
        let step = (-f64::from(schema)).exp2();
        ks.iter()
            .map(|k| {
                (
                    (f64::from(*k - 1) * step).exp2(),
                    (f64::from(*k) * step).exp2(),
                )
            })
            .collect()
    }

    #[test]
    fn powers_of_the_base_are_boundaries_of_exponential_schemas() {
        // Schema 0: boundaries are powers of 2; 0.25 is one even where its buckets are empty.
        let s0 = exponential(0, &[3, 4]);
        assert_eq!(boundary(&s0, 0.25), Ok(()));
        assert_eq!(boundary(&s0, 4.0), Ok(()));
        let e = boundary(&s0, 0.3).unwrap_err();
        assert!(
            e.contains("schema 0") && e.contains("0.25") && e.contains("0.5"),
            "{e}"
        );
        // Schema 3: the base is 2^(1/8); 2^(3/8) is a boundary, 0.3 is not.
        let s3 = exponential(3, &[-14, -13, 0, 1]);
        assert_eq!(boundary(&s3, (3.0f64 / 8.0).exp2()), Ok(()));
        assert!(boundary(&s3, 0.3).is_err());
        // Schema -1: the base is 4; 0.5 is not a boundary, 0.25 is.
        let wide = exponential(-1, &[0, 1]);
        assert_eq!(boundary(&wide, 0.25), Ok(()));
        assert!(boundary(&wide, 0.5).is_err());
    }

    #[test]
    fn custom_buckets_refuse_only_a_threshold_inside_a_populated_bucket() {
        let nhcb = vec![(0.0, 0.1), (0.1, 0.3), (0.3, 1.2), (1.2, f64::INFINITY)];
        assert_eq!(boundary(&nhcb, 0.3), Ok(()));
        assert_eq!(boundary(&nhcb, 0.1), Ok(()));
        let e = boundary(&nhcb, 0.5).unwrap_err();
        assert!(e.contains("(0.3, 1.2]"), "{e}");
        // Not populated around 5: nothing to tell.
        assert_eq!(boundary(&[(0.1, 0.3)], 5.0), Ok(()));
    }
}
