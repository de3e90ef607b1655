#!/usr/bin/env bash
# An NDIF server (the `ndif` package, 0.1.2) on 127.0.0.1, on the CPU, serving one model
# folder: Redis (Debian's redis-server), an S3 store (moto's server, from PyPI), a Ray head,
# ndif's controller and model actor, and ndif's API (gunicorn). For tests and demos only.
#
#   scripts/ndif_local.sh install            # the venv ($NDIF_VENV, default .ndif-venv; make ndif-deps)
#   scripts/ndif_local.sh start FOLDER DIR   # prints the API URL; state and logs in DIR
#   scripts/ndif_local.sh stop DIR           # stops exactly the processes `start` began
#
# ndif places models on GPUs; scripts/ndif_local/sitecustomize.py (loaded only here, with
# NDIF_LOCAL_CPU=1) replaces its CUDA calls and two nnsight/transformers version mismatches
# with CPU stand-ins; docs/scale.md lists them. The Ray head declares one GPU so that ndif's
# controller (which manages GPU nodes only) places the model.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
# NDIF_VENV=system: ndif is importable by the machine's python3 (a GPU machine's image)
NDIF_VENV="${NDIF_VENV:-$REPO/.ndif-venv}"
if [ "$NDIF_VENV" = system ]; then PY=python3; else PY="$NDIF_VENV/bin/python"; fi
# NDIF_LOCAL_GPU=1: the machine has GPUs; ndif places the model on one, unpatched
NDIF_LOCAL_GPU="${NDIF_LOCAL_GPU:-0}"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 "$limit"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "ndif_local: $what did not come up in ${limit}s (logs in $DIR)" >&2
    return 1
}

install() {
    [ "$NDIF_VENV" != system ] || { echo "ndif_local: NDIF_VENV=system installs nothing" >&2; exit 1; }
    if ! command -v redis-server >/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
        else
            echo "ndif_local needs Debian's redis-server: sudo apt-get install -y redis-server" >&2
            exit 1
        fi
    fi
    # The server venv sits on the project's venv (its site-packages are added by a .pth
    # file): the same torch, nnsight and transformers, so client and server run one nnsight
    # and torch is not downloaded twice. It holds only what ndif adds (Ray, moto, the API's
    # web stack; pinned in scripts/ndif_local/constraints.txt), and its own copies shadow the
    # project's where ndif needs other versions (python-dateutil). ndif 0.1.2 declares
    # Python >= 3.12 but its code runs on 3.11 (the CPU torch wheel pinned is for 3.11).
    local project="${NDIF_PROJECT_VENV:-$REPO/.venv}"
    [ -x "$project/bin/python" ] || { echo "ndif_local: no project venv at $project (make install)" >&2; exit 1; }
    local purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
    rm -rf "$NDIF_VENV"
    "$project/bin/python" -m venv "$NDIF_VENV"
    local theirs ours
    theirs="$("$project/bin/python" -c "$purelib")"
    ours="$("$PY" -c "$purelib")"
    echo "import site; site.addsitedir('$theirs')" > "$ours/_project_venv.pth"
    # the project's pins, less those the server venv pins otherwise (its own file wins: the
    # project's sweep extra pins Ray's dependencies at other versions than the server's Ray)
    local theirs_names
    theirs_names="$(grep -o -E '^[A-Za-z0-9_.-]+==' "$HERE/ndif_local/constraints.txt" | sed 's/==$//' | paste -sd '|')"
    grep -v -i -E "^(python-dateutil|${theirs_names})==" "$REPO/constraints.txt" > "$NDIF_VENV/pins.txt"
    "$PY" -m pip install --quiet --disable-pip-version-check --ignore-requires-python \
        -c "$NDIF_VENV/pins.txt" -c "$HERE/ndif_local/constraints.txt" \
        "ndif[api,ray]==0.1.2" "moto[server]"
    touch "$NDIF_VENV/.ndif-installed"
}

start() {
    # its own session (setsid execs in place): `stop` ends the whole session, Ray's daemons
    # and workers included (they rename themselves, so no name or environment marker finds
    # them all)
    if [ "$(ps -o sid= $$ | tr -d ' ')" != "$$" ]; then exec setsid --wait bash "$0" start "$@"; fi
    [ "$(ps -o sid= $$ | tr -d ' ')" = "$$" ] || { echo "ndif_local: no session of its own" >&2; exit 1; }
    local folder
    folder="$(cd "$1" && pwd)"
    DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
    if [ "$NDIF_VENV" != system ] && [ ! -f "$NDIF_VENV/.ndif-installed" ]; then
        echo "no ndif venv at $NDIF_VENV: run $0 install" >&2; exit 1
    fi
    local redis_port s3_port api_port gcs_port client_port dash_port
    redis_port=$(free_port); s3_port=$(free_port); api_port=$(free_port)
    gcs_port=$(free_port); client_port=$(free_port); dash_port=$(free_port)
    # Ray's unix sockets live under its temp dir: keep the path short
    local ray_tmp
    ray_tmp="$(mktemp -d /tmp/ndif-ray-XXXXXX)"
    echo "$ray_tmp" > "$DIR/ray_tmp"
    echo $$ > "$DIR/session"
    [ "$NDIF_VENV" = system ] || export PATH="$NDIF_VENV/bin:$PATH"
    export PYTHONPATH="$HERE/ndif_local${PYTHONPATH:+:$PYTHONPATH}" NDIF_LOCAL_COMPAT=1
    [ "$NDIF_LOCAL_GPU" = 1 ] || export NDIF_LOCAL_CPU=1
    export GRPC_ENABLE_FORK_SUPPORT=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
    # a local test server on 127.0.0.1: no token (~/.ray/auth_token is shared by every Ray on
    # this home, and one written by another cluster splits this one from its own drivers)
    export RAY_AUTH_MODE=disabled
    export NDIF_HOME="$DIR/home" NDIF_REDIS_URL="redis://127.0.0.1:$redis_port"
    export NDIF_OBJECT_STORE_URL="http://127.0.0.1:$s3_port"
    export NDIF_API_URL="http://127.0.0.1:$api_port" NDIF_API_PORT="$api_port"
    export NDIF_RAY_ADDRESS="ray://127.0.0.1:$client_port" NDIF_RAY_HEAD_PORT="$gcs_port"
    export NDIF_DEFAULT_DTYPE="${NDIF_DEFAULT_DTYPE:-float32}" NDIF_SERVICE=ndif_local
    mkdir -p "$NDIF_HOME"

    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        > "$DIR/redis.log" 2>&1 & echo $! > "$DIR/redis.pid"
    moto_server -H 127.0.0.1 -p "$s3_port" > "$DIR/s3.log" 2>&1 & echo $! > "$DIR/s3.pid"
    wait_for 30 redis redis-cli -p "$redis_port" ping
    wait_for 60 "S3 (moto)" curl -sf "http://127.0.0.1:$s3_port/"

    local memory=$((8 << 30)) resources gpus
    if [ "$NDIF_LOCAL_GPU" = 1 ]; then  # the node's own GPUs and their memory
        resources="$("$PY" -m ndif.services.ray.resources --head)"; gpus=()
    else  # one declared GPU: ndif's controller places models on GPU nodes only
        resources="{\"head\": 10, \"cuda_memory_bytes\": $memory, \"cpu_memory_bytes\": $memory}"
        gpus=(--num-gpus=1)
    fi
    "$PY" -m ray.scripts.scripts start --head --node-ip-address=127.0.0.1 --port="$gcs_port" \
        --ray-client-server-port="$client_port" --num-cpus=4 "${gpus[@]}" --resources="$resources" \
        --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" \
        --temp-dir="$ray_tmp" --disable-usage-stats > "$DIR/ray.log" 2>&1
    gunicorn --config python:ndif.services.api.gunicorn_conf --bind "127.0.0.1:$api_port" \
        ndif.services.api.app:app > "$DIR/api.log" 2>&1 & echo $! > "$DIR/api.pid"
    RAY_ADDRESS="127.0.0.1:$gcs_port" python -m ndif.services.ray.deployments.controller.controller \
        > "$DIR/controller.log" 2>&1
    wait_for 120 "the API's connection to Ray" grep -q "Connected to Ray" "$DIR/api.log"

    # the model key nnsight's client mints for a TransformersModel of this folder
    local key="nnsight.modeling.transformers.TransformersModel:{\"repo_id\": \"$folder\", \"revision\": null, \"task\": \"text-generation\"}"
    local size
    size=$(du -sb "$folder" | cut -f1)
    cat > "$DIR/models.yaml" <<EOF
models:
  - checkpoint: $folder
    model_key: '$key'
    dtype: float32
    size_bytes: $size
    padding_bias: 0
EOF
    ndif deploy -f "$DIR/models.yaml" > "$DIR/deploy.log" 2>&1
    grep -q ": ready" "$DIR/deploy.log" || { echo "ndif_local: deploy failed (see $DIR/deploy.log)" >&2; exit 1; }
    echo "$NDIF_API_URL" > "$DIR/url"
    echo "$NDIF_API_URL"
}

stop() {
    DIR="$(cd "$1" && pwd)"
    if [ -f "$DIR/session" ]; then
        # the whole session `start` opened: Ray's workers take process groups of their own
        # but stay in it
        local session
        session="$(cat "$DIR/session")"
        pkill -TERM -s "$session" 2>/dev/null || true
        for _ in $(seq 1 10); do
            pgrep -s "$session" >/dev/null || break
            sleep 1
        done
        pkill -KILL -s "$session" 2>/dev/null || true
    fi
    if [ -f "$DIR/ray_tmp" ]; then rm -rf "$(cat "$DIR/ray_tmp")" "$DIR/ray_tmp"; fi
    rm -f "$DIR"/*.pid "$DIR/session" "$DIR/url"
}

case "${1:-}" in
    install) install ;;
    start) start "$2" "$3" ;;
    stop) stop "$2" ;;
    *) echo "usage: $0 install | start FOLDER DIR | stop DIR" >&2; exit 2 ;;
esac
