#!/usr/bin/env bash
# bench-separate.sh — measure the separate-process deployment with hubbench.
#
# Starts a nats-server (JetStream, file store; the version the tests embed,
# installed into bin/tools on first use), configsvc, expander, deliverer and
# logger from bin/ on free loopback ports with a private Redis key prefix,
# runs `hubbench -target external` against them with the flags given, then
# stops everything and deletes the prefix's keys.
#
#   make build
#   deploy/scripts/bench-separate.sh -rate 1000 -urls 1 -hang-urls 1 -duration 30s -skip-ceilings
#
# Environment: HUBHOOKS_REDIS_URL (default redis://127.0.0.1:6379/0), KEEP=1
# keeps the work dir (logs, JetStream store). Any HUBHOOKS_* setting set in the
# environment reaches the services.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/bin
redis_url=${HUBHOOKS_REDIS_URL:-redis://127.0.0.1:6379/0}

for b in configsvc expander deliverer logger hubbench; do
	[ -x "$bin/$b" ] || { echo "bench-separate: $bin/$b missing: run 'make build' first" >&2; exit 1; }
done
if [ ! -x "$bin/tools/nats-server" ]; then
	v=$(cd "$root/services" && go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
	echo "bench-separate: installing nats-server $v into bin/tools" >&2
	GOBIN=$bin/tools go install "github.com/nats-io/nats-server/v2@$v"
fi

work=$(mktemp -d /tmp/hubhooks-sep.XXXXXX)
prefix="hubbench:sep$$:"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-}" != 1 ] && command -v redis-cli >/dev/null; then
		redis-cli -u "$redis_url" --scan --pattern "${prefix}*" | xargs -r -n 500 redis-cli -u "$redis_url" unlink >/dev/null || true
	fi
	if [ "${KEEP:-}" = 1 ]; then echo "bench-separate: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# free_port prints a loopback port nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}

nats_port=$(free_port)
cfg_port=$(free_port)
log_port=$(free_port)

"$bin/tools/nats-server" -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
names=(nats)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done

export HUBHOOKS_NATS_URL=nats://127.0.0.1:$nats_port HUBHOOKS_REDIS_URL=$redis_url
export HUBHOOKS_CONFIG_ADDR=127.0.0.1:$cfg_port HUBHOOKS_REDIS_PREFIX=$prefix
export HUBHOOKS_ALLOWED_CIDRS=${HUBHOOKS_ALLOWED_CIDRS:-127.0.0.0/8} HUBHOOKS_LOG_FORMAT=${HUBHOOKS_LOG_FORMAT:-text}
metrics=()
for svc in configsvc expander deliverer logger; do
	http_port=$(free_port)
	grpc=()
	case $svc in
	configsvc) grpc=(HUBHOOKS_GRPC_ADDR=127.0.0.1:$cfg_port) ;;
	logger) grpc=(HUBHOOKS_GRPC_ADDR=127.0.0.1:$log_port) ;;
	esac
	env "${grpc[@]}" HUBHOOKS_HTTP_ADDR=127.0.0.1:$http_port "$bin/$svc" >"$work/$svc.log" 2>&1 &
	pids+=($!)
	names+=("$svc")
	metrics+=("http://127.0.0.1:$http_port/metrics")
done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$cfg_port") 2>/dev/null && break; sleep 0.1; done

pidlist=""
for i in "${!pids[@]}"; do pidlist+="${pidlist:+,}${names[$i]}=${pids[$i]}"; done
metriclist=$(IFS=,; echo "${metrics[*]}")
echo "bench-separate: nats :$nats_port, configsvc :$cfg_port, logs in $work" >&2
"$bin/hubbench" run -target external -nats-url "nats://127.0.0.1:$nats_port" -grpc-addr "127.0.0.1:$cfg_port" \
	-pids "$pidlist" -metrics "$metriclist" -redis-prefix "$prefix" -redis-url "$redis_url" "$@"
