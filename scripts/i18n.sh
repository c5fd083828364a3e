#!/usr/bin/env bash
# The add-ons' translation templates, exported by Odoo 19's own exporter (odoo i18n export).
#   scripts/i18n.sh export [DB]   rewrite addons/<addon>/i18n/<addon>.pot of the four add-ons
#                                 (kept as it is when only its header dates would change)
#   scripts/i18n.sh check  [DB]   export to a temporary folder and compare with the committed
#                                 .pot (header dates aside); then check each zh_CN.po against
#                                 its .pot (same strings, none empty or fuzzy, placeholders
#                                 kept, msgfmt -c --check-format clean); exits 1 on a problem
# DB is a database where the four add-ons are installed WITHOUT demo data (Odoo 19's default):
# demo records would add their names to the .pot, and records loaded "noupdate" (mail
# templates) keep the text of the version first installed.  Without DB, a temporary database
# is made (the add-ons installed, no demo data, English only) and dropped afterwards.  The
# .pot does not depend on the languages installed (it holds the English strings only).
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

MODE="${1:-}"
DB="${2:-}"
case "$MODE" in export | check) ;; *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;; esac
ADDONS=$(for m in addons/*/__manifest__.py; do basename "$(dirname "$m")"; done)
LOG="$LOCAL/i18n.log"
: >"$LOG"

odoo() { "$PY" -m odoo --addons-path="$(addons_path)" "$@" >>"$LOG" 2>&1; }

fail() { warn "$1 (log: .local/i18n.log)"; exit 1; }

# The database's conditions must be those the committed .pot was exported under.
check_conditions() {
    local wanted demo missing
    wanted=$(printf "'%s'," $ADDONS)
    missing=$(psql -d "$DB" -XAtc "SELECT count(*) FROM unnest(ARRAY[${wanted%,}]) AS m(name)
        WHERE m.name NOT IN (SELECT name FROM ir_module_module WHERE state = 'installed')") \
        || fail "cannot read database $DB"
    [ "$missing" = 0 ] || fail "database $DB lacks some of the add-ons: $(echo $ADDONS)"
    demo=$(psql -d "$DB" -XAtc "SELECT string_agg(name, ', ') FROM ir_module_module
        WHERE demo AND name IN (${wanted%,})")
    [ -z "$demo" ] || fail "database $DB has demo data ($demo): the .pot is exported without it"
}

make_database() {
    DB="${I18N_DB_PREFIX:-prepaid_i18n}_$(date +%s)_$$"
    TEMP_DB=1
    say "i18n: installing the add-ons on a temporary database $DB (no demo data)"
    odoo -c "$ROOT/odoo.conf" $(db_args) -d "$DB" -i "$(echo $ADDONS | tr ' ' ,)" \
        --stop-after-init --no-http --max-cron-threads=0 --log-level=warn \
        || fail "the add-ons could not be installed on $DB"
}

cleanup() {
    [ -n "${OUT:-}" ] && rm -rf "$OUT"
    [ "${TEMP_DB:-}" = 1 ] && dropdb --if-exists "$DB" >/dev/null 2>&1
    pg_stop
}

export_to() {  # folder: one <addon>.pot per add-on
    local addon
    for addon in $ADDONS; do
        odoo i18n export -c "$ROOT/odoo.conf" -d "$DB" -o "$1/$addon.pot" "$addon" \
            || fail "odoo i18n export $addon failed"
        [ -s "$1/$addon.pot" ] || fail "odoo i18n export wrote nothing for $addon"
    done
}

pg_start || exit 1
trap cleanup EXIT
export PGHOST PGPORT PGUSER
if [ -z "$DB" ]; then make_database; fi
check_conditions
OUT="$(mktemp -d)"
export_to "$OUT"
if [ "$MODE" = export ]; then
    say "i18n: the .pot exported from $DB (a .pot whose strings did not change is kept)"
    "$PY" "$ROOT/scripts/i18n_po.py" update "$ROOT" "$OUT"
else
    "$PY" "$ROOT/scripts/i18n_po.py" check "$ROOT" "$OUT"
fi
