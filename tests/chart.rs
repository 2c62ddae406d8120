//! The Helm chart through Helm's own engine (tests/support/helm.py, PyPI helm-python-sdk): lint,
//! renders with default and non-default values, every object parsed as the kind it claims, the
//! RBAC equal to src/access.rs, the operator's configuration parsed as `plimsoll run` arguments
//! (with the flags' defaults, and refused where the flags refuse it), bad values refused with
//! clear messages, the webhook's safety settings, and deploy/ kept equal to the default render.

#[path = "support/helm.rs"]
mod helm;
#[path = "support/kinds.rs"]
mod kinds;

use std::collections::BTreeSet;

use clap::{CommandFactory, Parser};
use helm::{NAMESPACE, Rendered, documents, render, render_as, repo};
use plimsoll::access::{ACCESS, Features, Name, Scope};
use plimsoll::cli::{Cli, Command};
use plimsoll::prometheus::ReadingScope;
use plimsoll::rules::names;
use serde_json::{Value, json};

/// The configurations the tests render, with what the operator may do in each.
struct Case {
    name: &'static str,
    values: Value,
    features: Features,
    watched: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let all = Features {
        rollback_actions: true,
        webhook_certificate: false,
    };
    vec![
        Case {
            name: "defaults",
            values: json!({}),
            features: all,
            watched: &[],
        },
        Case {
            name: "webhook with its own certificate and the deploy freeze",
            values: json!({"webhook": {"enabled": true, "deployFreeze": true}}),
            features: Features {
                webhook_certificate: true,
                ..all
            },
            watched: &[],
        },
        Case {
            name: "webhook with cert-manager",
            values: json!({"webhook": {"enabled": true, "certManager": {"enabled": true}}}),
            features: all,
            watched: &[],
        },
        Case {
            name: "namespaced, including the release namespace",
            values: json!({"watchNamespaces": ["shop", "payments", NAMESPACE]}),
            features: all,
            watched: &["shop", "payments", NAMESPACE],
        },
        Case {
            name: "rollback actions off",
            values: json!({"rollback": {"actions": {"enabled": false}}}),
            features: Features {
                rollback_actions: false,
                ..all
            },
            watched: &[],
        },
        Case {
            name: "namespaced, webhook, actions off, everything optional on",
            values: json!({
                "watchNamespaces": ["shop"],
                "selector": "team=shop",
                "ruleLabels": {"release": "kube-prometheus-stack", "team": "sre"},
                "webhook": {"enabled": true, "deployFreeze": true},
                "prometheus": {"url": "https://prometheus.monitoring:9090", "timeout": "5s",
                               "analysisUrl": "http://prometheus.monitoring:9090",
                               "evaluationInterval": "30s",
                               "readingSelector": r#"cluster="eu-1", tenant=~"shop|pay""#,
                               "bearerToken": {"secretName": "prometheus-token"},
                               "tlsCA": {"configMapName": "prometheus-ca", "key": "ca.pem"},
                               "tenant": "shop", "partialResponse": false,
                               "headers": [{"name": "X-Team", "value": "sre"},
                                           {"name": "X-Api-Key", "secretName": "gateway"}]},
                "partialResponseStrategy": "warn",
                "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "kps"}}},
                "dashboards": {"enabled": true},
                "ui": {"externalUrl": "https://slo.example.com",
                       "ingress": {"enabled": true, "host": "slo.example.com", "className": "nginx",
                                   "tlsSecretName": "slo-tls",
                                   "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://auth"}}},
                "log": {"format": "text", "level": "debug"},
                "resync": "30m",
                "concurrency": 32,
                "apiClient": {"maxInFlight": 0, "qps": 2.5, "burst": 1000},
                "rollback": {"actions": {"enabled": false}, "requireTargetOptIn": true},
            }),
            features: Features {
                rollback_actions: false,
                webhook_certificate: true,
            },
            watched: &["shop"],
        },
    ]
}

#[test]
fn lint_is_clean_for_every_configuration() {
    for case in cases() {
        let report = helm::lint(&case.values);
        assert_eq!(report["total_charts_linted"], 1);
        let problems: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap() >= 2)
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", case.name);
    }
}

#[test]
fn every_rendered_object_parses_as_the_kind_it_claims() {
    for case in cases() {
        let rendered = render(&case.values);
        assert!(!rendered.objects.is_empty());
        assert_eq!(
            kinds::check_all(&rendered.objects),
            Vec::<String>::new(),
            "{}",
            case.name
        );
    }
    let cert_manager_issuer = json!({"webhook": {"enabled": true, "certManager": {"enabled": true,
        "issuerRef": {"name": "company-ca", "kind": "ClusterIssuer"}}}});
    let rendered = render(&cert_manager_issuer);
    assert_eq!(kinds::check_all(&rendered.objects), Vec::<String>::new());
}

#[test]
fn the_kind_check_finds_a_misspelt_field() {
    let mut deployment = render(&json!({})).deployment().clone();
    assert!(kinds::check(&deployment).is_ok());
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] =
        json!(true);
    let problem = kinds::check(&deployment).unwrap_err();
    assert!(
        problem.contains("securityContext.readOnlyRootFileSystem: unknown field"),
        "{problem}"
    );
    let mut service = render(&json!({})).get("Service", "plimsoll").clone();
    service["kind"] = json!("Servce");
    assert!(kinds::check(&service).is_err());
}

#[test]
fn the_default_render_is_these_objects() {
    let rendered = render(&json!({}));
    assert_eq!(
        rendered.inventory(),
        [
            "PodDisruptionBudget/plimsoll/plimsoll",
            "ServiceAccount/plimsoll/plimsoll",
            "ClusterRole/plimsoll",
            "ClusterRoleBinding/plimsoll",
            "Role/plimsoll/plimsoll-leader-election",
            "RoleBinding/plimsoll/plimsoll-leader-election",
            "Service/plimsoll/plimsoll",
            "Deployment/plimsoll/plimsoll",
        ]
    );
    let deployment = rendered.deployment();
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "plimsoll");
    let anti =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        anti["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti["podAffinityTerm"]["labelSelector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["run"]));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        container["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        rendered.env_value("PLIMSOLL_LEADER_ELECTION").as_deref(),
        Some("true")
    );
    assert_eq!(
        rendered.env_value("PLIMSOLL_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );
    let downward = |name: &str| {
        rendered
            .env()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v["fieldRef"]["fieldPath"].clone())
    };
    assert_eq!(downward("POD_NAME"), Some(json!("metadata.name")));
    assert_eq!(downward("POD_NAMESPACE"), Some(json!("metadata.namespace")));
    let pdb = rendered.get("PodDisruptionBudget", "plimsoll");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    let service = rendered.get("Service", "plimsoll");
    assert_eq!(service["spec"]["selector"], spec["selector"]["matchLabels"]);
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    assert!(
        rendered.notes.contains("set prometheus.url"),
        "{}",
        rendered.notes
    );
    assert!(
        rendered.notes.contains("kubectl apply --server-side -f"),
        "{}",
        rendered.notes
    );
}

/// (where, group, resource, verb, object name or `*`): where is `cluster` or a namespace.
type Grant = (String, String, String, String, String);

/// What the rendered Roles and ClusterRoles grant the operator's ServiceAccount, where.
fn granted(rendered: &Rendered, release_namespace: &str) -> BTreeSet<Grant> {
    let accounts = rendered.of_kind("ServiceAccount");
    assert_eq!(accounts.len(), 1);
    let account = accounts[0];
    let subject = json!([{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                          "namespace": release_namespace}]);
    let mut used = BTreeSet::new();
    let mut grants = BTreeSet::new();
    for binding in rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        assert_eq!(binding["subjects"], subject, "{binding}");
        let role_ref = &binding["roleRef"];
        let binding_ns = binding["metadata"]["namespace"].as_str();
        let role_ns = if role_ref["kind"] == "Role" {
            binding_ns
        } else {
            None
        };
        let role = rendered
            .objects
            .iter()
            .find(|o| {
                o["kind"] == role_ref["kind"]
                    && o["metadata"]["name"] == role_ref["name"]
                    && o["metadata"]["namespace"].as_str() == role_ns
            })
            .unwrap_or_else(|| panic!("{binding}: its role is not in the chart"));
        used.insert((
            role["kind"].to_string(),
            role_ns.map(str::to_string),
            role_ref["name"].to_string(),
        ));
        let place = binding_ns.unwrap_or("cluster").to_string();
        for rule in role["rules"].as_array().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            let names = match list("resourceNames") {
                n if n.is_empty() => vec!["*".to_string()],
                n => n,
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        for name in &names {
                            assert!(
                                ![&group, &resource, &verb].contains(&&"*".to_string()),
                                "wildcards grant more than the code uses: {rule}"
                            );
                            grants.insert((
                                place.clone(),
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
    for role in rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        let key = (
            role["kind"].to_string(),
            role["metadata"]["namespace"].as_str().map(str::to_string),
            role["metadata"]["name"].to_string(),
        );
        assert!(used.contains(&key), "{key:?} is bound to nobody");
    }
    grants
}

/// What src/access.rs says the operator needs in this configuration.
fn needed(
    features: Features,
    watched: &[&str],
    release_namespace: &str,
    names: impl Fn(Name) -> String,
) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for access in ACCESS.iter().filter(|a| a.when.applies(features)) {
        let places: Vec<String> = match access.scope {
            Scope::Cluster => vec!["cluster".into()],
            Scope::Own => vec![release_namespace.into()],
            Scope::Watched if watched.is_empty() => vec!["cluster".into()],
            Scope::Watched => watched.iter().map(|w| w.to_string()).collect(),
        };
        let name = match access.name {
            Name::Any => "*".to_string(),
            other => names(other),
        };
        for place in places {
            for verb in access.verbs {
                out.insert((
                    place.clone(),
                    access.group.to_string(),
                    access.resource.to_string(),
                    verb.to_string(),
                    name.clone(),
                ));
            }
        }
    }
    out
}

/// The object names the operator is told to use, from its environment.
fn configured_names(rendered: &Rendered) -> impl Fn(Name) -> String + '_ {
    move |name| {
        let env = match name {
            Name::Lease => "PLIMSOLL_LEASE_NAME",
            Name::WebhookSecret => "PLIMSOLL_WEBHOOK_SECRET",
            Name::WebhookConfiguration => "PLIMSOLL_WEBHOOK_CONFIGURATION",
            Name::Any => return "*".into(),
        };
        rendered
            .env_value(env)
            .unwrap_or_else(|| panic!("{env} is not set, but the RBAC names it"))
    }
}

#[test]
fn rbac_grants_exactly_the_calls_in_src_access_rs() {
    for case in cases() {
        let rendered = render(&case.values);
        let granted = granted(&rendered, NAMESPACE);
        let needed = needed(
            case.features,
            case.watched,
            NAMESPACE,
            configured_names(&rendered),
        );
        let extra: Vec<&Grant> = granted.difference(&needed).collect();
        let missing: Vec<&Grant> = needed.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{}:\n granted but not in src/access.rs: {extra:#?}\n in src/access.rs but not granted: {missing:#?}",
            case.name
        );
    }
}

#[test]
fn rbac_follows_the_release_name_and_namespace() {
    let rendered = render_as("slo", "monitoring", &json!({"webhook": {"enabled": true}}));
    assert_eq!(
        rendered.env_value("PLIMSOLL_LEASE_NAME").as_deref(),
        Some("slo-plimsoll-leader")
    );
    let account = rendered.of_kind("ServiceAccount")[0]["metadata"]["name"].clone();
    assert_eq!(account, "slo-plimsoll");
    let features = Features {
        rollback_actions: true,
        webhook_certificate: true,
    };
    assert_eq!(
        granted(&rendered, "monitoring"),
        needed(features, &[], "monitoring", configured_names(&rendered))
    );
}

#[test]
fn namespaced_mode_grants_nothing_cluster_wide() {
    let rendered = render(&json!({"watchNamespaces": ["shop", "payments"]}));
    assert!(rendered.of_kind("ClusterRole").is_empty());
    assert!(rendered.of_kind("ClusterRoleBinding").is_empty());
    assert_eq!(
        rendered.env_value("PLIMSOLL_NAMESPACES").as_deref(),
        Some("shop,payments")
    );
    let places: BTreeSet<String> = granted(&rendered, NAMESPACE)
        .into_iter()
        .map(|g| g.0)
        .collect();
    assert_eq!(
        places,
        BTreeSet::from(["payments".into(), NAMESPACE.into(), "shop".into()])
    );
}

#[test]
fn rollback_actions_off_grants_nothing_on_workloads() {
    let rendered = render(&json!({"rollback": {"actions": {"enabled": false}}}));
    let workloads = [
        "deployments",
        "statefulsets",
        "daemonsets",
        "rollouts",
        "rollouts/status",
    ];
    let on_workloads: Vec<Grant> = granted(&rendered, NAMESPACE)
        .into_iter()
        .filter(|g| workloads.contains(&g.2.as_str()))
        .collect();
    assert_eq!(on_workloads, []);
    assert_eq!(
        rendered.env_value("PLIMSOLL_ROLLBACK_ACTIONS").as_deref(),
        Some("false")
    );
    let on = render(&json!({}));
    assert!(
        granted(&on, NAMESPACE)
            .iter()
            .any(|g| g.2 == "deployments" && g.3 == "patch")
    );
}

/// The webhook's settings (`plimsoll run --webhook-*`, `--deploy-freeze`).
const WEBHOOK_ENV: [&str; 6] = [
    "PLIMSOLL_WEBHOOK_LISTEN",
    "PLIMSOLL_WEBHOOK_CERT_DIR",
    "PLIMSOLL_WEBHOOK_SECRET",
    "PLIMSOLL_WEBHOOK_SERVICE",
    "PLIMSOLL_WEBHOOK_CONFIGURATION",
    "PLIMSOLL_DEPLOY_FREEZE",
];

/// The Deployment's environment as `plimsoll run` flags (a value from a Secret or the downward
/// API stands in as a placeholder), parsed by the operator's own command line.
fn run_args(rendered: &Rendered) -> plimsoll::cli::run::Args {
    let argv = run_argv(rendered);
    parse_run(&argv).unwrap_or_else(|e| panic!("{argv:?}:\n{e}"))
}

/// `plimsoll run` with these arguments, as the operator parses them.
fn parse_run(argv: &[String]) -> Result<plimsoll::cli::run::Args, clap::Error> {
    match Cli::try_parse_from(argv)? {
        Cli {
            command: Command::Run(args),
        } => Ok(*args),
        _ => unreachable!(),
    }
}

/// The container's arguments, then its environment as flags, as the argument vector of
/// `plimsoll run`. A flag among the arguments wins over its environment variable, as in clap.
fn run_argv(rendered: &Rendered) -> Vec<String> {
    let command = Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let container = &rendered.deployment()["spec"]["template"]["spec"]["containers"][0];
    let mut argv = vec!["plimsoll".to_string()];
    argv.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    assert_eq!(argv[1], "run", "{argv:?}");
    let given = argv.clone();
    for (name, value) in rendered.env() {
        let arg = run
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .unwrap_or_else(|| panic!("{name} is not an environment variable of `plimsoll run`"));
        let long = format!("--{}", arg.get_long().unwrap());
        if given
            .iter()
            .any(|a| *a == long || a.starts_with(&format!("{long}=")))
        {
            continue;
        }
        let value = match value {
            Value::String(s) => s,
            from => {
                assert!(
                    from["secretKeyRef"].is_object() || from["fieldRef"].is_object(),
                    "{from}"
                );
                "from-the-cluster".to_string()
            }
        };
        argv.push(format!("{long}={value}"));
    }
    argv
}

#[test]
fn the_operator_configuration_parses_as_plimsoll_run_arguments() {
    for case in cases() {
        run_args(&render(&case.values));
    }
    let everything = &cases()[5];
    let args = run_args(&render(&everything.values));
    assert_eq!(args.namespaces, ["shop"]);
    assert_eq!(args.selector.as_deref(), Some("team=shop"));
    assert_eq!(
        args.rule_labels,
        [
            ("release".into(), "kube-prometheus-stack".into()),
            ("team".into(), "sre".into())
        ]
    );
    assert!(!args.rollback_actions);
    assert_eq!(args.resync, std::time::Duration::from_secs(1800));
    assert_eq!(args.evaluation_interval, std::time::Duration::from_secs(30));
    assert_eq!(
        args.prometheus.prometheus_url.as_deref(),
        Some("https://prometheus.monitoring:9090")
    );
    assert_eq!(
        args.analysis_prometheus_url.as_deref(),
        Some("http://prometheus.monitoring:9090")
    );
    assert_eq!(args.webhook_listen, Some("0.0.0.0:9443".parse().unwrap()));
    assert_eq!(args.webhook_secret.as_deref(), Some("plimsoll-webhook-tls"));
    assert_eq!(args.webhook_service.as_deref(), Some("plimsoll"));
    assert_eq!(args.webhook_configuration.as_deref(), Some("plimsoll"));
    assert!(args.deploy_freeze);
    assert_eq!(args.concurrency, 32);
    assert_eq!(
        (args.api_max_in_flight, args.api_qps, args.api_burst),
        (0, 2.5, 1000)
    );
    assert_eq!(
        args.reading_selector,
        ReadingScope::parse(r#"cluster="eu-1",tenant=~"shop|pay""#).unwrap()
    );
    assert!(args.require_target_opt_in);
    let cert_manager = run_args(&render(
        &json!({"webhook": {"enabled": true, "certManager": {"enabled": true}}}),
    ));
    assert_eq!(
        cert_manager.webhook_cert_dir,
        Some("/etc/plimsoll/webhook".into())
    );
    assert!(cert_manager.webhook_secret.is_none() && !cert_manager.deploy_freeze);
    let defaults = run_args(&render(&json!({})));
    assert!(defaults.leader_election && defaults.rollback_actions);
    assert_eq!(defaults.lease_name, "plimsoll-leader");
    assert_eq!(defaults.prometheus.prometheus_url, None);
    assert!(!defaults.require_target_opt_in);
}

/// `plimsoll run` without arguments or environment: the flags' own defaults.
fn run_defaults() -> plimsoll::cli::run::Args {
    parse_run(&["plimsoll".into(), "run".into()]).unwrap()
}

/// The chart sets the concurrency, the API client's limits and the target opt-in on every
/// render, so its defaults must be the flags' own: installing the chart changes nothing there.
#[test]
fn the_chart_defaults_are_plimsoll_runs_defaults() {
    let flags = run_defaults();
    for values in [
        json!({}),
        json!({"prometheus": {"url": "http://prometheus.monitoring:9090"}}),
    ] {
        let rendered = render(&values);
        for env in [
            "PLIMSOLL_CONCURRENCY",
            "PLIMSOLL_API_MAX_IN_FLIGHT",
            "PLIMSOLL_API_QPS",
            "PLIMSOLL_API_BURST",
            "PLIMSOLL_REQUIRE_TARGET_OPT_IN",
        ] {
            assert!(
                rendered.env_value(env).is_some(),
                "{values}: {env} is not set"
            );
        }
        assert!(
            rendered.env_value("PLIMSOLL_READING_SELECTOR").is_none(),
            "{values}: an empty selector is left out"
        );
        let chart = run_args(&rendered);
        assert_eq!(chart.concurrency, flags.concurrency, "{values}");
        assert_eq!(chart.api_max_in_flight, flags.api_max_in_flight, "{values}");
        assert_eq!(chart.api_qps, flags.api_qps, "{values}");
        assert_eq!(chart.api_burst, flags.api_burst, "{values}");
        assert_eq!(chart.reading_selector, flags.reading_selector, "{values}");
        assert!(chart.reading_selector.is_empty());
        assert_eq!(
            chart.require_target_opt_in, flags.require_target_opt_in,
            "{values}"
        );
        assert_eq!(chart.resync, flags.resync, "{values}");
        assert_eq!(chart.shutdown_timeout, flags.shutdown_timeout, "{values}");
        assert_eq!(
            chart.evaluation_interval, flags.evaluation_interval,
            "{values}"
        );
        assert_eq!(
            chart.prometheus.prometheus_timeout, flags.prometheus.prometheus_timeout,
            "{values}"
        );
    }
}

/// The render of these values, or `None` when Helm refuses them.
fn try_render(values: &Value) -> Option<Rendered> {
    let chart = helm::chart();
    let out = helm::helper(&[
        "render",
        chart.to_str().unwrap(),
        helm::RELEASE,
        NAMESPACE,
        &values.to_string(),
    ])
    .ok()?;
    let result: Value = serde_json::from_str(&out).unwrap();
    let manifest = result["manifest"].as_str().unwrap().to_string();
    Some(Rendered {
        objects: documents(&manifest),
        notes: result["notes"].as_str().unwrap_or_default().to_string(),
        manifest,
    })
}

/// The client limits `plimsoll run` builds from its arguments (src/cli/run.rs), checked as the
/// operator checks them at start.
fn limits_check(args: &plimsoll::cli::run::Args) -> Result<(), String> {
    plimsoll::kube_client::Limits {
        max_in_flight: args.api_max_in_flight,
        qps: args.api_qps,
        burst: args.api_burst,
        ..plimsoll::kube_client::Limits::default()
    }
    .validate()
    .map_err(|e| e.to_string())
}

/// The chart takes exactly the concurrency and API limits that `plimsoll run` starts with: at
/// each edge of a range, the schema (or a template check) and the operator agree, and what the
/// chart takes parses to the same numbers as the flags themselves.
#[test]
fn the_chart_takes_exactly_the_limits_plimsoll_run_takes() {
    let cases: [(Value, &[&str], bool); 16] = [
        (json!({"concurrency": 0}), &["--concurrency=0"], false),
        (json!({"concurrency": 1}), &["--concurrency=1"], true),
        (json!({"concurrency": 256}), &["--concurrency=256"], true),
        (json!({"concurrency": 257}), &["--concurrency=257"], false),
        (
            json!({"apiClient": {"maxInFlight": -1}}),
            &["--api-max-in-flight=-1"],
            false,
        ),
        (
            json!({"apiClient": {"maxInFlight": 0}}),
            &["--api-max-in-flight=0"],
            true,
        ),
        (
            json!({"apiClient": {"maxInFlight": 100000}}),
            &["--api-max-in-flight=100000"],
            true,
        ),
        (json!({"apiClient": {"qps": -1}}), &["--api-qps=-1"], false),
        (
            json!({"apiClient": {"qps": 0.25}}),
            &["--api-qps=0.25"],
            true,
        ),
        (
            json!({"apiClient": {"qps": 1000000}}),
            &["--api-qps=1000000"],
            true,
        ),
        (
            json!({"apiClient": {"qps": 0, "burst": 0}}),
            &["--api-qps=0", "--api-burst=0"],
            true,
        ),
        (
            json!({"apiClient": {"qps": 0.5, "burst": 0}}),
            &["--api-qps=0.5", "--api-burst=0"],
            false,
        ),
        (
            json!({"apiClient": {"qps": 0.5, "burst": 1}}),
            &["--api-qps=0.5", "--api-burst=1"],
            true,
        ),
        (
            json!({"apiClient": {"burst": 4294967295u64}}),
            &["--api-burst=4294967295"],
            true,
        ),
        (
            json!({"apiClient": {"burst": 4294967296u64}}),
            &["--api-burst=4294967296"],
            false,
        ),
        (
            json!({"apiClient": {"burst": 2.5}}),
            &["--api-burst=2.5"],
            false,
        ),
    ];
    for (values, flags, taken) in cases {
        let argv: Vec<String> = ["plimsoll", "run"]
            .iter()
            .chain(flags)
            .map(|a| a.to_string())
            .collect();
        let operator = parse_run(&argv)
            .map_err(|e| e.to_string())
            .and_then(|args| limits_check(&args).map(|()| args));
        let chart = try_render(&values);
        assert_eq!(
            operator.is_ok(),
            taken,
            "plimsoll run {flags:?}: {:?}",
            operator.as_ref().err()
        );
        assert_eq!(
            chart.is_some(),
            taken,
            "the chart with {values}: {}",
            chart
                .as_ref()
                .map_or_else(|| helm::refusal(&values), |_| "taken".into())
        );
        if let (Some(rendered), Ok(flags)) = (chart, operator) {
            let chart = run_args(&rendered);
            limits_check(&chart).unwrap();
            assert_eq!(chart.concurrency, flags.concurrency, "{values}");
            assert_eq!(chart.api_max_in_flight, flags.api_max_in_flight, "{values}");
            assert_eq!(chart.api_qps, flags.api_qps, "{values}");
            assert_eq!(chart.api_burst, flags.api_burst, "{values}");
        }
    }
}

/// `prometheus.readingSelector` is taken by the chart when `plimsoll run --reading-selector`
/// takes it (save quoted label names), refused when it refuses it, with the labels the operator
/// keeps for its own series named from src/, and reaches the operator unchanged.
#[test]
fn the_chart_takes_the_reading_selectors_plimsoll_run_takes() {
    // (selector, taken by `plimsoll run`, taken by the chart)
    let mut cases: Vec<(String, bool, bool)> = [
        ("", true, true),
        (r#"cluster="a""#, true, true),
        (r#"{cluster="a"}"#, true, true),
        (r#" cluster = "a" , tenant =~ "t1|t2" "#, true, true),
        (r#"cluster!="b",region!~"eu-.*""#, true, true),
        (r#"cluster='a'"#, true, true),
        ("cluster=`a`", true, true),
        (r#"cluster="a\"b""#, true, true),
        (r#"cluster="ä""#, true, true),
        (r#"cluster="a","#, true, true),
        ("{}", true, true),
        (r#"myslo="a""#, true, true),
        ("cluster=a", false, false),
        ("cluster", false, false),
        (r#""a""#, false, false),
        // Quoted label names (Prometheus 3): the operator takes a plain name in quotes and
        // refuses any other; the chart asks for plain names only.
        (r#""cluster"="a""#, true, false),
        (r#""k8s.cluster"="a""#, false, false),
        (r#"cluster="a"b""#, false, false),
        (r#"up{cluster="a"}"#, false, false),
        (r#"cluster="a" tenant="b""#, false, false),
        (r#"cluster="a" or tenant="b""#, false, false),
        (r#"cluster=="a""#, false, false),
        (r#"cluster="a"}{"#, false, false),
    ]
    .map(|(s, operator, chart)| (s.to_string(), operator, chart))
    .into();
    for own in [
        names::LABEL_SLO,
        names::LABEL_NAMESPACE,
        names::LABEL_SERVICE,
        names::LABEL_UID,
        "__name__",
    ] {
        cases.push((format!(r#"{own}="x""#), false, false));
        cases.push((format!(r#"cluster="a", {own}!~"y""#), false, false));
    }
    for (selector, operator_takes, chart_takes) in cases {
        let values = json!({"prometheus": {"url": "http://prometheus:9090",
                                           "readingSelector": selector}});
        let flag = format!("--reading-selector={selector}");
        let operator = parse_run(&["plimsoll".into(), "run".into(), flag]);
        let chart = try_render(&values);
        assert_eq!(
            operator.is_ok(),
            operator_takes,
            "plimsoll run --reading-selector {selector:?}: {:?}",
            operator.as_ref().err().map(ToString::to_string)
        );
        assert_eq!(
            chart.is_some(),
            chart_takes,
            "the chart with readingSelector {selector:?}: {}",
            chart
                .as_ref()
                .map_or_else(|| helm::refusal(&values), |_| "taken".into())
        );
        if let (Some(rendered), Ok(flags)) = (chart, operator) {
            assert_eq!(
                rendered.env_value("PLIMSOLL_READING_SELECTOR").as_deref(),
                (!selector.is_empty()).then_some(selector.as_str())
            );
            assert_eq!(run_args(&rendered).reading_selector, flags.reading_selector);
        }
    }
    // Without Prometheus there are no readings to scope.
    let off = render(&json!({"prometheus": {"readingSelector": r#"cluster="a""#}}));
    assert!(off.env_value("PLIMSOLL_READING_SELECTOR").is_none());
}

/// A file the operator is told to read must be in a volume mounted from the named object.
fn mounted_from(rendered: &Rendered, file: &str) -> Value {
    let pod = &rendered.deployment()["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let mount = mounts
        .iter()
        .find(|m| file.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .unwrap_or_else(|| panic!("{file} is in no mounted volume"));
    assert_eq!(mount["readOnly"], true);
    let key = &file[mount["mountPath"].as_str().unwrap().len() + 1..];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap()
        .clone();
    let source = volume
        .get("secret")
        .or_else(|| volume.get("configMap"))
        .unwrap();
    assert!(
        source["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["path"] == key),
        "{file}: {volume}"
    );
    volume
}

#[test]
fn prometheus_credentials_reach_the_operator_as_files_and_secret_references() {
    let rendered = render(&json!({"prometheus": {
        "url": "https://prometheus:9090",
        "bearerToken": {"secretName": "prom-token", "key": "token"},
        "tlsCA": {"secretName": "prom-ca"}}}));
    let args = run_args(&rendered);
    let token = args.prometheus.prometheus_bearer_token_file.unwrap();
    let volume = mounted_from(&rendered, token.to_str().unwrap());
    assert_eq!(volume["secret"]["secretName"], "prom-token");
    let ca = args.prometheus.prometheus_ca_file.unwrap();
    assert_eq!(
        mounted_from(&rendered, ca.to_str().unwrap())["secret"]["secretName"],
        "prom-ca"
    );

    let rendered = render(&json!({"prometheus": {
        "url": "http://prometheus:9090",
        "basicAuth": {"username": "plimsoll", "passwordSecretName": "prom-basic"},
        "tlsCA": {"configMapName": "prom-ca", "key": "ca.pem"}}}));
    let args = run_args(&rendered);
    assert_eq!(args.prometheus.prometheus_user.as_deref(), Some("plimsoll"));
    let password = rendered
        .env()
        .into_iter()
        .find(|(n, _)| n == "PLIMSOLL_PROMETHEUS_PASSWORD")
        .unwrap()
        .1;
    assert_eq!(
        password["secretKeyRef"],
        json!({"name": "prom-basic", "key": "password"})
    );
    let ca = args.prometheus.prometheus_ca_file.unwrap();
    assert!(ca.ends_with("ca.pem"));
    assert_eq!(
        mounted_from(&rendered, ca.to_str().unwrap())["configMap"]["name"],
        "prom-ca"
    );
}

/// The tenant, Thanos' partial_response, the extra headers (inline, and from a Secret as a
/// mounted file read per query) and the rules' partial_response_strategy reach `plimsoll run`.
#[test]
fn distributed_store_settings_reach_the_operator() {
    let rendered = render(&json!({
        "partialResponseStrategy": "abort",
        "prometheus": {
        "url": "http://mimir-query-frontend.mimir:8080/prometheus",
        "tenant": "team-a",
        "partialResponse": false,
        "headers": [{"name": "X-Team", "value": "shop=a"},
                    {"name": "X-Api-Key", "secretName": "gateway", "key": "api-key"}]}}));
    let args = run_args(&rendered);
    assert_eq!(
        args.partial_response_strategy,
        Some(plimsoll::api::PartialResponseStrategy::Abort)
    );
    let extras = args.prometheus.store.extras().unwrap();
    assert_eq!(extras.tenant.unwrap().as_str(), "team-a");
    assert_eq!(extras.partial_response, Some(false));
    let [team, key] = &extras.headers[..] else {
        panic!("{:?}", extras.headers)
    };
    assert_eq!(team.name.as_str(), "x-team");
    assert!(
        matches!(&team.value, plimsoll::prometheus::request::HeaderValueSource::Inline(v) if v == "shop=a")
    );
    let plimsoll::prometheus::request::HeaderValueSource::File(file) = &key.value else {
        panic!("the Secret's header is not read from a file: {key:?}")
    };
    let volume = mounted_from(&rendered, file.to_str().unwrap());
    assert_eq!(volume["secret"]["secretName"], "gateway");
    // Not set: nothing of it reaches the operator.
    let args = run_args(&render(&json!({"prometheus": {"url": "http://p:9090"}})));
    assert_eq!(
        args.prometheus.store.extras().unwrap(),
        plimsoll::prometheus::Extras::default()
    );
    assert_eq!(args.partial_response_strategy, None);
}

#[test]
fn the_values_schema_refuses_bad_values_with_the_path_and_the_rule() {
    let cases = [
        (
            json!({"replicaCount": "two"}),
            "at '/replicaCount': got string, want integer",
        ),
        (
            json!({"replicaCount": 0}),
            "at '/replicaCount': minimum: got 0, want 1",
        ),
        (
            json!({"log": {"format": "yaml"}}),
            "at '/log/format': value must be one of 'text', 'json'",
        ),
        (
            json!({"webhook": {"enable": true}}),
            "at '/webhook': additional properties 'enable' not allowed",
        ),
        (
            json!({"prometheus": {"url": "prometheus:9090"}}),
            "at '/prometheus/url': 'prometheus:9090' does not match pattern",
        ),
        (
            json!({"resync": "1 hour"}),
            "at '/resync': '1 hour' does not match pattern",
        ),
        (
            json!({"ruleLabels": {"release": "a,b"}}),
            "at '/ruleLabels/release': 'a,b' does not match pattern",
        ),
        (
            json!({"watchNamespaces": ["Shop_1"]}),
            "at '/watchNamespaces/0': 'Shop_1' does not match pattern",
        ),
        (
            json!({"watchNamespaces": ["shop", "shop"]}),
            "at '/watchNamespaces': items at 0 and 1 are equal",
        ),
        (
            json!({"webhook": {"timeoutSeconds": 60}}),
            "at '/webhook/timeoutSeconds': maximum: got 60, want 30",
        ),
        (
            json!({"webhook": {"port": 443}}),
            "at '/webhook/port': minimum: got 443, want 1,024",
        ),
        (
            json!({"rollback": {"actions": {"enabled": "no"}}}),
            "at '/rollback/actions/enabled': got string, want boolean",
        ),
        (
            json!({"rollback": {"requireTargetOptIn": "yes"}}),
            "at '/rollback/requireTargetOptIn': got string, want boolean",
        ),
        (
            json!({"concurrency": 300}),
            "at '/concurrency': maximum: got 300, want 256",
        ),
        (
            json!({"concurrency": "8"}),
            "at '/concurrency': got string, want integer",
        ),
        (
            json!({"apiClient": {"qps": -5}}),
            "at '/apiClient/qps': minimum: got -5, want 0",
        ),
        (
            json!({"apiClient": {"maxInFlight": 1.5}}),
            "at '/apiClient/maxInFlight': got number, want integer",
        ),
        (
            json!({"apiClient": {"rate": 5}}),
            "at '/apiClient': additional properties 'rate' not allowed",
        ),
        (
            json!({"prometheus": {"readingSelector": "cluster=a"}}),
            "at '/prometheus/readingSelector': 'cluster=a' does not match pattern",
        ),
        (
            json!({"prometheus": {"tenant": "team a"}}),
            "at '/prometheus/tenant': 'team a' does not match pattern",
        ),
        (
            json!({"prometheus": {"tenant": "a|b"}}),
            "at '/prometheus/tenant': 'a|b' does not match pattern",
        ),
        (
            json!({"prometheus": {"partialResponse": "false"}}),
            "at '/prometheus/partialResponse': got string, want",
        ),
        (
            json!({"service": {"type": "External"}}),
            "at '/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'",
        ),
        (
            json!({"service": {"port": "8080"}}),
            "at '/service/port': got string, want integer",
        ),
        (
            json!({"service": {"port": 70000}}),
            "at '/service/port': maximum: got 70,000, want 65,535",
        ),
        (
            json!({"service": {"annotations": {"a": 1}}}),
            "at '/service/annotations/a': got number, want string",
        ),
        (
            json!({"extraEnv": [{"name": "A", "value": 30}]}),
            "at '/extraEnv/0/value': got number, want string",
        ),
        (
            json!({"extraEnv": [{"value": "x"}]}),
            "at '/extraEnv/0': missing property 'name'",
        ),
        (
            json!({"extraEnv": {"A": "b"}}),
            "at '/extraEnv': got object, want array",
        ),
        (
            json!({"extraArgs": "--concurrency=4"}),
            "at '/extraArgs': got string, want array",
        ),
        (
            json!({"extraArgs": [4]}),
            "at '/extraArgs/0': got number, want string",
        ),
        (
            json!({"securityContext": "restricted"}),
            "at '/securityContext': got string, want object",
        ),
        (
            json!({"podSecurityContext": []}),
            "at '/podSecurityContext': got array, want object",
        ),
        (
            json!({"prometheus": {"headers": [{"name": "X Team", "value": "a"}]}}),
            "at '/prometheus/headers/0/name': 'X Team' does not match pattern",
        ),
        (
            json!({"partialResponseStrategy": "Warn"}),
            "at '/partialResponseStrategy': value must be one of '', 'warn', 'abort'",
        ),
    ];
    for (values, expected) in cases {
        let refusal = helm::refusal(&values);
        assert!(
            refusal.contains("values don't meet the specifications of the schema"),
            "{values}: {refusal}"
        );
        assert!(
            refusal.contains(expected),
            "{values}:\n{refusal}\nwanted: {expected}"
        );
    }
}

#[test]
fn mistakes_across_values_are_refused_with_a_sentence() {
    let cases = [
        (
            json!({"webhook": {"deployFreeze": true}}),
            "webhook.deployFreeze needs webhook.enabled=true",
        ),
        (
            json!({"webhook": {"certManager": {"enabled": true}}}),
            "webhook.certManager.enabled needs webhook.enabled=true",
        ),
        (
            json!({"leaderElection": {"enabled": false}}),
            "replicaCount above 1 needs leaderElection.enabled=true",
        ),
        (
            json!({"replicas": 3}),
            "replicas is now replicaCount, the name Helm charts use",
        ),
        (
            json!({"ui": {"externalURL": "https://slo.example.com"}}),
            "ui.externalURL is now ui.externalUrl",
        ),
        (
            json!({"extraEnv": [{"name": "PLIMSOLL_LOG_LEVEL", "value": "debug"}]}),
            "extraEnv PLIMSOLL_LOG_LEVEL: the chart sets this variable itself",
        ),
        (
            json!({"prometheus": {"url": "http://p:9090"},
                   "extraEnv": [{"name": "PLIMSOLL_PROMETHEUS_TIMEOUT", "value": "5s"}]}),
            "extraEnv PLIMSOLL_PROMETHEUS_TIMEOUT: the chart sets this variable itself",
        ),
        (
            json!({"prometheus": {"url": "http://p:9090", "basicAuth": {"username": "u"}}}),
            "prometheus.basicAuth.username needs prometheus.basicAuth.passwordSecretName",
        ),
        (
            json!({"prometheus": {"tlsCA": {"secretName": "a", "configMapName": "b"}}}),
            "prometheus.tlsCA: set secretName or configMapName, not both",
        ),
        (
            json!({"apiClient": {"burst": 0}}),
            "apiClient.burst must be at least 1 while apiClient.qps is above 0",
        ),
        (
            json!({"prometheus": {"readingSelector": r#"cluster="a",slo_namespace="shop""#}}),
            "prometheus.readingSelector may not match the label slo_namespace: Plimsoll sets it",
        ),
        (
            json!({"prometheus": {"headers": [{"name": "X-A", "value": "v", "secretName": "s"}]}}),
            "prometheus.headers X-A: give value or secretName, not both",
        ),
        (
            json!({"prometheus": {"headers": [{"name": "X-A"}]}}),
            "prometheus.headers X-A: give value, or secretName (and key) for a Secret",
        ),
    ];
    for (values, expected) in cases {
        let refusal = helm::refusal(&values);
        assert!(refusal.contains(expected), "{values}:\n{refusal}");
    }
    // One replica without leader election is fine.
    render(&json!({"replicaCount": 1, "leaderElection": {"enabled": false}}));
    // A variable the chart sets only with a value is free while that value is unset.
    render(&json!({"extraEnv": [{"name": "PLIMSOLL_PROMETHEUS_TIMEOUT", "value": "5s"}]}));
}

fn webhooks(rendered: &Rendered) -> Vec<Value> {
    let configs = rendered.of_kind("ValidatingWebhookConfiguration");
    assert_eq!(configs.len(), 1);
    configs[0]["webhooks"].as_array().unwrap().clone()
}

#[test]
fn the_webhook_is_off_by_default_and_on_with_one_value() {
    let off = render(&json!({}));
    assert!(off.of_kind("ValidatingWebhookConfiguration").is_empty());
    assert!(off.env_value("PLIMSOLL_WEBHOOK_LISTEN").is_none());
    let on = render(&json!({"webhook": {"enabled": true}}));
    let hooks = webhooks(&on);
    assert_eq!(hooks.len(), 1, "the freeze is a second opt-in");
    assert_eq!(hooks[0]["clientConfig"]["service"]["path"], "/validate-slo");
    assert_eq!(
        hooks[0]["rules"],
        json!([{"apiGroups": ["plimsoll.dev"], "apiVersions": ["v1alpha1"],
                "resources": ["servicelevelobjectives"], "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced"}])
    );
    assert_eq!(
        on.env_value("PLIMSOLL_WEBHOOK_LISTEN").as_deref(),
        Some("0.0.0.0:9443")
    );
    assert_eq!(
        on.env_value("PLIMSOLL_DEPLOY_FREEZE").as_deref(),
        Some("false")
    );
    // Its own certificate, or cert-manager's.
    let webhook_env = |r: &Rendered| -> BTreeSet<String> {
        r.env()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.contains("WEBHOOK") || n.contains("FREEZE"))
            .collect()
    };
    let own: BTreeSet<String> = [0, 2, 3, 4, 5].map(|i| WEBHOOK_ENV[i].to_string()).into();
    assert_eq!(webhook_env(&on), own);
    let cert_manager =
        render(&json!({"webhook": {"enabled": true, "certManager": {"enabled": true}}}));
    let mounted: BTreeSet<String> = [0, 1, 5].map(|i| WEBHOOK_ENV[i].to_string()).into();
    assert_eq!(webhook_env(&cert_manager), mounted);
    assert!(webhook_env(&off).is_empty());
}

#[test]
fn the_webhook_can_never_block_the_cluster() {
    let rendered = render(&json!({"webhook": {"enabled": true, "deployFreeze": true}}));
    let hooks = webhooks(&rendered);
    assert_eq!(hooks.len(), 2);
    let service = rendered.get("Service", "plimsoll");
    let container = &rendered.deployment()["spec"]["template"]["spec"]["containers"][0];
    let webhook_port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webhook")
        .unwrap()
        .clone();
    assert_eq!(webhook_port["port"], 443);
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == webhook_port["targetPort"] && p["containerPort"] == 9443)
    );
    for hook in &hooks {
        assert_eq!(hook["failurePolicy"], "Ignore", "{hook}");
        assert!(hook["timeoutSeconds"].as_i64().unwrap() <= 10, "{hook}");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        let target = &hook["clientConfig"]["service"];
        assert_eq!(target["name"], service["metadata"]["name"]);
        assert_eq!(target["namespace"], NAMESPACE);
        assert_eq!(target["port"], webhook_port["port"]);
    }
    let freeze = &hooks[1];
    assert_eq!(freeze["clientConfig"]["service"]["path"], "/freeze");
    let resources: BTreeSet<(String, String)> = freeze["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            assert_eq!(r["operations"], json!(["UPDATE"]));
            let group = r["apiGroups"][0].as_str().unwrap().to_string();
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |x| (group.clone(), x.as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        resources,
        BTreeSet::from([
            ("apps".into(), "daemonsets".into()),
            ("apps".into(), "deployments".into()),
            ("apps".into(), "statefulsets".into()),
            ("argoproj.io".into(), "rollouts".into()),
        ])
    );
    assert_eq!(
        freeze["namespaceSelector"]["matchExpressions"][0],
        json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn",
               "values": ["kube-system", NAMESPACE]})
    );
}

/// The freeze's matchCondition, run by kube's CEL evaluator (as a transition rule: `object` is
/// `self`, `oldObject` is `oldSelf`): true exactly when the pod template changes.
#[test]
fn the_freeze_is_only_asked_about_pod_template_changes() {
    let rendered = render(&json!({"webhook": {"enabled": true, "deployFreeze": true}}));
    let condition = &webhooks(&rendered)[1]["matchConditions"][0];
    let rule = condition["expression"]
        .as_str()
        .unwrap()
        .replace("oldObject", "oldSelf")
        .replace("object", "self");
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "x-kubernetes-validations": [{"rule": rule}]});
    let calls = |old: &Value, new: &Value| {
        kube::core::cel::Validator::new()
            .validate(&schema, new, Some(old))
            .is_ok()
    };
    let deployment = |image: &str, replicas: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout"},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                   {"name": "app", "image": image}]}}}})
    };
    let v1 = deployment("shop:1", 2);
    assert!(
        calls(&v1, &deployment("shop:2", 2)),
        "a new image is a template change"
    );
    assert!(!calls(&v1, &deployment("shop:1", 5)), "scaling is not");
    let mut annotated = v1.clone();
    annotated["metadata"]["annotations"] = json!({"plimsoll.dev/rollback": "true"});
    assert!(!calls(&v1, &annotated), "our own annotations are not");
    let by_reference = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "checkout"}, "spec": {"workloadRef": {"kind": "Deployment", "name": "checkout"}}});
    assert!(
        !calls(&by_reference, &by_reference),
        "a Rollout without a template"
    );
}

#[test]
fn the_webhook_names_agree_with_what_the_operator_is_told() {
    let rendered = render(&json!({"webhook": {"enabled": true}}));
    let config = rendered.of_kind("ValidatingWebhookConfiguration")[0];
    assert_eq!(
        rendered
            .env_value("PLIMSOLL_WEBHOOK_CONFIGURATION")
            .as_ref(),
        config["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .as_ref()
    );
    let service = rendered.env_value("PLIMSOLL_WEBHOOK_SERVICE").unwrap();
    assert_eq!(
        rendered.get("Service", &service)["spec"]["ports"][1]["name"],
        "webhook"
    );
    assert_eq!(
        webhooks(&rendered)[0]["clientConfig"]["service"]["name"],
        service.as_str()
    );
    assert!(rendered.env_value("PLIMSOLL_WEBHOOK_SECRET").is_some());
    assert!(rendered.env_value("PLIMSOLL_WEBHOOK_CERT_DIR").is_none());
    assert!(
        config["metadata"].get("annotations").is_none(),
        "the operator fills the caBundle"
    );
}

#[test]
fn cert_manager_issues_the_certificate_and_injects_its_ca() {
    let rendered = render(&json!({"webhook": {"enabled": true, "certManager": {"enabled": true}}}));
    let issuer = rendered.get("Issuer", "plimsoll-selfsigned");
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
    let certificate = rendered.get("Certificate", "plimsoll-webhook");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "plimsoll-selfsigned"
    );
    let dns: Vec<&str> = certificate["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(dns.contains(&"plimsoll.plimsoll.svc"), "{dns:?}");
    let config = rendered.of_kind("ValidatingWebhookConfiguration")[0];
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "plimsoll/plimsoll-webhook"
    );
    let dir = rendered.env_value("PLIMSOLL_WEBHOOK_CERT_DIR").unwrap();
    for file in ["tls.crt", "tls.key"] {
        let volume = mounted_from(&rendered, &format!("{dir}/{file}"));
        assert_eq!(
            volume["secret"]["secretName"],
            certificate["spec"]["secretName"]
        );
    }
    for unused in ["PLIMSOLL_WEBHOOK_SECRET", "PLIMSOLL_WEBHOOK_CONFIGURATION"] {
        assert!(rendered.env_value(unused).is_none(), "{unused}");
    }
    let with_issuer = render(
        &json!({"webhook": {"enabled": true, "certManager": {"enabled": true,
        "issuerRef": {"name": "company-ca", "kind": "ClusterIssuer"}}}}),
    );
    assert!(with_issuer.of_kind("Issuer").is_empty());
    assert_eq!(
        with_issuer.get("Certificate", "plimsoll-webhook")["spec"]["issuerRef"],
        json!({"name": "company-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
}

#[test]
fn the_service_monitor_scrapes_the_metrics_port() {
    let rendered = render(&json!({"metrics": {"serviceMonitor": {"enabled": true,
        "labels": {"release": "kube-prometheus-stack"}}}}));
    let monitor = rendered.get("ServiceMonitor", "plimsoll");
    let service = rendered.get("Service", "plimsoll");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert!(render(&json!({})).of_kind("ServiceMonitor").is_empty());
}

#[test]
fn the_dashboard_ships_as_a_configmap_for_the_grafana_sidecar() {
    assert!(render(&json!({})).of_kind("ConfigMap").is_empty());
    let rendered = render(&json!({"dashboards": {"enabled": true, "namespace": "grafana"}}));
    let map = rendered.get("ConfigMap", "plimsoll-dashboards");
    assert_eq!(map["metadata"]["namespace"], "grafana");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let dir = repo().join("charts/plimsoll/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let data = map["data"].as_object().unwrap();
    assert_eq!(data.len(), files.len());
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let shipped: Value = serde_json::from_str(data[name].as_str().unwrap()).unwrap();
        let source: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(shipped, source, "{name}");
    }
}

#[test]
fn the_dashboard_links_to_the_ui_at_its_external_url() {
    let rendered = render(&json!({"dashboards": {"enabled": true},
                                  "ui": {"externalUrl": "https://slo.example.com/"}}));
    let map = rendered.get("ConfigMap", "plimsoll-dashboards");
    let shipped: Value = serde_json::from_str(map["data"]["slos.json"].as_str().unwrap()).unwrap();
    let variable = shipped["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "plimsoll_url")
        .unwrap();
    assert_eq!(variable["query"], "https://slo.example.com");
    assert_eq!(variable["current"]["value"], "https://slo.example.com");
    // Nothing else changed.
    let source: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("charts/plimsoll/dashboards/slos.json")).unwrap(),
    )
    .unwrap();
    let without = |d: &Value| {
        let mut d = d.clone();
        d["templating"]["list"]
            .as_array_mut()
            .unwrap()
            .retain(|v| v["name"] != "plimsoll_url");
        d
    };
    assert_eq!(without(&shipped), without(&source));
}

#[test]
fn the_chart_ships_the_generated_crd() {
    let generated =
        std::fs::read_to_string(repo().join("crds/plimsoll.dev_servicelevelobjectives.yaml"))
            .unwrap();
    let shipped = repo().join("charts/plimsoll/crds");
    let files: Vec<_> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap(),
        generated,
        "charts/plimsoll/crds/ differs from crds/: run `make crds`"
    );
}

#[test]
fn deploy_manifest_is_the_default_render_with_the_namespace_and_the_crd() {
    let file = repo().join("deploy/plimsoll.yaml");
    let checked_in = std::fs::read_to_string(&file).unwrap();
    assert!(
        checked_in == helm::deploy(),
        "deploy/plimsoll.yaml differs from the default render of the chart: run `make deploy`"
    );
    let objects = documents(&checked_in);
    assert_eq!(kinds::check_all(&objects), Vec::<String>::new());
    assert_eq!(objects[0]["kind"], "Namespace");
    assert_eq!(objects[0]["metadata"]["name"], NAMESPACE);
    assert_eq!(objects[1]["kind"], "CustomResourceDefinition");
    let crd = documents(
        &std::fs::read_to_string(repo().join("crds/plimsoll.dev_servicelevelobjectives.yaml"))
            .unwrap(),
    );
    assert_eq!(objects[1], crd[0]);
    let rendered = render(&json!({}));
    assert_eq!(objects[2..], rendered.objects[..]);
    for object in &objects[2..] {
        let cluster_scoped =
            ["ClusterRole", "ClusterRoleBinding"].contains(&object["kind"].as_str().unwrap());
        let namespace = object["metadata"]["namespace"].as_str();
        assert_eq!(
            namespace,
            (!cluster_scoped).then_some(NAMESPACE),
            "{}",
            object["kind"]
        );
    }
}

#[test]
fn the_ui_is_on_by_default_and_its_ingress_serves_only_the_ui() {
    let defaults = render(&json!({}));
    assert_eq!(defaults.env_value("PLIMSOLL_UI").as_deref(), Some("true"));
    assert!(defaults.env_value("PLIMSOLL_UI_URL").is_none());
    assert!(defaults.of_kind("Ingress").is_empty());
    let off = render(&json!({"ui": {"enabled": false, "ingress": {"enabled": true, "host": "h"}}}));
    assert_eq!(off.env_value("PLIMSOLL_UI").as_deref(), Some("false"));
    assert!(
        off.of_kind("Ingress").is_empty(),
        "no Ingress without the UI"
    );
    let on = render(&json!({"ui": {"externalUrl": "https://slo.example.com",
        "ingress": {"enabled": true, "host": "slo.example.com", "tlsSecretName": "slo-tls"}}}));
    assert_eq!(
        on.env_value("PLIMSOLL_UI_URL").as_deref(),
        Some("https://slo.example.com")
    );
    let ingress = &on.of_kind("Ingress")[0];
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], "/ui", "/metrics and the webhook stay inside");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(path["backend"]["service"]["port"]["name"], "http");
    assert_eq!(
        ingress["spec"]["tls"][0]["hosts"],
        json!(["slo.example.com"])
    );
    let refusal = helm::refusal(&json!({"ui": {"ingress": {"enabled": true}}}));
    assert!(refusal.contains("ui.ingress.host is required"), "{refusal}");
}

/// extraEnv comes after the chart's own variables and reaches `plimsoll run` (a value or a
/// Secret's key); extraArgs follow `run`, and a flag there wins over the variable the chart sets.
#[test]
fn extra_environment_and_arguments_reach_plimsoll_run() {
    let rendered = render(&json!({
        "extraEnv": [
            {"name": "PLIMSOLL_CACHE_STALE_AFTER", "value": "5m"},
            {"name": "PLIMSOLL_PROMETHEUS_TENANT",
             "valueFrom": {"secretKeyRef": {"name": "mimir", "key": "tenant"}}},
        ],
        "extraArgs": ["--concurrency=4"],
    }));
    assert_eq!(kinds::check_all(&rendered.objects), Vec::<String>::new());
    let container = &rendered.deployment()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], json!(["run", "--concurrency=4"]));
    let names: Vec<String> = rendered.env().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names[names.len() - 2..],
        ["PLIMSOLL_CACHE_STALE_AFTER", "PLIMSOLL_PROMETHEUS_TENANT"],
        "extraEnv comes last"
    );
    assert_eq!(
        container["env"][names.len() - 1]["valueFrom"]["secretKeyRef"],
        json!({"name": "mimir", "key": "tenant"})
    );
    assert_eq!(
        rendered.env_value("PLIMSOLL_CONCURRENCY").as_deref(),
        Some("8"),
        "the chart's variable stays"
    );
    let args = run_args(&rendered);
    assert_eq!(args.cache_stale_after, std::time::Duration::from_secs(300));
    let tenant = args.prometheus.store.extras().unwrap().tenant.unwrap();
    assert_eq!(tenant.as_str(), "from-the-cluster", "the Secret's value");
    assert_eq!(
        args.concurrency, 4,
        "the argument wins over PLIMSOLL_CONCURRENCY"
    );
    let defaults = render(&json!({}));
    let container = &defaults.deployment()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], json!(["run"]));
}

/// The pod's and the container's securityContext: hardened by default, replaceable key by key,
/// and a default key removed with null (OpenShift's restricted SCC assigns the UID itself).
#[test]
fn security_contexts_are_hardened_by_default_and_can_be_overridden() {
    let pod_and_container = |rendered: &Rendered| {
        let pod = &rendered.deployment()["spec"]["template"]["spec"];
        (
            pod["securityContext"].clone(),
            pod["containers"][0]["securityContext"].clone(),
        )
    };
    let (pod, container) = pod_and_container(&render(&json!({})));
    assert_eq!(
        pod,
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        container,
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}})
    );
    let openshift = render(&json!({
        "podSecurityContext": {"runAsUser": null, "runAsGroup": null, "fsGroup": 1000},
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }));
    assert_eq!(kinds::check_all(&openshift.objects), Vec::<String>::new());
    let (pod, container) = pod_and_container(&openshift);
    assert_eq!(
        pod,
        json!({"runAsNonRoot": true, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}),
        "no fixed UID or GID"
    );
    assert_eq!(container["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        container["readOnlyRootFilesystem"], true,
        "the other defaults stay"
    );
    // A misspelt key is caught as the Kubernetes schema would catch it.
    let typo = render(&json!({"securityContext": {"readOnlyRootFileSystem": true}}));
    let problems = kinds::check_all(&typo.objects);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("readOnlyRootFileSystem: unknown field")),
        "{problems:?}"
    );
}

#[test]
fn the_service_takes_its_type_port_and_annotations() {
    let rendered = render(&json!({"service": {
        "type": "LoadBalancer", "port": 80,
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}}}));
    assert_eq!(kinds::check_all(&rendered.objects), Vec::<String>::new());
    let service = rendered.get("Service", "plimsoll");
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        service["metadata"]["annotations"],
        json!({"service.beta.kubernetes.io/aws-load-balancer-internal": "true"})
    );
    assert!(
        rendered
            .notes
            .contains("port-forward svc/plimsoll 8080:80\n"),
        "{}",
        rendered.notes
    );
    let defaults = render(&json!({}));
    let service = defaults.get("Service", "plimsoll");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert!(service["metadata"].get("annotations").is_none());
}

/// partialResponse is a boolean: true and false reach the operator, unset sends nothing.
#[test]
fn partial_response_is_a_boolean_or_unset() {
    let url = "http://thanos-query.monitoring:9090";
    for (value, expected) in [
        (json!(true), Some(true)),
        (json!(false), Some(false)),
        (Value::Null, None),
    ] {
        let rendered = render(&json!({"prometheus": {"url": url, "partialResponse": value}}));
        let args = run_args(&rendered);
        assert_eq!(
            args.prometheus.store.extras().unwrap().partial_response,
            expected,
            "{value}"
        );
    }
    let rendered = render(&json!({"prometheus": {"url": url}}));
    assert!(
        rendered
            .env_value("PLIMSOLL_PROMETHEUS_PARTIAL_RESPONSE")
            .is_none()
    );
}

/// The default image is published nowhere: NOTES says so first, and not once an image is named.
#[test]
fn notes_warn_that_the_default_image_is_not_published() {
    let defaults = render(&json!({}));
    let warning = "WARNING: the image plimsoll:0.1.0 is not published anywhere";
    assert!(defaults.notes.contains(warning), "{}", defaults.notes);
    assert!(
        defaults
            .notes
            .contains("--set image.repository=<registry>/plimsoll")
    );
    let named = render(&json!({"image": {"repository": "registry.example.com/plimsoll"}}));
    assert!(!named.notes.contains("WARNING"), "{}", named.notes);
    assert_eq!(
        named.deployment()["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/plimsoll:0.1.0"
    );
}

/// The SLO that NOTES ends with: its `kubectl apply` heredoc, as a shell would pass it.
fn first_slo(notes: &str) -> (String, String) {
    let start = notes
        .find("kubectl apply -n ")
        .unwrap_or_else(|| panic!("no kubectl apply in NOTES:\n{notes}"));
    let command = &notes[start..];
    let (line, rest) = command.split_once('\n').unwrap();
    assert!(line.ends_with("-f - <<'EOF'"), "{line}");
    let (body, after) = rest.split_once("\nEOF").unwrap();
    assert_eq!(after.trim(), "", "NOTES ends with the kubectl apply");
    (line.to_string(), format!("{body}\n"))
}

/// NOTES ends with the `kubectl apply` of a first SLO that `plimsoll validate` accepts, in a
/// watched namespace and labelled to match the selector.
#[test]
fn notes_end_with_a_first_slo_that_validates() {
    let validate = |yaml: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("first.yaml");
        std::fs::write(&file, yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["validate", "-f"])
            .arg(&file)
            .env_remove("PLIMSOLL_PROMETHEUS_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{yaml}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (command, yaml) = first_slo(&render(&json!({})).notes);
    assert_eq!(command, "kubectl apply -n default -f - <<'EOF'");
    validate(&yaml);
    let slo: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(slo["kind"], "ServiceLevelObjective");
    assert_eq!(slo["spec"]["service"], "prometheus");
    let scoped = render(&json!({"watchNamespaces": ["shop", "payments"],
                                "selector": "team=shop, tier==web"}));
    let (command, yaml) = first_slo(&scoped.notes);
    assert_eq!(command, "kubectl apply -n shop -f - <<'EOF'");
    validate(&yaml);
    let slo: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(
        slo["metadata"]["labels"],
        json!({"team": "shop", "tier": "web"})
    );
    let set_based = render(&json!({"selector": "team in (shop,pay)"}));
    let (_, yaml) = first_slo(&set_based.notes);
    validate(&yaml);
    assert!(yaml.contains("# add labels matching this release's selector: team in (shop,pay)"));
}
