#!/usr/bin/env bash
# `sam build` of infra/template.yaml without a container, like a SAM user runs it:
#   scripts/sam_build.sh [BUILD_DIR]        (default .aws-sam/build)
# The functions' python3.X runtime must be on PATH for SAM's Python builder (it only copies the
# handlers); scripts/template_python.sh finds it (PATH, then pyenv's versions) and it goes first.
# The common layer is built by layers/common/Makefile (wheels for Lambda's platform, whatever the
# host's Python).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${1:-$ROOT/.aws-sam/build}
SAM=$ROOT/.venv-sam/bin/sam
TEMPLATE=$ROOT/infra/template.yaml

if [ ! -x "$SAM" ]; then
    echo "sam_build: $SAM is missing; run scripts/install.sh (make install)" >&2
    exit 1
fi

runtimes=$(grep -oE '^\s+Runtime: python3\.[0-9]+' "$TEMPLATE" | awk '{print $2}' | sort -u)
for runtime in $runtimes; do
    if ! python=$("$ROOT/scripts/template_python.sh" "$runtime"); then
        echo "sam_build: SAM's Python builder needs a $runtime interpreter" >&2
        exit 1
    fi
    PATH=$(dirname "$python"):$PATH
done
export PATH SAM_CLI_TELEMETRY=0

exec "$SAM" build --template-file "$TEMPLATE" --build-dir "$BUILD_DIR"
