#!/usr/bin/env bash
# `sam build` of infra/template.yaml without a container, like a SAM user runs it:
#   scripts/sam_build.sh [BUILD_DIR]        (default .aws-sam/build)
# The functions' python3.X runtime must be on PATH for SAM's Python builder (it only copies the
# handlers); this finds it (PATH, then pyenv's versions) and puts it first. The common layer is
# built by layers/common/Makefile (wheels for Lambda's platform, whatever the host's Python).
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

# A working interpreter named python3.X (a pyenv shim for a version that is not selected fails).
find_python() {
    local name=$1 candidate
    if candidate=$(command -v "$name") && "$candidate" -c 'import sys' >/dev/null 2>&1; then
        dirname "$candidate"
        return 0
    fi
    local root
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for candidate in "$root"/versions/"${name#python}".*/bin/"$name" "$root"/versions/"${name#python}"/bin/"$name"; do
        if [ -x "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
            dirname "$candidate"
            return 0
        fi
    done
    return 1
}

runtimes=$(grep -oE '^\s+Runtime: python3\.[0-9]+' "$TEMPLATE" | awk '{print $2}' | sort -u)
for runtime in $runtimes; do
    if ! dir=$(find_python "$runtime"); then
        echo "sam_build: no $runtime interpreter found (PATH or pyenv); SAM's Python builder needs one" >&2
        exit 1
    fi
    PATH=$dir:$PATH
done
export PATH SAM_CLI_TELEMETRY=0

exec "$SAM" build --template-file "$TEMPLATE" --build-dir "$BUILD_DIR"
