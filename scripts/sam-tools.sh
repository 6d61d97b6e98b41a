# Sourced by scripts/test, scripts/run and scripts/bench: the pinned SAM venv, the Lambda
# Runtime Interface Emulator it carries (exported as KINCODE_RIE), and `sam_tools CMD…`, which
# runs CMD with that venv's bin/ first (it has its own python3, so only SAM commands see it).
sam_venv="$(scripts/ensure-venv.sh sam --print-path)"
KINCODE_RIE="$(ls "$sam_venv"/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-x86_64 | head -n 1)"
export KINCODE_RIE
# (scripts/test's lint-while-building variables are cleared: release builds are rustc's own.)
sam_tools() { env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS PATH="$sam_venv/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$@"; }
