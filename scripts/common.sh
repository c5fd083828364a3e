# Shared helpers of the project's scripts: finding Odoo 19, the private PostgreSQL cluster.
# Sourced, not run.  Everything the scripts create lives in .local/ (ignored by git).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
PY="${PYTHON:-python3}"
ODOO_UPSTREAM="${ODOO_UPSTREAM:-https://github.com/odoo/odoo.git}"
export PGPORT="${PGPORT:-54329}"
mkdir -p "$LOCAL"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[33m!!  %s\033[0m\n' "$*" >&2; }

odoo_ok() {
    "$PY" -c 'import odoo.release as r, sys; sys.exit(r.version_info[:2] != (19, 0))' 2>/dev/null
}

odoo_requirements() {
    # Odoo's own pins, used as pip constraints so nothing we install moves them
    "$PY" - <<'PYEOF' 2>/dev/null
import os, odoo.release
root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.release.__file__)))
path = os.path.join(root, "requirements.txt")
print(path if os.path.exists(path) else "")
PYEOF
}

install_odoo_from() {
    local src="$1"
    say "Installing Odoo 19 from $src (editable, with its requirements)"
    "$PY" -m pip install -q -r "$src/requirements.txt" && "$PY" -m pip install -q -e "$src"
}

# Odoo 19: importable, else $ODOO_SRC, else a download from upstream when the network allows.
ensure_odoo() {
    odoo_ok && return 0
    if [ -n "${ODOO_SRC:-}" ]; then
        [ -f "$ODOO_SRC/odoo/release.py" ] || { warn "ODOO_SRC=$ODOO_SRC is not an Odoo source tree"; return 1; }
        install_odoo_from "$ODOO_SRC" && odoo_ok && return 0
    fi
    if [ ! -d "$LOCAL/odoo/.git" ]; then
        say "Odoo 19 not found: trying a shallow clone of upstream 19.0 into .local/odoo"
        timeout 900 git clone -q --depth 1 --branch 19.0 "$ODOO_UPSTREAM" "$LOCAL/odoo" 2>/dev/null \
            || { rm -rf "$LOCAL/odoo"; return 1; }
    fi
    install_odoo_from "$LOCAL/odoo" && odoo_ok
}

odoo_missing_message() {
    cat >&2 <<'MSG'
Odoo 19 is not installed for this Python, and none could be downloaded.
Install Odoo 19.0 Community from upstream (https://github.com/odoo/odoo, branch 19.0):
    git clone --depth 1 --branch 19.0 https://github.com/odoo/odoo.git ~/odoo19
    pip install -r ~/odoo19/requirements.txt && pip install -e ~/odoo19
or point the scripts at your own Odoo 19 source tree:
    ODOO_SRC=/path/to/odoo make demo
MSG
}

addons_path() {
    "$PY" - "$ROOT/addons" <<'PYEOF'
import os, sys, odoo.addons
paths = [p for p in odoo.addons.__path__]
import odoo.release
root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.release.__file__)))
if os.path.isdir(os.path.join(root, "addons")):
    paths.append(os.path.join(root, "addons"))
paths.append(sys.argv[1])
print(",".join(dict.fromkeys(os.path.abspath(p) for p in paths if os.path.isdir(p))))
PYEOF
}

# --- Debian packages (only as root) ---------------------------------------------------------
ensure_debian() {
    local missing=()
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v wkhtmltopdf >/dev/null 2>&1 || missing+=(wkhtmltopdf)
    # Chinese in the PDFs wkhtmltopdf prints (receipts, labels); pdftotext/pdffonts read
    # them back in the tests; msgfmt checks the translations
    fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
    command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
    command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    # the load balancer of the local cluster (scripts/cluster.sh)
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "Installing Debian packages: ${missing[*]}"
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
            || warn "apt-get install ${missing[*]} failed"
    else
        warn "missing system packages: ${missing[*]} (install them with your package manager)"
    fi
}

# --- Python packages --------------------------------------------------------------------------
ensure_python() {
    local constraints=() req
    req="$(odoo_requirements)"
    [ -n "$req" ] && constraints=(-c "$req")
    if ! "$PY" -c 'import prepaid_core, pytest, hypothesis, ruff, pylint_odoo, websocket' 2>/dev/null \
        || [ "$ROOT/requirements.txt" -nt "$LOCAL/.pip-stamp" ] || [ "$ROOT/pyproject.toml" -nt "$LOCAL/.pip-stamp" ]; then
        say "Installing Python requirements"
        "$PY" -m pip install -q -r "$ROOT/requirements.txt" "${constraints[@]}" 2>&1 | grep -v '^WARNING' || true
        "$PY" -m pip install -q -e "$ROOT" "${constraints[@]}" 2>&1 | grep -v '^WARNING' || true
        touch "$LOCAL/.pip-stamp"
    fi
}

# --- PostgreSQL -------------------------------------------------------------------------------
# Uses the server named by PGHOST when set; otherwise a private cluster in .local/pg,
# whose superuser role is "odoo" (Odoo refuses the "postgres" role).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The private cluster's settings: sized for bulk readings on a small machine (a batch's
# hash joins and temp tables stay in memory, checkpoints are rare).  Durability stays on
# (synchronous_commit, fsync: PostgreSQL's defaults): what Odoo answered as stored (a
# reading acknowledged to its meter's broker, a payment notification) survives a crash.
# PG_OPTIONS set beforehand replaces them (benchmarks/bench_capacity.py: a 24 GB server's).
PG_OPTIONS="${PG_OPTIONS:-"-c max_connections=200 -c shared_buffers=1GB \
-c work_mem=32MB -c temp_buffers=64MB -c maintenance_work_mem=256MB -c max_wal_size=4GB \
-c checkpoint_timeout=15min"}"

pg_start() {
    if [ -n "${PGHOST:-}" ] && [ "${PRIVATE_PG:-}" != 1 ]; then
        export PGUSER="${PGUSER:-odoo}"
        return 0
    fi
    local bin data="$LOCAL/pg/data" run="$LOCAL/pg/run"
    bin="$(pg_bin)"
    [ -n "$bin" ] || { warn "PostgreSQL server binaries not found"; return 1; }
    mkdir -p "$LOCAL/pg" "$run"
    [ "$(id -u)" = 0 ] && chown -R postgres "$LOCAL/pg"
    if [ ! -f "$data/PG_VERSION" ]; then
        say "Creating a private PostgreSQL cluster in .local/pg"
        as_pg_owner "$bin/initdb" -D "$data" -U odoo --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    export PGHOST="$run" PGUSER=odoo PRIVATE_PG=1
    if ! as_pg_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg_owner "$bin/pg_ctl" -D "$data" -l "$LOCAL/pg/server.log" -w -t 60 \
            -o "-k $run -p $PGPORT -c listen_addresses='' $PG_OPTIONS" start >/dev/null \
            || { warn "PostgreSQL did not start: see .local/pg/server.log"; return 1; }
        PG_STARTED=1
    fi
}

pg_stop() {
    [ "${PG_STARTED:-}" = 1 ] || return 0
    as_pg_owner "$(pg_bin)/pg_ctl" -D "$LOCAL/pg/data" -m fast stop >/dev/null 2>&1 || true
}

db_args() { echo "--db_host=$PGHOST --db_port=$PGPORT --db_user=$PGUSER"; }
