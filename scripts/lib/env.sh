# shellcheck shell=bash
# The project environment, shared by scripts/test and scripts/demo (sourced, not run):
#   1. uv: used from PATH when new enough, else installed with pip into .venv-tools/;
#   2. `uv sync --locked`: .venv exactly as uv.lock says.
# Afterwards $UV names the uv to run commands with (`"$UV" run --no-sync ...`).
# Expects ROOT (the repository) and the functions say and die from the caller.

UV_VERSION=0.13.9              # the uv that wrote uv.lock; older ones may not read it
UV_BOOTSTRAP=$ROOT/.venv-tools # where pip puts uv when PATH has none (in .gitignore)

version_at_least() { # $1 >= $2, as version numbers
    [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1) == "$2" ]]
}

find_uv() {
    local uv version
    for uv in "$(command -v uv || true)" "$UV_BOOTSTRAP/bin/uv"; do
        [[ -n $uv && -x $uv ]] || continue
        version=$("$uv" --version 2>/dev/null | awk '{print $2}') || continue
        if version_at_least "$version" "$UV_VERSION"; then
            printf '%s\n' "$uv"
            return 0
        fi
    done
    return 1
}

if ! UV=$(find_uv); then
    say "uv: installing uv $UV_VERSION into .venv-tools/ with pip"
    command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer"
    python3 -m pip --version >/dev/null 2>&1 ||
        die "python3 has no pip: install it (Debian: apt-get install python3-pip) and retry"
    # --target: a private directory, so neither root nor Debian's externally-managed
    # system Python (PEP 668) stands in the way.
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --root-user-action=ignore --upgrade --target "$UV_BOOTSTRAP" "uv==$UV_VERSION"
    UV=$(find_uv) || die "uv was installed into $UV_BOOTSTRAP but does not run"
fi
say "uv: $UV ($("$UV" --version))"

say "uv sync --locked"
"$UV" sync --locked
