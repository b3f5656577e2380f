#!/usr/bin/env bash
# A redis-server on 127.0.0.1:PORT (or the port of a redis:// URL) for the demo: the one already answering there, or a new one (no persistence,
# loopback only, daemonized; stop it with `redis-cli -p PORT shutdown nosave`). With MODEL, that model's Atlas keys
# are removed first: the demo replays the same buckets each time, and a bucket is never published twice.
set -euo pipefail
port="${1:-6379}"
if [[ "$port" == *://* ]]; then  # a URL (REDIS_URL): its port
    port="${port##*:}"
    port="${port%%/*}"
fi
model="${2:-}"
forget() {
    [ -n "$model" ] || return 0
    redis-cli -p "$port" --scan --pattern "atlas:v1:*:$model" | xargs -r redis-cli -p "$port" del >/dev/null
    echo "removed the demo model's earlier predictions (atlas:v1:*:$model)"
}
if redis-cli -p "$port" ping >/dev/null 2>&1; then
    echo "redis-server already answers on 127.0.0.1:$port"
    forget
    exit 0
fi
if ! command -v redis-server >/dev/null; then
    echo "Error: redis-server is not installed; install it (apt-get install redis-server) or start one on port $port" >&2
    exit 1
fi
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes
for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "started redis-server on 127.0.0.1:$port"; forget; exit 0; }
    sleep 0.1
done
echo "Error: redis-server did not answer on 127.0.0.1:$port" >&2
exit 1
