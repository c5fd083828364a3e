#!/usr/bin/env bash
# The main job: a whole simulated site running end to end (X3). Odoo 19 with the suite and
# its demo data on http://127.0.0.1:8069, a private Mosquitto, the simulator fleet (TCP
# collectors with RS-485 buses, 4G meters) and the gateway runners; within minutes readings
# are charged, alarms fire, a meter is cut and a recharge in the portal restores it.
# Ctrl-C stops everything this script started; running it again keeps the data, upgrading
# the add-ons first when their code changed (DEMO_RESET=1 starts afresh, DEMO_UPDATE=1
# upgrades the add-ons anyway; DEMO_DB, DEMO_PORT,
# DEMO_MQTT_PORT (18830) and DEMO_SIM_PORT (9100..9111) choose the database and ports).
# DEMO_LANG=zh_CN builds a new database in Simplified Chinese: the language active for every
# user and tenant, the landlords in CNY, Chinese names for sites, buildings and tenants.
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

# The whole site (scripts/demo_stack.py): the database (created with the demo data on the
# first run, kept after), Mosquitto, Odoo, the simulator fleet and the gateway runners;
# Ctrl-C stops them in reverse order. Logs and keys in .local/demo/.
OPTIONS=()
[ "${DEMO_RESET:-}" = 1 ] && OPTIONS=(--reset)
[ "${DEMO_UPDATE:-}" = 1 ] && OPTIONS+=(--update)
"$PY" "$ROOT/scripts/demo_stack.py" --db "$DB" --http-port "$PORT" \
    --broker-port "${DEMO_MQTT_PORT:-18830}" --sim-port "${DEMO_SIM_PORT:-9100}" \
    --addons-path "$(addons_path)" --lang "${DEMO_LANG:-}" "${OPTIONS[@]}"
