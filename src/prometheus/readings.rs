//! The batched status query: two instant queries return every SLO's recorded ratios and their
//! ages, whatever the number of SLOs; this maps the answer to one reading per SLO and group.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::client::Sample;
use crate::budget::Reading;
use crate::model::Duration;
use crate::rules::names;

/// Every recorded error ratio of every SLO.
pub const RATIOS_QUERY: &str = r#"{__name__=~"slo:sli_error:ratio_.+", slo_namespace!=""}"#;
/// When each SLO's window ratio was last written.
pub const AGES_QUERY: &str = r#"timestamp(slo:sli_error:ratio_window{slo_namespace!=""})"#;

/// One SLO, or one group of a `groupBy` SLO.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    /// The `groupBy` labels; empty for SLOs without groups.
    pub group: BTreeMap<String, String>,
}

fn key(labels: &BTreeMap<String, String>) -> Option<SeriesKey> {
    let namespace = labels.get(names::LABEL_NAMESPACE)?.clone();
    let name = labels.get(names::LABEL_SLO)?.clone();
    let group = labels
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "__name__" | names::LABEL_SLO | names::LABEL_NAMESPACE | names::LABEL_SERVICE
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(SeriesKey {
        namespace,
        name,
        group,
    })
}

/// Folds both answers into readings.
pub fn readings(ratios: &[Sample], ages: &[Sample]) -> BTreeMap<SeriesKey, Reading> {
    let mut out: BTreeMap<SeriesKey, Reading> = BTreeMap::new();
    for sample in ratios {
        let (Some(key), Some(metric)) = (key(&sample.labels), sample.labels.get("__name__")) else {
            continue;
        };
        let reading = out.entry(key).or_default();
        if metric == names::RATIO_WINDOW {
            reading.window_error_ratio = Some(sample.value);
        } else if let Some(window) = metric
            .strip_prefix(names::RATIO_PREFIX)
            .and_then(|m| m.strip_prefix("ratio_rate"))
            .and_then(|w| Duration::parse(w, "wdhm").ok())
        {
            reading.error_ratios.insert(window, sample.value);
        }
    }
    for sample in ages {
        let Some(key) = key(&sample.labels) else {
            continue;
        };
        let written = Timestamp::from_millisecond((sample.value * 1000.0) as i64).ok();
        if let Some(reading) = out.get_mut(&key) {
            reading.newest_sample = written;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    /// A series of the checkout SLO: its labels, the record name and extra (group) labels.
    fn own(name: &str, extra: &[(&str, &str)], value: f64) -> Sample {
        let mut labels = vec![
            ("slo", "checkout"),
            ("slo_namespace", "shop"),
            ("slo_service", "checkout"),
            ("__name__", name),
        ];
        labels.extend_from_slice(extra);
        sample(&labels, value)
    }

    #[test]
    fn maps_series_to_slos_and_groups() {
        let ratios = [
            own("slo:sli_error:ratio_window", &[], 0.0005),
            own("slo:sli_error:ratio_rate1h", &[], 0.002),
            own("slo:sli_error:ratio_rate5h35m", &[], 0.001),
            own("slo:sli_error:ratio_window", &[("route", "/pay")], 0.1),
            sample(&[("__name__", "slo:sli_error:ratio_window")], 0.3),
        ];
        let ages = [sample(
            &[
                ("slo", "checkout"),
                ("slo_namespace", "shop"),
                ("slo_service", "checkout"),
            ],
            1_800_000_000.5,
        )];
        let r = readings(&ratios, &ages);
        assert_eq!(r.len(), 2, "the unlabelled series is not an SLO's");
        let plain = &r[&SeriesKey {
            namespace: "shop".into(),
            name: "checkout".into(),
            group: BTreeMap::new(),
        }];
        assert_eq!(plain.window_error_ratio, Some(0.0005));
        assert_eq!(plain.error_ratios[&Duration::from_hours(1)], 0.002);
        assert_eq!(plain.error_ratios[&Duration::from_minutes(335)], 0.001);
        assert_eq!(
            plain.newest_sample,
            Some(Timestamp::from_millisecond(1_800_000_000_500).unwrap())
        );
        let pay = r
            .iter()
            .find(|(k, _)| k.group.get("route").map(String::as_str) == Some("/pay"))
            .unwrap();
        assert_eq!(pay.1.window_error_ratio, Some(0.1));
        assert_eq!(
            pay.1.newest_sample, None,
            "no age for that group: it will count as missing"
        );
    }
}
