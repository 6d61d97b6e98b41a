#!/usr/bin/env bash
# Ensure one of the project's pinned Python venvs exists and matches its requirements:
#
#   scripts/ensure-venv.sh local [--print-path]   # moto: the local AWS stack
#                                                 #   (.local/venv, requirements-local.txt)
#   scripts/ensure-venv.sh sam   [--print-path]   # AWS SAM CLI (with the Lambda Runtime
#                                                 #   Interface Emulator), cfn-lint
#                                                 #   (.local/sam-venv, requirements-sam.txt)
#   scripts/ensure-venv.sh contract [--print-path] # schemathesis and openapi-spec-validator
#                                                 #   (.local/contract-venv,
#                                                 #   requirements-contract.txt)
#
# Separate venvs because aws-sam-cli pins boto3, botocore and click differently from moto,
# and the contract tools need neither.
#
# Idempotent: each venv carries a stamp (sha256 of its requirements file + interpreter
# version). When the stamp matches, this returns immediately. When it does not (first run,
# requirements changed, interpreter changed, or a previous install was interrupted), the venv
# is rebuilt from scratch so its contents are exactly the pinned set.
#
# Prints one status line on stderr. Prints the venv path on stdout only with --print-path.
# Honours $PYTHON (default: python3).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
local_dir="$repo_root/.local"
case "${1:-}" in
    local) venv="$local_dir/venv" ;;
    sam) venv="$local_dir/sam-venv" ;;
    contract) venv="$local_dir/contract-venv" ;;
    *) echo "usage: $0 local|sam|contract [--print-path]" >&2; exit 2 ;;
esac
name="$1"
shift
req="$script_dir/requirements-$name.txt"
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
    exec 9>"$venv.lock"
    flock 9
    if ! up_to_date "$want"; then
        start=$SECONDS
        rm -f "$stamp"
        "$python" -m venv --clear "$venv"
        log="$venv-install.log"
        if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install \
                --quiet --no-input -r "$req" >"$log" 2>&1; then
            echo "ensure-venv $name: pip install failed; see $log" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        printf '%s\n' "$want" >"$stamp"
        echo "ensure-venv $name: built $venv in $((SECONDS - start))s" >&2
    else
        echo "ensure-venv $name: $venv up to date" >&2
    fi
    flock -u 9
else
    echo "ensure-venv $name: $venv up to date" >&2
fi

if [[ $print_path == 1 ]]; then echo "$venv"; fi
