#!/usr/bin/env bash
# Runs every test of the project and prints one summary:
#   pure     pytest on prepaid_core and tests/ (no Odoo needed)
#   odoo     the Odoo tests of every add-on, on a fresh database (--test-enable)
#   i18n     on that database: each .pot against a fresh export, each zh_CN.po against its .pot
#   e2e      the demo's whole stack on a fresh database (tests/e2e): reading -> deduction ->
#            alarm -> cut on a simulated meter -> portal recharge -> restore (a few minutes);
#            the same site on a local cluster with a node, a runner and the replica killed
#            (tests/e2e/test_cluster.py, scripts/cluster_stack.py: its own database)
#   ruff     lint and format check
#   pylint   pylint-odoo's mandatory checks on the add-ons
# Without Odoo 19 the odoo part is reported NOT RUN (never as passed) and does not fail the run.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

declare -a SUMMARY=()
TOTAL_PASSED=0
TOTAL_FAILED=0
record() {  # part status passed failed detail
    SUMMARY+=("$(printf '%-8s %-8s %7s %7s  %s' "$1" "$2" "$3" "$4" "$5")")
    [[ "$3" =~ ^[0-9]+$ ]] && TOTAL_PASSED=$((TOTAL_PASSED + $3))
    [[ "$4" =~ ^[0-9]+$ ]] && TOTAL_FAILED=$((TOTAL_FAILED + $4))
}

ensure_debian
HAVE_ODOO=0
if ensure_odoo; then HAVE_ODOO=1; else odoo_missing_message; fi
ensure_python

# --- pure ---------------------------------------------------------------------------------------
say "pure: pytest"
"$PY" -m pytest -q -p no:cacheprovider --junitxml="$LOCAL/pytest.xml" --ignore=tests/e2e \
    ${PYTEST_ARGS:-} tests
junit_counts() {  # passed failed skipped of a junit file
    "$PY" - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1, 0); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PYEOF
}
read -r p_pass p_fail p_skip < <(junit_counts "$LOCAL/pytest.xml")
if [ "$p_fail" = 0 ] && [ "$p_pass" -gt 0 ] && [ "$p_skip" = 0 ]; then st=ok; else st=FAILED; fi
[ "$p_skip" != 0 ] && p_fail=$((p_fail + p_skip))  # a skipped test hides a missing service
record pure "$st" "$p_pass" "$p_fail" "skipped: $p_skip"

# --- odoo ---------------------------------------------------------------------------------------
ADDONS=$(for m in addons/*/__manifest__.py; do basename "$(dirname "$m")"; done | paste -sd, -)
# Odoo modules the tests need beside the add-ons (their own tests are not run):
# payment_demo, payment_asiapay (Alipay, WeChat Pay) and payment_custom (wire transfer) are the
# payment providers the portal's recharge tests pay through
TEST_MODULES="payment_demo,payment_asiapay,payment_custom"
if [ "$HAVE_ODOO" = 1 ] && pg_start; then
    trap pg_stop EXIT
    DB="prepaid_test_$(date +%s)_$$"
    TAGS=$(echo "$ADDONS" | sed 's/\([^,]*\)/\/\1/g')
    LOG="$LOCAL/odoo-test.log"
    say "odoo: installing $ADDONS on a fresh database $DB and running their tests"
    "$PY" -m odoo -c "$ROOT/odoo.conf" --addons-path="$(addons_path)" $(db_args) -d "$DB" \
        -i "$ADDONS,$TEST_MODULES" --test-enable --test-tags="$TAGS" --stop-after-init --http-port="${TEST_HTTP_PORT:-8169}" \
        --log-level=test --max-cron-threads=0 >"$LOG" 2>&1
    rc=$?
    read -r o_total o_fail < <("$PY" - "$LOG" <<'PYEOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.findall(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database", text)
if not m:
    print(0, 1)
else:
    f, e, t = map(int, m[-1])
    print(t, f + e)
PYEOF
)
    problems=""
    grep -q "websocket-client module is not installed" "$LOG" && problems+="tours skipped (websocket-client missing); "
    grep -qiE "odoo\.addons\.(prepaid_[a-z_]+|meter_gateway)\.tests[^ ]* .*skip" "$LOG" && problems+="tests skipped; "
    grep -qE "ERROR $DB odoo.modules.(loading|registry)|Failed to load registry|CRITICAL" "$LOG" && problems+="errors while loading modules; "
    o_pass=$((o_total - o_fail))
    [ -n "$problems" ] && [ "$o_fail" = 0 ] && o_fail=1
    if [ $rc = 0 ] && [ "$o_fail" = 0 ] && [ "$o_total" -gt 0 ]; then st=ok; else st=FAILED; [ "$o_fail" = 0 ] && o_fail=1; fi
    record odoo "$st" "$o_pass" "$o_fail" "${problems}log: .local/odoo-test.log"
    [ "$st" = ok ] || grep -E "^(FAIL|ERROR):|ERROR $DB |Traceback" -A 8 "$LOG" | tail -n 80

    # --- i18n: on the database the tests installed (no demo data, English only) ---------------
    say "i18n: each .pot against a fresh export by Odoo, each zh_CN.po against its .pot"
    bash scripts/i18n.sh check "$DB" | tee "$LOCAL/i18n-check.txt"
    i_rc=${PIPESTATUS[0]}
    i_pass=$(grep -cE '^[a-z_]+: ok$' "$LOCAL/i18n-check.txt")
    i_fail=$(grep -cE '^[a-z_]+: [0-9]+ problem' "$LOCAL/i18n-check.txt")
    if [ "$i_rc" = 0 ] && [ "$i_fail" = 0 ] && [ "$i_pass" -gt 0 ]; then st=ok; else st=FAILED; [ "$i_fail" = 0 ] && i_fail=1; fi
    record i18n "$st" "$i_pass" "$i_fail" "add-ons checked; problems: .local/i18n-check.txt"
    dropdb --if-exists "$DB" >/dev/null 2>&1 || true
else
    record odoo "NOT RUN" "-" "-" "Odoo 19 or PostgreSQL unavailable: add-on tests were not run"
    record i18n "NOT RUN" "-" "-" "Odoo 19 or PostgreSQL unavailable: the .pot were not checked"
fi

# --- e2e ----------------------------------------------------------------------------------------
if [ "$HAVE_ODOO" = 1 ] && pg_start; then
    trap pg_stop EXIT
    say "e2e: the demo's whole stack on a fresh database (a few minutes)"
    rm -f "$LOCAL/e2e.xml"
    E2E_DB_PREFIX="${E2E_DB_PREFIX:-prepaid_e2e}" timeout 2700 "$PY" -m pytest -q -s \
        -p no:cacheprovider --junitxml="$LOCAL/e2e.xml" tests/e2e
    read -r e_pass e_fail e_skip < <(junit_counts "$LOCAL/e2e.xml")
    [ "$e_skip" != 0 ] && e_fail=$((e_fail + e_skip))
    if [ "$e_fail" = 0 ] && [ "$e_pass" -gt 0 ]; then st=ok; else st=FAILED; fi
    record e2e "$st" "$e_pass" "$e_fail" "demo stack: logs under pytest's tmp dir (site*)"
else
    record e2e "NOT RUN" "-" "-" "Odoo 19 or PostgreSQL unavailable: the end-to-end test was not run"
fi

# --- ruff ---------------------------------------------------------------------------------------
say "ruff"
r_fail=0
"$PY" -m ruff check . || r_fail=1
"$PY" -m ruff format --check . || r_fail=1
record ruff "$([ $r_fail = 0 ] && echo ok || echo FAILED)" "$((1 - r_fail))" "$r_fail" "ruff check + ruff format --check"

# --- pylint-odoo --------------------------------------------------------------------------------
say "pylint-odoo (mandatory checks)"
l_fail=0
(cd "$LOCAL" && "$PY" -m pylint --rcfile="$ROOT/.pylintrc-mandatory" $(ls -d "$ROOT"/addons/*/ | xargs -I{} sh -c 'test -f {}__manifest__.py && echo {}')) || l_fail=1
record pylint "$([ $l_fail = 0 ] && echo ok || echo FAILED)" "$((1 - l_fail))" "$l_fail" "add-ons: $ADDONS"

# --- summary ------------------------------------------------------------------------------------
echo
echo "================================ summary ================================"
printf '%-8s %-8s %7s %7s  %s\n' part status passed failed detail
printf '%s\n' "${SUMMARY[@]}"
echo "========================================================================="
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" = 0 ]
