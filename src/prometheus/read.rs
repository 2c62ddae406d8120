//! One round's read of every SLO: which ratio records exist, then one query per record (values
//! and ages together), then one query per distinct calendar period start. The number of queries
//! depends on the distinct windows and periods, never on the number of SLOs.

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;

use super::client::{Client, Error};
use super::period::Member;
use super::readings::{self, Failure, Readings, Record};
use super::scope::ReadingScope;

/// An SLO with a calendar window: its namespace, name, slice length (timeslices) and current
/// period's start.
pub struct CalendarSlo<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub slice: Option<crate::model::Duration>,
    pub start: Timestamp,
}

/// Reads every SLO's recorded ratios. A failed base or window-ratio query, or a partial answer
/// (with warnings) to any record's query, fails the round (no SLO has data); a failed burn-window
/// query leaves that window out (no trigger fires on it); a failed calendar query, partial or
/// not, fails only the SLOs of that period.
pub async fn read(
    client: &Client,
    scope: &ReadingScope,
    calendars: &[CalendarSlo<'_>],
    now: Timestamp,
) -> Result<Readings, Failure> {
    let present = client
        .query_at(&readings::names_query(scope), now)
        .await
        .map_err(|e| Failure::from(&e))?;
    let mut out = Readings::new(scope);
    // Two queries at a time: Prometheus runs the next while this one's answer is folded in.
    let fetches: Vec<_> = readings::record_names(&present)
        .into_iter()
        .map(|metric| {
            let query = readings::record_query(&metric, scope);
            async move { (metric, client.fetch_at(&query, now).await) }
        })
        .collect();
    let mut answers = futures::stream::iter(fetches).buffered(2);
    while let Some((metric, answer)) = answers.next().await {
        let record = Record::of(&metric);
        // Folded in sample by sample: at 10,000 SLOs an answer is 20,000 series.
        match answer.and_then(|a| a.each_sample(|s| out.add_sample(&record, &s))) {
            Ok(()) => {}
            // Every SLO needs its window ratio: without it the round has no data. A partial
            // answer may lack any SLO's series, so it fails the round whatever the record.
            Err(e) if record == Record::Window || matches!(e, Error::Partial { .. }) => {
                return Err(Failure::from(&e));
            }
            // A burn window's ratio is then unknown for this round: no trigger fires on it.
            Err(e) => {
                out.drop_record(&record);
                tracing::warn!(record = %metric, error = %e, "Prometheus read of one burn window failed")
            }
        }
    }
    let mut by_start: std::collections::BTreeMap<Timestamp, Vec<Member>> =
        std::collections::BTreeMap::new();
    for slo in calendars {
        by_start.entry(slo.start).or_default().push(Member {
            namespace: slo.namespace,
            name: slo.name,
            slice: slo.slice,
        });
    }
    for (start, members) in by_start {
        // No count of the period yet: its SLOs read no period ratio, and say so.
        let Some(query) = super::period::period_query(&members, start, now, scope) else {
            continue;
        };
        match client.query_at(&query, now).await {
            Ok(samples) => out.add_period(&samples),
            Err(e) => out.fail_period(start, Failure::from(&e)),
        }
    }
    out.shrink_to_fit();
    Ok(out)
}

/// The calendar SLOs among these, with their current period's start: the read sums their counts
/// since then.
pub fn calendars<'a>(
    slos: impl IntoIterator<Item = (&'a str, &'a crate::model::Slo)>,
    now: Timestamp,
) -> Vec<CalendarSlo<'a>> {
    slos.into_iter()
        .filter_map(|(namespace, slo)| {
            let (start, _) = slo.window.period(now)?;
            Some(CalendarSlo {
                namespace,
                name: &slo.name,
                slice: match slo.method {
                    crate::model::BudgetingMethod::Timeslices { slice, .. } => Some(slice),
                    crate::model::BudgetingMethod::Occurrences => None,
                },
                start,
            })
        })
        .collect()
}

/// [`read`] for these SLOs (namespace, model): local mode and the gate, which hold models.
pub async fn read_for(
    client: &Client,
    scope: &ReadingScope,
    slos: &[(String, crate::model::Slo)],
    now: Timestamp,
) -> Result<Readings, Failure> {
    let calendars = calendars(slos.iter().map(|(ns, slo)| (ns.as_str(), slo)), now);
    read(client, scope, &calendars, now).await
}

/// The names of the recording-rule groups Prometheus has loaded (`/api/v1/rules?type=record`):
/// asked only when some SLO has no series, to tell rules no Prometheus loaded (a PrometheusRule
/// no `ruleSelector` picks) from rules that recorded nothing (an indicator without traffic).
/// Thanos Query and Mimir serve the same endpoint for their rulers.
pub async fn loaded_rule_groups(client: &Client) -> Result<Vec<String>, Error> {
    let data = client
        .get_data("rules?type=record&exclude_alerts=true")
        .await?;
    let groups = data
        .get("groups")
        .and_then(|g| g.as_array())
        .ok_or_else(|| Error::Decode("no groups in the rules answer".into()))?;
    Ok(groups
        .iter()
        .filter_map(|g| g.get("name")?.as_str().map(str::to_string))
        .collect())
}
