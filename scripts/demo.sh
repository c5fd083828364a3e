#!/usr/bin/env bash
# The main job: a whole simulated site running end to end (X3). Odoo 19 with the suite and
# its demo data on http://127.0.0.1:8069, a private Mosquitto, the simulator fleet (TCP
# collectors with RS-485 buses, 4G meters) and the gateway runners; within minutes readings
# are charged, alarms fire, a meter is cut and a recharge in the portal restores it.
# Ctrl-C stops everything this script started; running it again keeps the data
# (DEMO_RESET=1 starts afresh, DEMO_UPDATE=1 upgrades the add-ons; DEMO_DB, DEMO_PORT,
# DEMO_MQTT_PORT (18830) and DEMO_SIM_PORT (9100..9111) choose the database and ports).
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

DB="${DEMO_DB:-prepaid_demo}"
PORT="${DEMO_PORT:-8069}"
ensure_debian
ensure_odoo || { odoo_missing_message; exit 1; }
ensure_python
pg_start || exit 1

cleanup() {
    trap - INT TERM EXIT
    [ "${PG_STARTED:-}" = 1 ] && say "Stopping PostgreSQL"
    pg_stop
}
trap cleanup INT TERM EXIT

ADDONS=$(for m in addons/*/__manifest__.py; do basename "$(dirname "$m")"; done | paste -sd, -)
if [ "${DEMO_UPDATE:-}" = 1 ] && psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    say "Upgrading $ADDONS in $DB"
    "$PY" -m odoo -c "$ROOT/odoo.conf" --addons-path="$(addons_path)" $(db_args) -d "$DB" \
        -u "$ADDONS" --stop-after-init --log-level=warn >"$LOCAL/demo-install.log" 2>&1 \
        || { tail -n 40 "$LOCAL/demo-install.log"; exit 1; }
fi

# The whole site (scripts/demo_stack.py): the database (created with the demo data on the
# first run, kept after), Mosquitto, Odoo, the simulator fleet and the gateway runners;
# Ctrl-C stops them in reverse order. Logs and keys in .local/demo/.
RESET=()
[ "${DEMO_RESET:-}" = 1 ] && RESET=(--reset)
"$PY" "$ROOT/scripts/demo_stack.py" --db "$DB" --http-port "$PORT" \
    --broker-port "${DEMO_MQTT_PORT:-18830}" --sim-port "${DEMO_SIM_PORT:-9100}" \
    --addons-path "$(addons_path)" "${RESET[@]}"
