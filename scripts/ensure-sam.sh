#!/usr/bin/env bash
# Ensure the Python venv holding AWS SAM CLI, cfn-lint and cargo-lambda (with
# zig, via the ziglang wheel) exists and matches scripts/requirements-sam.txt.
#
# Separate from the moto venv of ensure-venv.sh: aws-sam-cli pins boto3,
# botocore and click to versions that differ from moto's set.
#
# Idempotent: the venv lives in <repo>/.local/sam-venv and carries a stamp
# (sha256 of the requirements file + interpreter version). When the stamp
# matches, this returns immediately. When it does not (first run, requirements
# changed, interpreter changed, or a previous install was interrupted), the
# venv is rebuilt from scratch so its contents are exactly the pinned set.
#
# Prints one status line on stderr. Prints the venv path on stdout only with
# --print-path. Honours $PYTHON (default: python3).
#
# Use: put "$venv/bin" first on PATH so `sam`, `cfn-lint`, `cargo lambda`
# (cargo-lambda) and the `python3 -m ziglang` fallback cargo-zigbuild uses for
# zig are all found.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
local_dir="$repo_root/.local"
venv="$local_dir/sam-venv"
req="$script_dir/requirements-sam.txt"
stamp="$venv/.requirements-stamp"
python="${PYTHON:-python3}"

print_path=0
if [[ "${1:-}" == "--print-path" ]]; then print_path=1; fi

want_stamp() {
    printf '%s %s\n' \
        "$(sha256sum "$req" | cut -d' ' -f1)" \
        "$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')"
}

up_to_date() {
    [[ -x "$venv/bin/python" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$1" ]]
}

mkdir -p "$local_dir"
want="$(want_stamp)"

if ! up_to_date "$want"; then
    # Serialize concurrent callers; re-check once we hold the lock.
    exec 9>"$local_dir/sam-venv.lock"
    flock 9
    if ! up_to_date "$want"; then
        start=$SECONDS
        rm -f "$stamp"
        "$python" -m venv --clear "$venv"
        log="$local_dir/sam-venv-install.log"
        if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install \
                --quiet --no-input -r "$req" >"$log" 2>&1; then
            echo "ensure-sam: pip install failed; see $log" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        printf '%s\n' "$want" >"$stamp"
        echo "ensure-sam: built $venv in $((SECONDS - start))s" >&2
    else
        echo "ensure-sam: $venv up to date" >&2
    fi
    flock -u 9
else
    echo "ensure-sam: $venv up to date" >&2
fi

if [[ $print_path == 1 ]]; then echo "$venv"; fi
