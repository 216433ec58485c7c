#!/usr/bin/env bash
# Make sure a Redis answers at HUBHOOKS_REDIS_URL (default redis://127.0.0.1:6379/0).
# When none answers and the URL points at this machine, start redis-server from
# PATH with its data under HUBHOOKS_DATA_DIR/redis; otherwise explain how to get one.
set -euo pipefail
url=${HUBHOOKS_REDIS_URL:-redis://127.0.0.1:6379/0}
hostport=${url#redis://}; hostport=${hostport#*@}; hostport=${hostport%%/*}
host=${hostport%:*}; port=${hostport##*:}
[ "$host" = "$port" ] && port=6379
ping() {
  if command -v redis-cli >/dev/null 2>&1; then redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1
  else (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && read -r -t 2 line <&3 && [[ $line == +PONG* ]]) 2>/dev/null; fi
}
ping && exit 0
case "$host" in 127.0.0.1|localhost|::1) ;; *)
  echo "Redis at $host:$port does not answer. Start it, or point HUBHOOKS_REDIS_URL at a running Redis." >&2; exit 1;;
esac
if ! command -v redis-server >/dev/null 2>&1; then
  cat >&2 <<MSG
No Redis answers at $host:$port and redis-server is not installed.
Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),
or run one in Docker: docker run -d -p $port:6379 redis:7, then retry.
MSG
  exit 1
fi
dir=${HUBHOOKS_DATA_DIR:-./data}/redis
mkdir -p "$dir"
echo "starting redis-server on $host:$port (data in $dir)"
redis-server --daemonize yes --bind "$host" --port "$port" --dir "$(cd "$dir" && pwd)" \
  --logfile "$(cd "$dir" && pwd)/redis.log" --appendonly yes --save "" >/dev/null
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "redis-server did not answer on $host:$port; see $dir/redis.log" >&2
exit 1
