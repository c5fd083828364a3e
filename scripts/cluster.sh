#!/usr/bin/env bash
# The suite past one machine, on this one: PostgreSQL primary + streaming replica, two Odoo
# nodes (prefork) behind HAProxy sharing one data_dir, Mosquitto, two gateway runners per 4G
# gateway (MQTT 5 shared subscription) and the simulator fleet (scripts/cluster_stack.py).
#   scripts/cluster.sh up [--reset]   start it in the background (log: .local/cluster/cluster.log)
#   scripts/cluster.sh status         each part: up or down
#   scripts/cluster.sh down           stop it all
# Ports (127.0.0.1): CLUSTER_BASE_PORT (7100: HAProxy; +2.. the nodes, +10 Mosquitto, +20..
# the simulated buses) and CLUSTER_PG_PORT (56100: the primary, +1 the replica).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
CLUSTER_DIR="${CLUSTER_DIR:-$LOCAL/cluster}"
export CLUSTER_DIR PG_OPTIONS
PIDFILE="$CLUSTER_DIR/cluster.pid"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

up() {
    if running; then say "The cluster is already running (pid $(cat "$PIDFILE"))"; return 0; fi
    ensure_debian
    ensure_odoo || { odoo_missing_message; exit 1; }
    ensure_python
    PG_BIN="$(pg_bin)"
    export PG_BIN
    mkdir -p "$CLUSTER_DIR"
    say "Starting the cluster (log: $CLUSTER_DIR/cluster.log)"
    setsid "$PY" scripts/cluster_stack.py up "$@" >>"$CLUSTER_DIR/cluster.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    until [ -f "$CLUSTER_DIR/state.json" ]; do
        running || { tail -n 30 "$CLUSTER_DIR/cluster.log"; warn "the cluster did not start"; exit 1; }
        sleep 2
    done
    "$PY" scripts/cluster_stack.py status
}

down() {
    if running; then
        local pid
        pid="$(cat "$PIDFILE")"
        say "Stopping the cluster (pid $pid)"
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    else
        say "The cluster is not running"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    status) "$PY" scripts/cluster_stack.py status ;;
    *) echo "usage: $0 up [--reset] | status | down" >&2; exit 2 ;;
esac
