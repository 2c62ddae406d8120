//! The scale benchmark's tables: the figures per size, then the targets of issue 12.

use crate::audit::Stats;
use crate::{MAX_IN_FLIGHT, Row};

fn gets(stats: &Stats) -> u64 {
    stats.verb("get")
}

fn per_round(value: u64, row: &Row) -> f64 {
    value as f64 / (row.slos as f64 * row.quiet_rounds.max(1.0))
}

/// The UI's pages per size: bytes, median and slowest of five loads.
fn print_ui(rows: &[Row]) {
    println!("\nThe web UI of the running operator (5 loads each; median / slowest):\n");
    println!("| page | SLOs | bytes | median | slowest |\n| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        for page in &row.ui {
            println!(
                "| `{}` | {} | {} | {:.0} ms | {:.0} ms |",
                page.path, row.slos, page.bytes, page.median_ms, page.max_ms
            );
        }
    }
}

pub fn print(rows: &[Row], qps: &str, interval: &str) {
    print_ui(rows);
    let servers: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
    println!(
        "\n`plimsoll run`, release build, --evaluation-interval={interval}s, --api-max-in-flight={MAX_IN_FLIGHT}, --api-qps={qps}; \
         against kube-apiserver {} (etcd, controller-manager, scheduler; default flags: APF on); the chart's \
         environment, RBAC and ServiceAccount token; requests from the audit log\n",
        servers.join(", ")
    );
    let column = |title: &str, f: &dyn Fn(&Row) -> String| {
        let cells: Vec<String> = rows.iter().map(f).collect();
        println!("| {title} | {} |", cells.join(" | "));
    };
    let sizes: Vec<String> = rows.iter().map(|r| format!("{} SLOs", r.slos)).collect();
    println!(
        "| | {} |\n| --- |{}",
        sizes.join(" | "),
        " ---: |".repeat(rows.len())
    );
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    column("control plane started / SLOs created (admin) in", &|r| {
        format!("{:.1} / {:.1} s", r.plane_started, r.seeded_in)
    });
    column("ready (/readyz 200) after start", &|r| {
        format!("{:.1} s", r.ready)
    });
    column("every SLO has its PrometheusRule", &|r| {
        format!("{:.1} s", r.all_rules)
    });
    column("settled (no write for a round)", &|r| {
        format!("{:.1} s", r.settled_at)
    });
    column("RSS at ready", &|r| format!("{:.1} MiB", r.rss_ready));
    column("RSS settled", &|r| format!("{:.1} MiB", r.rss_settled));
    column("RSS after 10+ rounds", &|r| {
        format!("{:.1} MiB", r.rss_rounds)
    });
    column("RSS after churn", &|r| format!("{:.1} MiB", r.rss_churn));
    column("peak RSS (VmHWM)", &|r| format!("{:.1} MiB", r.hwm));
    column("kube-apiserver RSS at the end / peak", &|r| {
        format!("{:.0} / {:.0} MiB", r.apiserver_rss.0, r.apiserver_rss.1)
    });
    column("etcd RSS at the end / peak", &|r| {
        format!("{:.0} / {:.0} MiB", r.etcd_rss.0, r.etcd_rss.1)
    });
    column("startup: requests (writes)", &|r| {
        format!("{} ({})", r.startup.total, r.startup.writes)
    });
    column("startup: peak in flight / per s", &|r| {
        format!("{} / {}", r.startup.peak_in_flight, r.startup.peak_rps)
    });
    column("startup: answer time median / p99 / slowest", &|r| {
        let (median, p99, max) = r.startup.latency;
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            median * 1e3,
            p99 * 1e3,
            max * 1e3
        )
    });
    column(
        "startup: answered 429 / longest APF queue wait (of answers > 500 ms)",
        &|r| format!("{} / {:.3} s", r.startup.throttled, r.startup.max_queued),
    );
    column(
        "Lease requests (leader election): startup / settled",
        &|r| format!("{} / {}", r.startup.leases, r.quiet.leases),
    );
    column("settled: rounds measured", &|r| {
        format!("{}", r.quiet_rounds)
    });
    column("settled: requests / SLO / round", &|r| {
        format!("{:.4}", per_round(r.quiet.total, r))
    });
    column("settled: GETs / SLO / round", &|r| {
        format!("{:.4}", per_round(gets(&r.quiet), r))
    });
    column("settled: writes / round", &|r| {
        format!("{:.1}", r.quiet.writes as f64 / r.quiet_rounds.max(1.0))
    });
    column("settled: reconciles / round", &|r| {
        format!("{:.1}", r.quiet_reconciles / r.quiet_rounds.max(1.0))
    });
    column("settled: peak in flight / per s", &|r| {
        format!("{} / {}", r.quiet.peak_in_flight, r.quiet.peak_rps)
    });
    let spans = |v: &[(f64, f64)]| v.iter().map(|r| r.0).collect::<Vec<f64>>();
    let prometheus = |v: &[(f64, f64)]| v.iter().map(|r| r.1).collect::<Vec<f64>>();
    column("budget read, settled: median / max", &|r| {
        let s = spans(&r.reads_settled);
        format!("{:.2} / {:.2} s", median(&s), max(&s))
    });
    column("budget read, settled: Prometheus' part (median)", &|r| {
        format!("{:.2} s", median(&prometheus(&r.reads_settled)))
    });
    column("budget read, startup: max", &|r| {
        format!("{:.2} s", max(&spans(&r.reads_startup)))
    });
    column("churn: SLOs changed (create+edit+delete)", &|r| {
        format!("{}", r.churn_ops)
    });
    column("churn: requests (writes)", &|r| {
        format!("{} ({})", r.churn.total, r.churn.writes)
    });
    column("churn: peak in flight / per s", &|r| {
        format!("{} / {}", r.churn.peak_in_flight, r.churn.peak_rps)
    });
    column("answered 429: settled / churn", &|r| {
        format!("{} / {}", r.quiet.throttled, r.churn.throttled)
    });
    column("reconcile errors", &|r| format!("{}", r.errors + 0.0));
    column("stopped on SIGTERM in", &|r| {
        r.stopped
            .map_or("no".into(), |d| format!("{:.1} s", d.as_secs_f64()))
    });

    for r in rows {
        let mut by: Vec<String> = r
            .startup
            .requests
            .iter()
            .map(|((verb, plural, sub), n)| {
                let sub = if sub.is_empty() {
                    String::new()
                } else {
                    format!("/{sub}")
                };
                format!("{verb} {plural}{sub}: {n}")
            })
            .collect();
        by.sort();
        println!("\nstartup requests, {} SLOs: {}", r.slos, by.join(", "));
    }
    println!("\n| target | SLOs | measured | |\n| --- | ---: | ---: | --- |");
    for r in rows {
        let target = |what: &str, ok: bool, measured: String| {
            println!(
                "| {what} | {} | {measured} | {} |",
                r.slos,
                if ok { "pass" } else { "FAIL" }
            );
        };
        target(
            "RSS settled < 100 MiB",
            r.rss_settled < 100.0,
            format!("{:.1} MiB", r.rss_settled),
        );
        target(
            "RSS after 10 rounds < 100 MiB",
            r.rss_rounds < 100.0,
            format!("{:.1} MiB", r.rss_rounds),
        );
        let growth = r.rss_churn - r.rss_rounds;
        target(
            "no growth with churn (< 10%)",
            growth < r.rss_rounds * 0.1,
            format!("{growth:+.1} MiB"),
        );
        target("ready < 10 s", r.ready < 10.0, format!("{:.1} s", r.ready));
        let peak = [&r.startup, &r.quiet, &r.churn]
            .iter()
            .map(|s| s.peak_in_flight)
            .max()
            .unwrap_or(0);
        target(
            "never refused (RBAC, 401/403)",
            r.refused.is_empty(),
            format!("{}", r.refused.len()),
        );
        target(
            "in flight <= --api-max-in-flight",
            peak <= MAX_IN_FLIGHT,
            format!("{peak}"),
        );
        target(
            "settled: 0 writes",
            r.quiet.writes == 0,
            format!("{}", r.quiet.writes),
        );
        target(
            "settled: GETs <= 1 / SLO / resync",
            per_round(gets(&r.quiet), r) <= 1.0,
            format!("{}", gets(&r.quiet)),
        );
        let round = max(&spans(&r.reads_settled)).max(max(&spans(&r.reads_startup)));
        target("budget read < 5 s", round < 5.0, format!("{round:.2} s"));
    }
}
