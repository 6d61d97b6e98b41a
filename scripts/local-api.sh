# Sourced by scripts/contract-fuzz and scripts/load, under scripts/with-local-stack.sh:
#
#   start_local_api NAME [kincode-local arguments…]
#
# starts target/debug/kincode-local on a free port with a table and dev keys of its own, waits
# (bounded) for its READY line, and sets `base` (its URL) and `api_log` (its request log). It is
# stopped, and its files removed, when the calling script exits.
start_local_api() {
    local name="$1"
    shift
    api_work="$(mktemp -d "${TMPDIR:-/tmp}/kincode-$name.XXXXXX")"
    api_log="$api_work/gateway.log"
    target/debug/kincode-local --rie "$KINCODE_RIE" --port 0 --template template.yaml \
        --table "kincode-$name-$$" --keys-file "$api_work/keys.json" "$@" \
        >"$api_work/banner" 2>"$api_log" &
    api_pid=$!
    trap stop_local_api EXIT
    base=""
    for _ in $(seq 900); do
        base="$(sed -n 's/^READY //p' "$api_work/banner")"
        [[ -n "$base" ]] && return 0
        kill -0 "$api_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "kincode-local did not start" >&2
    cat "$api_log" >&2
    return 1
}

stop_local_api() {
    kill -INT "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    rm -rf "$api_work"
}
