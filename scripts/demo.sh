#!/usr/bin/env bash
# `make demo`: Plimsoll on a month of synthetic traffic, without a cluster.
#
# 1. `plimsoll demo-data write` writes 30 days (and an hour) of request counters for three
#    services - catalog (healthy), checkout (a bad release two days ago) and payments (an hour-long
#    outage four hours ago) - as OpenMetrics, plus the SLOs' recording rules in the order their
#    history can be computed.
# 2. `promtool tsdb create-blocks-from openmetrics` turns the counters into TSDB blocks.
# 3. The history of the recording rules, stage by stage: a Prometheus without rules starts on the
#    blocks, `plimsoll demo-data record` evaluates the stage's rules over the range with range
#    queries (the 5m counts over the whole month, everything built on them over the last hour),
#    and the results are imported like the counters. Each stage reads what the previous wrote.
# 4. Prometheus starts on 127.0.0.1 (a free port, data in a temporary directory) with
#    `rule_files: <tmp>/rules/*.yaml` and the lifecycle API.
# 5. `plimsoll local --once` writes the rule files there, has Prometheus reload them, reads the
#    budgets and prints the table.
# 6. With DEMO_UI=1 (`make demo-ui`), `plimsoll local` then serves the web UI on DEMO_UI_LISTEN
#    (127.0.0.1:8080) until Ctrl-C.
#
# Everything this script starts is stopped on exit, and the temporary directory removed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
plimsoll=${PLIMSOLL:-$repo/target/debug/plimsoll}
slos=${DEMO_SLOS:-$repo/demo/slos}
work=$(mktemp -d "${TMPDIR:-/tmp}/plimsoll-demo.XXXXXX")
prometheus_pid=""

stop_prometheus() {
	if [ -n "$prometheus_pid" ]; then
		kill "$prometheus_pid" 2>/dev/null || true
		wait "$prometheus_pid" 2>/dev/null || true
		prometheus_pid=""
	fi
}
cleanup() {
	stop_prometheus
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
say() { printf '==> [%3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

# Runs a command quietly; shows its output only when it fails.
quiet() {
	if ! "$@" >"$work/last.log" 2>&1; then
		echo "failed: $*" >&2
		cat "$work/last.log" >&2
		return 1
	fi
}

# Starts Prometheus on a free loopback port with the given config and waits until it is ready;
# sets prometheus_pid and url.
start_prometheus() {
	local config=$1 attempt port
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue # taken
		fi
		prometheus --config.file="$config" --storage.tsdb.path="$work/data" \
			--storage.tsdb.retention.time=400d --web.listen-address="127.0.0.1:$port" \
			--web.enable-lifecycle --log.level=error >>"$work/prometheus.log" 2>&1 &
		prometheus_pid=$!
		url="http://127.0.0.1:$port"
		local deadline=$((SECONDS + 60))
		while kill -0 "$prometheus_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
			if "$plimsoll" demo-data ready --prometheus "$url" 2>/dev/null; then
				return 0
			fi
			sleep 0.1
		done
		stop_prometheus
	done
	echo "Prometheus did not start; its log:" >&2
	cat "$work/prometheus.log" >&2
	return 1
}

for tool in prometheus promtool; do
	command -v "$tool" >/dev/null || {
		echo "$tool is missing: run 'make tools' (Debian's prometheus package)" >&2
		exit 2
	}
done
mkdir -p "$work/data" "$work/rules"

say "writing a month of synthetic traffic for catalog, checkout and payments"
eval "$("$plimsoll" demo-data write --slos "$slos" --out "$work")"

say "importing it into a Prometheus TSDB (promtool tsdb create-blocks-from openmetrics)"
quiet promtool tsdb create-blocks-from openmetrics --max-block-duration=24h "$work/traffic.om" "$work/data"

echo "global: {evaluation_interval: 30s}" >"$work/bare.yml"
history() {
	local rules=$1 from=$2 what=$3
	say "recording $what"
	start_prometheus "$work/bare.yml"
	"$plimsoll" demo-data record --prometheus "$url" --rules "$work/$rules" \
		--start "$from" --end "$END" --out "$work/$rules.om"
	stop_prometheus
	quiet promtool tsdb create-blocks-from openmetrics --max-block-duration=24h "$work/$rules.om" "$work/data"
}
for stage in $(seq 1 "$COUNT_STAGES"); do
	history "counts-$stage.yaml" "$START" "the rules' 5m counts over the month ($stage/$COUNT_STAGES)"
done
for stage in $(seq 1 "$STAGES"); do
	history "stage-$stage.yaml" "$((END - 3600))" "the last hour of the rules built on them ($stage/$STAGES)"
done

cat >"$work/prometheus.yml" <<EOF
global: {evaluation_interval: 30s}
rule_files: ["$work/rules/*.yaml"]
EOF
start_prometheus "$work/prometheus.yml"
say "Prometheus is up at $url; running plimsoll local --once"
echo >&2
status=0
"$plimsoll" local -f "$slos" --prometheus-url "$url" --rules-out "$work/rules" --once || status=$?
if [ -n "${DEMO_UI:-}" ] && [ "$status" = 0 ]; then
	# `make demo-ui`: the same SLOs, served as the web UI until Ctrl-C.
	listen=${DEMO_UI_LISTEN:-127.0.0.1:8080}
	echo >&2
	say "serving the UI at http://$listen/ui (Ctrl-C stops it, Prometheus and removes $work)"
	"$plimsoll" local -f "$slos" --prometheus-url "$url" --rules-out "$work/rules" \
		--listen "$listen" --interval 30s >/dev/null || status=$?
fi
say "done; stopping Prometheus and removing $work"
echo "On your own Prometheus: plimsoll local -f <dir> --prometheus-url <url> --rules-out <dir its rule_files read> (README.md, 'plimsoll local')" >&2
exit "$status"
