#!/usr/bin/env bash
# The main job: a database with the suite and its demo data, served by Odoo 19 on
# http://127.0.0.1:8069.  Ctrl-C stops everything this script started; running it again
# keeps the data (DEMO_RESET=1 starts afresh, DEMO_UPDATE=1 upgrades the add-ons).
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

DB="${DEMO_DB:-prepaid_demo}"
PORT="${DEMO_PORT:-8069}"
ensure_debian
ensure_odoo || { odoo_missing_message; exit 1; }
ensure_python
pg_start || exit 1

ODOO_PID=""
cleanup() {
    trap - INT TERM EXIT
    if [ -n "$ODOO_PID" ] && kill -0 "$ODOO_PID" 2>/dev/null; then
        say "Stopping Odoo"
        kill "$ODOO_PID" 2>/dev/null; wait "$ODOO_PID" 2>/dev/null
    fi
    [ "${PG_STARTED:-}" = 1 ] && say "Stopping PostgreSQL"
    pg_stop
}
trap cleanup INT TERM EXIT

ADDONS=$(for m in addons/*/__manifest__.py; do basename "$(dirname "$m")"; done | paste -sd, -)
ADDONS="$ADDONS,payment_demo"  # tenants recharge online through Odoo's demo payment provider
ODOO=("$PY" -m odoo -c "$ROOT/odoo.conf" --addons-path="$(addons_path)" $(db_args) -d "$DB")

[ "${DEMO_RESET:-}" = 1 ] && dropdb --if-exists "$DB"
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    say "Creating database $DB with $ADDONS and demo data (about a minute)"
    "${ODOO[@]}" -i "$ADDONS" --with-demo --stop-after-init --http-port="$PORT" \
        --log-level=warn >"$LOCAL/demo-install.log" 2>&1 \
        || { tail -n 40 "$LOCAL/demo-install.log"; exit 1; }
elif [ "${DEMO_UPDATE:-}" = 1 ]; then
    say "Upgrading $ADDONS in $DB"
    "${ODOO[@]}" -u "$ADDONS" --stop-after-init --log-level=warn >"$LOCAL/demo-install.log" 2>&1 \
        || { tail -n 40 "$LOCAL/demo-install.log"; exit 1; }
else
    say "Database $DB exists: keeping its data"
    # add-ons added to the project since the database was made are installed, with demo data
    MISSING=$(for m in ${ADDONS//,/ }; do
        psql -d "$DB" -tAc "SELECT 1 FROM ir_module_module WHERE name = '$m' AND state = 'installed'" \
            | grep -q 1 || echo "$m"
    done | paste -sd, -)
    if [ -n "$MISSING" ]; then
        say "Installing $MISSING in $DB"
        "${ODOO[@]}" -i "$MISSING" --stop-after-init --log-level=warn >"$LOCAL/demo-install.log" 2>&1 \
            || { tail -n 40 "$LOCAL/demo-install.log"; exit 1; }
    fi
fi

say "Starting Odoo on http://127.0.0.1:$PORT"
"${ODOO[@]}" --db-filter="^$DB\$" --http-port="$PORT" --logfile="$LOCAL/demo-odoo.log" &
ODOO_PID=$!
for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/web/login" 2>/dev/null && break
    kill -0 "$ODOO_PID" 2>/dev/null || { tail -n 40 "$LOCAL/demo-odoo.log"; exit 1; }
    sleep 1
done

cat <<MSG

  Prepaid energy suite is running: http://127.0.0.1:$PORT/odoo/action-prepaid_meter.prepaid_meter_action

  Logins (login / password):
    admin      / admin        administrator, prepaid manager
    operator   / operator     prepaid operator (desk)
    accountant / accountant   read-only accountant
    tenant     / tenant       a tenant in the portal: http://127.0.0.1:$PORT/my/meters
                              (online recharge through the demo payment provider)

  Database: $DB (PostgreSQL ${PGHOST}:${PGPORT}); logs in .local/demo-odoo.log
  Press Ctrl-C to stop.

MSG
wait "$ODOO_PID"
