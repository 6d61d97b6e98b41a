#!/usr/bin/env bash
# Run CMD... against a fresh, private local AWS stack (moto, serialized).
#
#   scripts/with-local-stack.sh cargo test -p some-crate
#
# Ensures the venv (scripts/ensure-venv.sh), starts scripts/local_stack.py on a
# free port, waits (bounded) for READY, then runs CMD with:
#   KINCODE_AWS_ENDPOINT=http://127.0.0.1:PORT  (also AWS_ENDPOINT_URL)
#   AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
#   AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# AWS_SESSION_TOKEN / AWS_PROFILE unset, and the venv's bin/ first on PATH
# (so `python3` in CMD has boto3). The server is always stopped on
# exit; the exit status is CMD's. Server stderr goes to a temp log that is
# shown (tail) if startup fails or CMD fails. CMD runs in the foreground, so a
# SIGTERM sent to this script alone takes effect when CMD exits (Ctrl-C / a
# process-group signal stops both at once); if this script is SIGKILLed the
# server notices its parent is gone and exits within ~0.5 s.
# Env: LOCAL_STACK_READY_TIMEOUT (seconds, default 30).
#      LOCAL_STACK_TLS=1: the stack speaks TLS (https://) with a certificate of a CA of its
#      own, made for this run; KINCODE_LOCAL_CA_FILE (and AWS_CA_BUNDLE, for boto3) name that
#      CA's certificate, so clients take the real TLS path: handshake and certificate check.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$script_dir/ensure-venv.sh" local --print-path)"
timeout_s="${LOCAL_STACK_READY_TIMEOUT:-30}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kincode-local-stack.XXXXXX")"
server_pid=""

cleanup() {
    local rc=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    if [[ -s "$tmp/server.log" ]]; then
        echo "--- local stack log (tail) ---" >&2
        tail -n 40 "$tmp/server.log" >&2
        echo "------------------------------" >&2
    fi
}

: >"$tmp/server.out"
tls=()
if [[ "${LOCAL_STACK_TLS:-0}" == 1 ]]; then
    tls=(--tls-dir "$tmp/tls")
fi
"$venv/bin/python" "$script_dir/local_stack.py" --host 127.0.0.1 --port 0 --exit-with-parent \
    "${tls[@]}" >"$tmp/server.out" 2>"$tmp/server.log" </dev/null &
server_pid=$!

url=""
deadline=$((SECONDS + timeout_s))
while :; do
    if read -r tag u <"$tmp/server.out" 2>/dev/null && [[ "$tag" == READY ]]; then
        url="$u"
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "with-local-stack: server exited before READY" >&2
        show_log
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "with-local-stack: server not READY after ${timeout_s}s" >&2
        show_log
        exit 1
    fi
    sleep 0.05
done

# venv first on PATH, so `python3` in CMD has boto3/moto.
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export KINCODE_AWS_ENDPOINT="$url"
export AWS_ENDPOINT_URL="$url"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
if [[ ${#tls[@]} -gt 0 ]]; then
    export KINCODE_LOCAL_CA_FILE="$tmp/tls/ca.pem" AWS_CA_BUNDLE="$tmp/tls/ca.pem"
fi
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

set +e
"$@"
status=$?
set -e
if [[ $status -ne 0 ]]; then show_log; fi
exit "$status"
