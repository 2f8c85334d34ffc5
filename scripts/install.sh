#!/usr/bin/env bash
# Installs what the local stack needs on a fresh Debian 12 machine; idempotent and quiet.
#   - apt: redis-server, redis-tools, mariadb-server, mariadb-client, wrk, chromium, shellcheck (and
#     Java 17, Maven, python3-venv if missing), without letting apt start the distribution's own services;
#   - .venv with requirements.txt on the Python version of the template's Runtime (pythonX.Y, found on
#     PATH or under pyenv by scripts/template_python.sh; rebuilt when it runs another version;
#     re-run when requirements.txt changes; hash in .venv);
#   - the Kafka jars of infra/kafka/pom.xml into .stack/kafka/libs (re-run when the pom changes);
#   - .venv-sam with infra/requirements-sam.txt (SAM CLI, cfn-lint; kept apart from .venv), and
#     the apt package for shell linting, for `make lint` and `make build`.
# Prints nothing on success; on failure prints the failing step's output and exits non-zero.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STACK_DIR=${GOODSDROP_STACK_DIR:-$ROOT/.stack}
VENV=$ROOT/.venv
LOG=$(mktemp -t goodsdrop-install.XXXXXX)
POLICY=/usr/sbin/policy-rc.d
POLICY_ADDED=0
cleanup() {
    rm -f "$LOG"
    if [ "$POLICY_ADDED" -eq 1 ]; then as_root rm -f "$POLICY"; fi
}
trap cleanup EXIT

# Run a step with its output in $LOG; on failure show it and stop.
step() {
    local what=$1
    shift
    if ! "$@" >"$LOG" 2>&1; then
        echo "install: $what failed:" >&2
        cat "$LOG" >&2
        exit 1
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# ---- system packages -------------------------------------------------------------------------
missing=()
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)  # `redis-cli --cluster create` forms the CLUSTER=1 cluster
have mariadbd || missing+=(mariadb-server)
have mariadb || missing+=(mariadb-client)
have wrk || missing+=(wrk)
have shellcheck || missing+=(shellcheck)
have chromium || missing+=(chromium)  # the storefront's end-to-end test drives it headless
have java || missing+=(openjdk-17-jre-headless)
have mvn || missing+=(maven)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

apt_install() {
    # Keep apt from starting the distribution's redis/mariadb services (they would take 6379/3306
    # and run forever); ours run on other ports from .stack/. Standard policy-rc.d convention;
    # removed again on exit.
    if [ ! -e "$POLICY" ]; then
        POLICY_ADDED=1
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY" >/dev/null
        as_root chmod 755 "$POLICY"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

if [ "${#missing[@]}" -gt 0 ]; then
    step "apt-get install ${missing[*]}" apt_install "${missing[@]}"
fi

# ---- Python virtualenv, on the Python the template's functions run on (Runtime: pythonX.Y) -------
if ! python=$(scripts/template_python.sh); then
    echo "install: .venv must run the template's Python runtime (infra/template.yaml); see above" >&2
    exit 1
fi
want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
have_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ -n "$have_version" ] && [ "$have_version" != "$want" ]; then
    # A venv of another Python (or a link to one): replaced, so tests and the runtime run on $want.
    echo "install: .venv runs Python $have_version, the template says $want: rebuilding it" >&2
    rm -rf "$VENV"
elif [ -L "$VENV" ] && [ ! -e "$VENV" ]; then
    rm -f "$VENV"  # a link to a venv that is gone
fi
req_hash=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
    step "$python -m venv .venv" "$python" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
    step "pip install -r requirements.txt" \
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
    echo "$req_hash" >"$VENV/.requirements.sha256"
fi

# ---- deploy tooling: SAM CLI and cfn-lint in their own virtualenv -------------------------------
SAM_VENV=$ROOT/.venv-sam
sam_hash=$(sha256sum infra/requirements-sam.txt | cut -d' ' -f1)
if [ ! -x "$SAM_VENV/bin/python" ]; then
    step "python3 -m venv .venv-sam" python3 -m venv "$SAM_VENV"
fi
if [ "$(cat "$SAM_VENV/.requirements.sha256" 2>/dev/null)" != "$sam_hash" ]; then
    step "pip install -r infra/requirements-sam.txt" \
        "$SAM_VENV/bin/python" -m pip install -q --disable-pip-version-check -r infra/requirements-sam.txt
    echo "$sam_hash" >"$SAM_VENV/.requirements.sha256"
fi

# ---- Kafka jars (same stamp as goodsdrop_local.stack.fetch_kafka_libs) -------------------------
pom=infra/kafka/pom.xml
libs=$STACK_DIR/kafka/libs
pom_hash=$(sha256sum "$pom" | cut -d' ' -f1)
if [ "$(cat "$libs/.pom.sha256" 2>/dev/null)" != "$pom_hash" ]; then
    rm -rf "$libs.new"
    mkdir -p "$(dirname "$libs")"
    step "mvn dependency:copy-dependencies ($pom)" \
        mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs.new"
    echo "$pom_hash" >"$libs.new/.pom.sha256"
    rm -rf "$libs"
    mv "$libs.new" "$libs"
fi
