//! The batched status read: a handful of instant queries return every SLO's recorded ratios and
//! when each was written, whatever the number of SLOs; this folds the answers into readings per
//! SLO and label set. Which of those series really are an SLO's own is decided by [`own`]: only
//! series with exactly the SLO's identity (name, namespace, service, UID) plus its `groupBy`
//! labels and the reading scope's labels count; anything else is foreign and never decides.

use crate::small_map::SmallMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::jiff::Timestamp;

use super::answer::Sample;
use super::period::AMOUNT_LABEL;
use super::scope::ReadingScope;
use crate::budget::Reading;
use crate::model::Duration;
use crate::model::names::is_metric_name;
use crate::rules::names;

/// The selector of every recorded error ratio, with the reading scope's matchers.
fn ratios_selector(metric: &str, scope: &ReadingScope) -> String {
    let name = if metric.is_empty() {
        r#"__name__=~"slo:sli_error:ratio_.+","#.to_string()
    } else {
        String::new()
    };
    format!(
        "{metric}{{{name}{}!=\"\"{}}}",
        names::LABEL_NAMESPACE,
        scope.suffix()
    )
}

/// Which ratio records exist: one series per record name. `last_over_time` over 15 minutes, like
/// the reads, so a slow-group record is not missed just before its next evaluation.
pub fn names_query(scope: &ReadingScope) -> String {
    format!(
        "count by (__name__) (last_over_time({}[15m]))",
        ratios_selector("", scope)
    )
}

/// One record's values and ages: the newest value of the last 15 minutes (a plain selector looks
/// back only 5, exactly the slow group's interval) and, per series, when it was last written:
/// `timestamp()` of a plain selector is the sample's own time, for samples of the last 5
/// minutes; an older one is found by the same function at 5m steps over 15 minutes (every sample
/// lies within 5 minutes before some step, so the time is exact, at a quarter of the cost of
/// 1m steps). Every series of every SLO in one answer per record.
pub fn record_query(metric: &str, scope: &ReadingScope) -> String {
    let selector = ratios_selector(metric, scope);
    let part = |expr: String, part: &str| {
        format!(r#"label_replace({expr}, "{PART_LABEL}", "{part}", "", "")"#)
    };
    format!(
        "{} or {}",
        part(format!("last_over_time({selector}[15m])"), "value"),
        part(
            format!("(timestamp({selector}) or max_over_time(timestamp({selector})[15m:5m]))"),
            "written"
        )
    )
}

/// The record names of a [`names_query`] answer that are ours to read.
pub fn record_names(samples: &[Sample]) -> Vec<String> {
    let mut out: Vec<String> = samples
        .iter()
        .filter_map(|s| s.labels.get("__name__"))
        .filter(|n| n.starts_with(names::RATIO_PREFIX) && is_metric_name(n))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Which ratio a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// `slo:sli_error:ratio_window`.
    Window,
    /// `slo:sli_error:ratio_rate<W>`.
    Burn(Duration),
    /// A name of ours this version does not read.
    Other,
}

impl Record {
    pub fn of(metric: &str) -> Record {
        if metric == names::RATIO_WINDOW {
            return Record::Window;
        }
        metric
            .strip_prefix(names::RATIO_PREFIX)
            .and_then(|m| m.strip_prefix("ratio_rate"))
            .and_then(|w| Duration::parse(w, "wdhm").ok())
            .map_or(Record::Other, Record::Burn)
    }
}

/// Tells the two halves of a [`record_query`] answer apart.
const PART_LABEL: &str = "plimsoll_part";

/// Why a read failed, with a reason of its own for the DataAvailable condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

impl From<&super::Error> for Failure {
    fn from(e: &super::Error) -> Failure {
        use super::Error;
        let reason = match e {
            Error::Unreachable { .. } => "PrometheusUnreachable",
            Error::Refused { .. } => "PrometheusRefused",
            Error::Decode(_) => "PrometheusBadAnswer",
            Error::Partial { .. } => "PartialResponse",
            _ => "PrometheusMisconfigured",
        };
        Failure {
            reason,
            message: e.to_string(),
        }
    }
}

/// One label set of the series that name an SLO: everything but the record name, `slo` and
/// `slo_namespace`, with what was read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Labelled {
    pub labels: SmallMap<String, String>,
    pub reading: Reading,
}

/// Everything one round read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings {
    /// By namespace and name as the series' labels claim (two levels, so a sample finds its SLO
    /// without building a key).
    by_slo: HashMap<String, HashMap<String, Vec<Labelled>>>,
    /// Calendar sums that could not be read, by period start: only SLOs of that period lack data.
    failed_periods: BTreeMap<Timestamp, Failure>,
    /// Labels the reading scope allows on our series.
    allowed: BTreeSet<String>,
    /// Which SLOs' rule groups Prometheus has loaded, when the reader asked (see
    /// [`Readings::set_loaded_rules`]); `None` when it did not or could not.
    loaded_rules: Option<LoadedRules>,
}

/// The rule groups of ours a Prometheus lists in `/api/v1/rules`, by the namespace and name of
/// their SLO (groups are named `plimsoll/<namespace>/<name>/<part>`), and the labels the operator
/// puts on its PrometheusRules, for the message of an SLO whose groups are not among them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadedRules {
    pub slos: BTreeSet<(String, String)>,
    /// `key=value,...` of `--rule-label`; empty without.
    pub rule_labels: String,
}

impl LoadedRules {
    /// From the names of the groups Prometheus lists; names not of our form are left out.
    pub fn from_groups<'a>(names: impl IntoIterator<Item = &'a str>, rule_labels: String) -> Self {
        let slos = names
            .into_iter()
            .filter_map(|n| {
                let mut parts = n.strip_prefix("plimsoll/")?.splitn(3, '/');
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
            .collect();
        LoadedRules { slos, rule_labels }
    }
}

impl Readings {
    pub fn new(scope: &ReadingScope) -> Readings {
        Readings {
            allowed: scope.allowed_labels(),
            ..Readings::default()
        }
    }

    /// Adds the samples of one [`record_query`] answer for `metric`.
    pub fn add_record(&mut self, metric: &str, samples: &[Sample]) {
        let record = Record::of(metric);
        for sample in samples {
            self.add_sample(&record, sample);
        }
    }

    /// Adds one sample of a [`record_query`] answer for `record`.
    pub fn add_sample(&mut self, record: &Record, sample: &Sample) {
        let Some(part) = sample.labels.get(PART_LABEL).cloned() else {
            return;
        };
        let Some(reading) = self.entry(&sample.labels) else {
            return;
        };
        let written = || Timestamp::from_millisecond((sample.value * 1000.0) as i64).ok();
        match (part.as_str(), record) {
            ("value", Record::Window) => reading.window_error_ratio = Some(sample.value),
            ("written", Record::Window) => reading.newest_sample = written(),
            ("value", Record::Burn(w)) => {
                reading.error_ratios.insert(*w, sample.value);
            }
            ("written", Record::Burn(w)) => {
                if let Some(t) = written() {
                    reading.ratios_written.insert(*w, t);
                }
            }
            _ => {}
        }
    }

    /// Takes a burn window back out of every reading: its answer broke off part way.
    pub fn drop_record(&mut self, record: &Record) {
        let Record::Burn(w) = record else {
            return;
        };
        let sets = self.by_slo.values_mut().flat_map(HashMap::values_mut);
        for reading in sets.flatten().map(|l| &mut l.reading) {
            reading.error_ratios.remove(w);
            reading.ratios_written.remove(w);
        }
    }

    /// Adds the error ratios since a period start (see `period::period_ratios`).
    pub fn add_period(&mut self, samples: &[Sample]) {
        for (labels, ratio) in super::period::period_ratios(samples) {
            if let Some(reading) = self.existing(&labels) {
                reading.period_error_ratio = Some(ratio);
            }
        }
    }

    /// Records that the sums since `start` could not be read.
    pub fn fail_period(&mut self, start: Timestamp, failure: Failure) {
        self.failed_periods.insert(start, failure);
    }

    /// Why the sums since `start` are unknown, if they are.
    pub fn period_failure(&self, start: Timestamp) -> Option<&Failure> {
        self.failed_periods.get(&start)
    }

    /// Gives back the room the maps and lists kept for more entries: a round is complete once
    /// read, and is held until the next one is (at 10,000 SLOs that room was 6 MiB a round).
    pub fn shrink_to_fit(&mut self) {
        self.by_slo.shrink_to_fit();
        for names in self.by_slo.values_mut() {
            names.shrink_to_fit();
        }
        for set in self.by_slo.values_mut().flat_map(HashMap::values_mut) {
            set.shrink_to_fit();
            for labelled in set {
                labelled.labels.shrink_to_fit();
                labelled.reading.error_ratios.shrink_to_fit();
                labelled.reading.ratios_written.shrink_to_fit();
            }
        }
    }

    /// Every label set naming this SLO, own or not.
    pub fn claimed(&self, namespace: &str, name: &str) -> &[Labelled] {
        self.by_slo
            .get(namespace)
            .and_then(|names| names.get(name))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// What the reader learnt of the loaded rule groups (see [`LoadedRules`]).
    pub fn set_loaded_rules(&mut self, loaded: LoadedRules) {
        self.loaded_rules = Some(loaded);
    }

    /// Whether Prometheus has loaded any rule group of this SLO: `None` when unknown (not asked,
    /// or the endpoint did not answer), with the operator's rule labels otherwise.
    pub fn rules_loaded(&self, namespace: &str, name: &str) -> Option<(bool, &str)> {
        let loaded = self.loaded_rules.as_ref()?;
        let key = (namespace.to_string(), name.to_string());
        Some((loaded.slos.contains(&key), loaded.rule_labels.as_str()))
    }

    /// How many SLO names the answers mention.
    pub fn len(&self) -> usize {
        self.by_slo.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_slo.is_empty()
    }

    /// Adds a reading as if read (tests and tools).
    pub fn insert(
        &mut self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        reading: Reading,
    ) {
        self.by_slo
            .entry(namespace.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default()
            .push(Labelled {
                labels: labels.into(),
                reading,
            });
    }

    /// Adds a reading with exactly the labels the rules of this SLO write (tests and tools).
    pub fn insert_own(
        &mut self,
        namespace: &str,
        name: &str,
        service: &str,
        uid: Option<&str>,
        reading: Reading,
    ) {
        let mut labels = BTreeMap::from([(names::LABEL_SERVICE.to_string(), service.to_string())]);
        if let Some(uid) = uid {
            labels.insert(names::LABEL_UID.to_string(), uid.to_string());
        }
        self.insert(namespace, name, labels, reading);
    }

    fn entry(&mut self, labels: &SmallMap<String, String>) -> Option<&mut Reading> {
        let namespace = labels.get(names::LABEL_NAMESPACE)?;
        let name = labels.get(names::LABEL_SLO)?;
        // Keys are cloned only for an SLO or label set not seen yet this round.
        if !self.by_slo.contains_key(namespace) {
            self.by_slo.insert(namespace.clone(), HashMap::new());
        }
        let names = self.by_slo.get_mut(namespace)?;
        if !names.contains_key(name) {
            names.insert(name.clone(), Vec::new());
        }
        let sets = names.get_mut(name)?;
        let at = match sets.iter().position(|l| l.labels.iter().eq(rest(labels))) {
            Some(at) => at,
            None => {
                let labels = rest(labels).map(|(k, v)| (k.clone(), v.clone())).collect();
                sets.push(Labelled {
                    labels,
                    reading: Reading::default(),
                });
                sets.len() - 1
            }
        };
        Some(&mut sets[at].reading)
    }

    fn existing(&mut self, labels: &SmallMap<String, String>) -> Option<&mut Reading> {
        let namespace = labels.get(names::LABEL_NAMESPACE)?;
        let name = labels.get(names::LABEL_SLO)?;
        let sets = self.by_slo.get_mut(namespace)?.get_mut(name)?;
        sets.iter_mut()
            .find(|l| l.labels.iter().eq(rest(labels)))
            .map(|l| &mut l.reading)
    }
}

/// The labels of a series but its SLO's name and namespace, the record name and our parts.
fn rest(labels: &SmallMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    labels.iter().filter(|(k, _)| {
        !matches!(
            k.as_str(),
            "__name__" | names::LABEL_SLO | names::LABEL_NAMESPACE | PART_LABEL | AMOUNT_LABEL
        )
    })
}

/// What an SLO's own series must look like.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub service: &'a str,
    /// `None` for SLOs from files (local mode), whose series carry no `slo_uid`.
    pub uid: Option<&'a str>,
    pub group_by: &'a [String],
}

/// Why a series that names an SLO is not read as the SLO's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Foreign {
    /// Written for an SLO of the same name that has since been deleted (or from another
    /// cluster's SLO of that name): its `slo_uid` is not this SLO's.
    OtherUid,
    /// Labels our rules never write (an exporter's series, a second cluster's external labels),
    /// or the wrong service: the label set, as text.
    UnexpectedLabels(String),
}

impl Foreign {
    /// Metric label: low cardinality.
    pub fn reason(&self) -> &'static str {
        match self {
            Foreign::OtherUid => "other_uid",
            Foreign::UnexpectedLabels(_) => "unexpected_labels",
        }
    }
}

/// One of an SLO's own label sets: its `groupBy` labels and what was read.
pub type OwnGroup<'r> = (BTreeMap<String, String>, &'r Reading);

/// The SLO's own label sets, each as its `groupBy` group with its reading, and the series that
/// claim the SLO but are not its own.
pub fn own<'r>(readings: &'r Readings, id: &Identity) -> (Vec<OwnGroup<'r>>, Vec<Foreign>) {
    let mut mine = Vec::new();
    let mut foreign = Vec::new();
    for set in readings.claimed(id.namespace, id.name) {
        match check(&set.labels, id, &readings.allowed) {
            Ok(group) => mine.push((group, &set.reading)),
            Err(f) => foreign.push(f),
        }
    }
    foreign.sort();
    foreign.dedup();
    (mine, foreign)
}

fn check(
    labels: &SmallMap<String, String>,
    id: &Identity,
    allowed: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>, Foreign> {
    let uid = labels.get(names::LABEL_UID).map(String::as_str);
    if let (Some(theirs), Some(ours)) = (uid, id.uid)
        && theirs != ours
    {
        return Err(Foreign::OtherUid);
    }
    let mut group = BTreeMap::new();
    let mut expected =
        uid == id.uid && labels.get(names::LABEL_SERVICE).map(String::as_str) == Some(id.service);
    for (k, v) in labels {
        if id.group_by.contains(k) {
            group.insert(k.clone(), v.clone());
        } else if !(k == names::LABEL_SERVICE || k == names::LABEL_UID || allowed.contains(k)) {
            expected = false;
        }
    }
    if !expected {
        let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        return Err(Foreign::UnexpectedLabels(format!(
            "{{{}}}",
            text.join(", ")
        )));
    }
    Ok(group)
}

#[cfg(test)]
#[path = "readings_tests.rs"]
mod tests;
