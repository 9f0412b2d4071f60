#!/usr/bin/env bash
# Provision a Debian bookworm machine (as root) to run and test episode-runtime:
#   1. apt packages: docker.io (engine), mmdebstrap (base image), make, docker-compose (dev loop)
#   2. a running docker engine (starts dockerd in the background if needed)
#   3. .venv with the package installed editable, plus dev tools
#   4. sandbox images (`make images`)
# Idempotent: a rerun on a provisioned machine only checks and finishes in seconds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/episode-runtime-dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"
VENV="$repo/.venv"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root (installs packages and starts dockerd)"

# --- 1. system packages -------------------------------------------------------
# Check the commands, not `docker`: a docker *client* may exist without the engine.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v make >/dev/null 2>&1 || missing+=(make)
# Compose for the dev loop (docker-compose.yml, tests/test_compose.py): Debian's v1, unless v2 is there.
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# gcc and libc headers build the sandbox images' small preloaded shims (sandbox_images/*/shim).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[[ -f /usr/include/stdio.h ]] || missing+=(libc6-dev)
# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
  apt_log="$(mktemp)"
  if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >"$apt_log" 2>&1; then
    tail -n 40 "$apt_log" >&2
    die "apt-get failed installing ${missing[*]} (full log: $apt_log)"
  fi
  rm -f "$apt_log"
else
  log "system packages present"
fi

# --- 2. docker engine ---------------------------------------------------------
# Register gVisor's runsc as a Docker runtime (sandboxes with isolation="gvisor"), merging
# into an existing daemon.json; a running dockerd reloads it on SIGHUP.
register_runsc() {
  python3 - "$(command -v runsc)" <<'PY'
import json, os, sys
path = "/etc/docker/daemon.json"
config = {}
if os.path.exists(path):
    with open(path) as handle:
        text = handle.read()
    config = json.loads(text) if text.strip() else {}
wanted = {"path": sys.argv[1], "runtimeArgs": ["--network=none"]}
if config.get("runtimes", {}).get("runsc") == wanted:
    sys.exit(1)  # nothing to change
config.setdefault("runtimes", {})["runsc"] = wanted
os.makedirs("/etc/docker", exist_ok=True)
with open(path, "w") as handle:
    json.dump(config, handle, indent=2)
PY
}
runsc_changed=0
if register_runsc; then runsc_changed=1; log "registered runsc (gVisor) in /etc/docker/daemon.json"; fi

dockerd_running() {
  pgrep -x dockerd >/dev/null 2>&1 && return 0
  [[ -f /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null
}

if docker info >/dev/null 2>&1; then
  log "docker engine is up"
  if ((runsc_changed)) || ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc; then
    log "reloading dockerd for the runsc runtime"
    pkill -HUP -x dockerd || true
    for _ in $(seq 1 20); do
      docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc && break
      sleep 0.5
    done
  fi
else
  if dockerd_running; then
    log "dockerd is running but not answering yet; waiting"
  elif [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1 \
       && systemctl start docker 2>/dev/null; then
    log "started docker via systemd"
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: its own session, so it outlives this script and CI's process group.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  deadline=$((SECONDS + DOCKERD_WAIT))
  until docker info >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "docker engine did not come up within ${DOCKERD_WAIT}s (see $DOCKERD_LOG)"
    fi
    sleep 1
  done
  log "docker engine is up"
fi

# --- 3. python venv -----------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# Reinstall only when pyproject.toml changed (the install is editable, so code
# changes under runtime/ need nothing).
stamp="$VENV/.episode-runtime-install"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "pip install -e '.[dev]'"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  printf '%s\n' "$want" >"$stamp"
else
  log "venv up to date"
fi

# --- 4. sandbox images --------------------------------------------------------
make --no-print-directory images

log "ready. Start the server with: .venv/bin/python -m runtime serve   (or: make serve)"
