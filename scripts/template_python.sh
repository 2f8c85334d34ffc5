#!/usr/bin/env bash
# Prints the path of a working interpreter for the Python runtime infra/template.yaml names:
#   scripts/template_python.sh            the template's one pythonX.Y runtime
#   scripts/template_python.sh python3.12 that runtime
# Looks on PATH (a pyenv shim for a version that is not selected fails, so each candidate is run),
# then under pyenv's versions (newest patch release first). Exits 1 with a message naming the
# runtime when none is found, or when the template names several Python runtimes.
# Used by scripts/install.sh (.venv runs what Lambda runs) and scripts/sam_build.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
TEMPLATE=${GOODSDROP_TEMPLATE:-$PWD/infra/template.yaml}

template_runtime() {
    local runtimes count
    runtimes=$(grep -oE '^\s+Runtime: python3\.[0-9]+' "$TEMPLATE" | awk '{print $2}' | sort -u)
    count=$(printf '%s\n' "$runtimes" | grep -c . || true)
    if [ "$count" -ne 1 ]; then
        echo "template_python: $TEMPLATE must name exactly one Python runtime, found: ${runtimes:-none}" >&2
        return 1
    fi
    printf '%s\n' "$runtimes"
}

# A candidate counts if it runs and reports the wanted X.Y.
works() {
    local candidate=$1 version=$2
    [ -x "$candidate" ] &&
        [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]
}

runtime=${1:-$(template_runtime)}
version=${runtime#python}
if candidate=$(command -v "$runtime" 2>/dev/null) && works "$candidate" "$version"; then
    "$candidate" -c 'import sys; print(sys.executable)'  # the interpreter itself, not a shim
    exit 0
fi
root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
mapfile -t candidates < <(printf '%s\n' "$root"/versions/"$version"{,.*} | sort -rV)
for candidate in "${candidates[@]}"; do
    if works "$candidate/bin/$runtime" "$version"; then
        echo "$candidate/bin/$runtime"
        exit 0
    fi
done
echo "template_python: the template's runtime is $runtime, but no working $runtime was found on PATH or under" \
     "$root/versions/$version.*; install Python $version (e.g. \`pyenv install $version\`) and run make install again" >&2
exit 1
