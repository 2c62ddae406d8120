//! `plimsoll gate`: a release gate for CI/CD pipelines and Argo CD PreSync hooks. Exit 0 when
//! enough budget is left, 1 when not, 3 when nobody can tell (no data, Prometheus down, no SLO),
//! and 2 only for a command line or an input it cannot use, so a pipeline that lets "unknown"
//! through never lets a broken command through. The verdict is one line on stdout.
//!
//! The SLO comes from the cluster or from manifests (`-f`). The operator's series carry the
//! object's UID, which a manifest lacks: with `-f` the series of the SLO's namespace and name say
//! which UID to read (see [`crate::evaluator::owner`]), and `--slo-uid` names one.

use std::io::Write;
use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use kube::Api;
use tracing::debug;

use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};
use crate::api::ServiceLevelObjective;
use crate::budget::{NoData, STALE_AFTER};
use crate::evaluator::owner::{self, Claimant, Pick};
use crate::evaluator::{self, Judgement};
use crate::manifests::{self, Decoded, Outcome};
use crate::model::{self, Slo};
use crate::prometheus::{self, Foreign};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SLO, as `<namespace>/<name>`.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub slo: String,
    /// Pass only with at least this much error budget left, in percent of the whole budget
    /// (`15` or `15%`).
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub min_budget: f64,
    /// What an unknown answer (no fresh data, Prometheus unreachable, no such SLO) exits with:
    /// `unknown` (3), or `pass` (0) / `fail` (1) for a pipeline that can only tell two codes.
    #[arg(long, value_enum, default_value_t = OnUnknown::Unknown, value_name = "EXIT")]
    pub on_unknown: OnUnknown,
    /// Read the SLO from these manifests instead of the cluster. Its series are found by
    /// namespace and name: those of the one UID with fresh series (the operator's), else those
    /// without a UID (`plimsoll local`'s).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filenames: Vec<PathBuf>,
    /// With -f: read the series of the SLO with this `metadata.uid`, for when an SLO of that
    /// name was deleted and created again and both have fresh series.
    #[arg(long, value_name = "UID", requires = "filenames", value_parser = parse_uid)]
    pub slo_uid: Option<String>,
    /// Label matchers that scope the reading to one cluster or tenant, such as `cluster="a"`:
    /// behind Thanos, Mimir or federation, the external labels that tell this cluster's series
    /// apart (without them, series that carry such labels are not the SLO's, and the gate cannot
    /// tell). As `plimsoll run`'s.
    #[arg(long, env = "PLIMSOLL_READING_SELECTOR", value_parser = super::parse_scope, default_value = "")]
    pub reading_selector: prometheus::ReadingScope,
    /// Prometheus, which evaluates the SLO's rules (required).
    #[command(flatten)]
    pub prometheus: super::prometheus_flags::PrometheusFlags,
}

/// What the gate exits with when it cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnUnknown {
    Unknown,
    Pass,
    Fail,
}

/// Exit code: nobody can tell (no data, Prometheus unreachable, no such SLO).
pub const EXIT_UNKNOWN: u8 = 3;

fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a percentage of the budget from 0 to 100, such as 15 or 15%"
        )),
    }
}

fn parse_uid(text: &str) -> Result<String, String> {
    let uid = text.trim();
    if uid.is_empty() {
        return Err("is empty: give the SLO's metadata.uid, such as \
                    `kubectl get servicelevelobjectives.plimsoll.dev -n shop checkout -o \
                    jsonpath='{.metadata.uid}'` prints"
            .into());
    }
    Ok(uid.to_string())
}

/// The gate's answer.
enum Verdict {
    /// The command cannot run as given (such as no Prometheus URL): exit 2.
    Usage(String),
    Pass(String),
    Fail(String),
    Unknown(String),
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let verdict = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(judge(args)),
        Err(e) => Verdict::Unknown(format!("cannot start the async runtime: {e}")),
    };
    match verdict {
        Verdict::Pass(line) => {
            let _ = writeln!(out, "PASS {line}");
            EXIT_OK
        }
        Verdict::Fail(line) => {
            let _ = writeln!(out, "FAIL {line}");
            EXIT_INVALID
        }
        Verdict::Unknown(line) => {
            let _ = writeln!(out, "UNKNOWN {line}");
            match args.on_unknown {
                OnUnknown::Unknown => EXIT_UNKNOWN,
                OnUnknown::Pass => EXIT_OK,
                OnUnknown::Fail => EXIT_INVALID,
            }
        }
        Verdict::Usage(message) => {
            let _ = writeln!(err, "plimsoll gate: {message}");
            EXIT_ERROR
        }
    }
}

/// Where the UID whose series are read came from.
#[derive(Debug, Clone, PartialEq)]
enum UidFrom {
    /// The SLO object in the cluster.
    Cluster,
    /// `--slo-uid`, or the manifest's own `metadata.uid`.
    Given,
    /// The series: the one UID with fresh series (or none, for local mode's series).
    Series,
}

async fn judge(args: &Args) -> Verdict {
    let Some((namespace, name)) = args.slo.split_once('/') else {
        return Verdict::Usage(format!("--slo {:?}: use <namespace>/<name>", args.slo));
    };
    let client = match args.prometheus.required() {
        Ok(settings) => prometheus::Client::new(settings).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => return Verdict::Usage(e),
    };
    let mut slo = match load(args, namespace, name).await {
        Ok(slo) => slo,
        Err(e) => return Verdict::Unknown(format!("{}: {e}", args.slo)),
    };

    let now = Timestamp::now();
    let own = [(namespace.to_string(), slo.clone())];
    let readings = match prometheus::read_for(&client, &args.reading_selector, &own, now).await {
        Ok(r) => r,
        Err(e) => {
            let e = e.message;
            return Verdict::Unknown(format!("{}: no answer, not deciding: {e}", args.slo));
        }
    };
    let claimants = owner::claimants(&slo, namespace, &readings);
    let from = if args.filenames.is_empty() {
        UidFrom::Cluster
    } else if let Some(uid) = args.slo_uid.clone().or(slo.uid.clone()) {
        slo.uid = Some(uid);
        UidFrom::Given
    } else {
        match owner::pick(&claimants, now) {
            Pick::Read(uid) => {
                slo.uid = uid;
                UidFrom::Series
            }
            Pick::Several(uids) => return Verdict::Unknown(several(&args.slo, &uids)),
        }
    };
    let judgement = evaluator::judge(&slo, namespace, &Ok(readings), now);
    let a = match &judgement.verdict {
        Ok(a) => a,
        Err(e) => {
            let mut hint = hint(&slo, &from, e, &judgement, &claimants, now);
            // No series of a native-histogram SLO on a Prometheus 2: its rules cannot load.
            if slo.indicator.needs_prometheus_3()
                && let Ok(Err(too_old)) =
                    prometheus::version::check_native_histograms(&client).await
            {
                hint = format!(" ({too_old}){hint}");
            }
            return Verdict::Unknown(format!("{}: {e}; not deciding{hint}", args.slo));
        }
    };
    debug!(?a, uid = ?slo.uid, "gate assessment");
    let line = format!(
        "{}: {:.1}% of the error budget left (SLI {:.4}%, objective {}% over {}); the gate needs {}%",
        args.slo,
        a.remaining,
        a.sli,
        slo.objective,
        slo.window.rolling_equivalent(),
        args.min_budget
    );
    if a.remaining >= args.min_budget {
        Verdict::Pass(line)
    } else {
        Verdict::Fail(line)
    }
}

/// Several UIDs with fresh series and nothing to choose by.
fn several(slo: &str, uids: &[String]) -> String {
    format!(
        "{slo}: {} SLOs named {slo} have fresh series (uids {}): the SLO was deleted and created \
         again; pass --slo-uid with the current one's metadata.uid to pick it, or gate again once \
         the deleted one's series are older than {STALE_AFTER}; not deciding",
        uids.len(),
        uids.join(", ")
    )
}

/// What to add to an unknown answer: whose series were read, and what else names the SLO.
fn hint(
    slo: &Slo,
    from: &UidFrom,
    no_data: &NoData,
    judgement: &Judgement,
    claimants: &[Claimant],
    now: Timestamp,
) -> String {
    let read = slo.uid.as_deref();
    let mut parts = Vec::new();
    let fresh_others: Vec<&str> = claimants
        .iter()
        .filter(|c| c.fresh(now) && c.uid.as_deref() != read)
        .filter_map(|c| c.uid.as_deref())
        .collect();
    match (from, no_data) {
        (UidFrom::Given, _) if !fresh_others.is_empty() => {
            let pass = match fresh_others.as_slice() {
                [one] => format!("pass --slo-uid {one} if that is the SLO"),
                _ => "pass --slo-uid with the SLO's own".to_string(),
            };
            parts.push(format!(
                "read the series of slo_uid {}, but those of slo_uid {} are fresh: {pass}, or \
                 leave out --slo-uid and the manifest's metadata.uid to take the UID from the \
                 series",
                read.unwrap_or_default(),
                fresh_others.join(", ")
            ))
        }
        (UidFrom::Series, NoData::Stale { .. }) => parts.push(match read {
            Some(uid) => format!(
                "no SLO of this name has series fresher than {STALE_AFTER}; these are the newest, \
                 of slo_uid {uid}: its rules stopped, or it was deleted"
            ),
            None => format!(
                "no SLO of this name has series fresher than {STALE_AFTER}; these are the \
                 newest, without slo_uid (plimsoll local's rules)"
            ),
        }),
        _ => {}
    }
    if matches!(no_data, NoData::Missing) {
        let unexpected: Vec<&str> = judgement
            .foreign
            .iter()
            .filter_map(|f| match f {
                Foreign::UnexpectedLabels(labels) => Some(labels.as_str()),
                Foreign::OtherUid => None,
            })
            .collect();
        if let Some(first) = unexpected.first() {
            parts.push(format!(
                "{} series name it but not as its rules would write them, such as {first}: \
                 check that the SLO's service and groupBy are those its rules were made from, \
                 and behind Thanos, Mimir or federation pass --reading-selector with this \
                 cluster's external labels (such as `cluster=\"a\"`)",
                unexpected.len()
            ));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

async fn load(args: &Args, namespace: &str, name: &str) -> Result<Slo, String> {
    if !args.filenames.is_empty() {
        let files = manifests::expand(&args.filenames).map_err(|e| e.to_string())?;
        let (checked, errors) = manifests::check_files(&files);
        if let Some(e) = errors.first() {
            return Err(e.to_string());
        }
        for doc in checked {
            if let Outcome::Decoded(Decoded::Valid(valid)) = doc.outcome {
                let slo = valid.1;
                let ns = slo.namespace.as_deref().unwrap_or("default");
                if ns == namespace && slo.name == name {
                    return Ok(slo);
                }
            }
        }
        return Err("no valid SLO of that name in the given files".into());
    }
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no cluster to read the SLO from (give -f, or a kubeconfig): {e}"))?;
    let api: Api<ServiceLevelObjective> = Api::namespaced(client, namespace);
    let object = api.get(name).await.map_err(|e| e.to_string())?;
    model::validate(&object).map_err(|e| format!("invalid spec: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use k8s_openapi::jiff::SignedDuration;

    use super::*;
    use crate::budget::Reading;
    use crate::cli::{Cli, Command};
    use crate::prometheus::Readings;

    fn parse(args: &[&str]) -> Result<Args, String> {
        let all = ["plimsoll", "gate", "--slo=shop/checkout", "--min-budget=15"];
        let all = all.iter().chain(args).chain(&["--prometheus-url=http://p"]);
        match Cli::try_parse_from(all).map_err(|e| e.to_string())?.command {
            Command::Gate(args) => Ok(*args),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn min_budget_takes_a_percent_sign_and_refuses_what_is_not_a_share() {
        assert_eq!(parse_percent("15%"), Ok(15.0));
        assert_eq!(parse_percent("15"), Ok(15.0));
        assert_eq!(parse_percent("0.5 %"), Ok(0.5));
        for bad in ["150", "-1", "15pc", ""] {
            let e = parse_percent(bad).unwrap_err();
            assert!(e.contains("such as 15 or 15%"), "{bad}: {e}");
        }
        let all = ["plimsoll", "gate", "--slo=shop/a", "--min-budget", "25%"];
        match Cli::try_parse_from(all).unwrap().command {
            Command::Gate(args) => {
                assert_eq!(args.min_budget, 25.0);
                assert_eq!(args.on_unknown, OnUnknown::Unknown);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slo_uid_is_for_manifests_and_not_empty() {
        let args = parse(&["-f", "slos/", "--slo-uid", "a1"]).unwrap();
        assert_eq!(args.slo_uid.as_deref(), Some("a1"));
        let cluster = parse(&["--slo-uid", "a1"]).unwrap_err();
        assert!(cluster.contains("--filename"), "{cluster}");
        let empty = parse(&["-f", "slos/", "--slo-uid", " "]).unwrap_err();
        assert!(empty.contains("metadata.uid"), "{empty}");
    }

    #[test]
    fn several_fresh_uids_name_the_flag_and_the_wait() {
        let text = several("shop/checkout", &["a".into(), "b".into()]);
        assert!(
            text.starts_with(
                "shop/checkout: 2 SLOs named shop/checkout have fresh series (uids a, b): \
                 the SLO was deleted and created again; pass --slo-uid"
            ),
            "{text}"
        );
        assert!(text.contains("older than 10m; not deciding"), "{text}");
    }

    fn now() -> Timestamp {
        "2026-03-02T12:00:00Z".parse().unwrap()
    }

    fn checkout() -> Slo {
        crate::model::Slo {
            uid: None,
            ..match manifests::decode(&serde_json::json!({
                "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
                "metadata": {"name": "checkout", "namespace": "shop"},
                "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                         "indicator": {"ratio": {"errors": "e{code=\"500\"}", "total": "e"}}},
            })) {
                Decoded::Valid(v) => v.1,
                other => panic!("{other:?}"),
            }
        }
    }

    /// The hint for `slo` read with `uid` (from `from`) among these readings.
    fn hint_for(readings: &Readings, uid: Option<&str>, from: UidFrom) -> String {
        let mut slo = checkout();
        slo.uid = uid.map(str::to_string);
        let claimants = owner::claimants(&slo, "shop", readings);
        let judgement = evaluator::judge(&slo, "shop", &Ok(readings.clone()), now());
        let e = judgement.verdict.clone().unwrap_err();
        format!(
            "{e}{}",
            hint(&slo, &from, &e, &judgement, &claimants, now())
        )
    }

    fn written(minutes: i64) -> Reading {
        Reading {
            window_error_ratio: Some(0.0001),
            ..Reading::default()
        }
        .written_at(now() - SignedDuration::from_mins(minutes))
    }

    #[test]
    fn a_given_uid_without_series_names_the_fresh_one() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("new"), written(1));
        let text = hint_for(&r, Some("old"), UidFrom::Given);
        assert!(
            text.starts_with("no recorded series for this SLO"),
            "{text}"
        );
        assert!(
            text.contains("read the series of slo_uid old, but those of slo_uid new are fresh"),
            "{text}"
        );
        assert!(text.contains("pass --slo-uid new"), "{text}");
    }

    #[test]
    fn stale_series_found_by_name_say_whose_they_are() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("gone"), written(25));
        let text = hint_for(&r, Some("gone"), UidFrom::Series);
        assert!(
            text.starts_with("the newest recorded sample is 25m old"),
            "{text}"
        );
        assert!(
            text.contains("fresher than 10m; these are the newest, of slo_uid gone"),
            "{text}"
        );
        // The cluster's SLO: the same message as ever, nothing added.
        let text = hint_for(&r, Some("gone"), UidFrom::Cluster);
        assert_eq!(
            text,
            "the newest recorded sample is 25m old; the rules look stalled"
        );
    }

    #[test]
    fn series_of_another_service_are_named_when_nothing_is_read() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "payments", Some("u"), written(1));
        for from in [UidFrom::Series, UidFrom::Cluster] {
            let text = hint_for(&r, None, from);
            assert!(
                text.contains(
                    "1 series name it but not as its rules would write them, such as \
                     {slo_service=\"payments\", slo_uid=\"u\"}"
                ),
                "{text}"
            );
        }
    }
}
