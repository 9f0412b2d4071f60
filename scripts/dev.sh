#!/usr/bin/env bash
# The docker-compose dev loop (docker-compose.yml, README, "Dev loop"):
#
#   scripts/dev.sh up              build what is missing (sandbox images, server image), start
#                                  the stack, wait until its grpc.health.v1 check passes
#   scripts/dev.sh down            remove the stack (containers, network, volumes, orphans) and
#                                  any sandbox its server left behind
#   scripts/dev.sh status          the stack's containers and the server's sandboxes
#   scripts/dev.sh compose ARGS..  run compose on the stack, e.g. `compose logs -f server`
#   scripts/dev.sh hints           the follow-up commands `up` prints, for this stack
#
# `make dev` is `up`, `make dev-down` is `down`. Works with the `docker compose` plugin (v2) and
# Debian's `docker-compose` (v1); the project name is always passed with -p.
#
# Environment (docker-compose.yml reads the RUNTIME_* ones too):
#   COMPOSE                   the compose command (default: `docker compose` if that works,
#                             else `docker-compose`)
#   RUNTIME_DEV_PROJECT       compose project name                  (episode-runtime-dev)
#   RUNTIME_DEV_PORT          host port on 127.0.0.1                (50051)
#   RUNTIME_ENV_DIR           environments folder to mount          (./environments)
#   RUNTIME_DEV_ENVIRONMENTS  environments offered, comma-separated (python_math)
#   RUNTIME_DEV_INSTANCE      the server's --instance-name          (compose)
#   RUNTIME_DEV_POOL_SIZE     warm sandboxes per environment        (0)
#   DEV_WAIT                  seconds `up` waits for healthy        (120)
#   SKIP_BUILD=1              `up` builds no image
#
# The follow-up commands printed carry COMPOSE, RUNTIME_DEV_PROJECT and RUNTIME_DEV_INSTANCE
# when they differ from the defaults, so that they act on this stack and not the default one.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export RUNTIME_DEV_PORT="${RUNTIME_DEV_PORT:-50051}"
export RUNTIME_ENV_DIR="${RUNTIME_ENV_DIR:-./environments}"
export RUNTIME_DEV_ENVIRONMENTS="${RUNTIME_DEV_ENVIRONMENTS:-python_math}"
export RUNTIME_DEV_INSTANCE="${RUNTIME_DEV_INSTANCE:-compose}"
default_project=episode-runtime-dev
project="${RUNTIME_DEV_PROJECT:-$default_project}"
wait_s="${DEV_WAIT:-120}"
service=server

log() { printf '[dev] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The variables that say which stack a command acts on, as a prefix for the commands we print:
# empty for the default stack.
stack_vars() {
  local vars=()
  [[ -z "${COMPOSE:-}" ]] || vars+=("COMPOSE=$(printf '%q' "$COMPOSE")")
  [[ "$project" == "$default_project" ]] || vars+=("RUNTIME_DEV_PROJECT=$(printf '%q' "$project")")
  [[ "$RUNTIME_DEV_INSTANCE" == compose ]] ||
    vars+=("RUNTIME_DEV_INSTANCE=$(printf '%q' "$RUNTIME_DEV_INSTANCE")")
  ((${#vars[@]} == 0)) || printf '%s ' "${vars[@]}"
}

compose_cmd=()
detect_compose() {
  if [[ -n "${COMPOSE:-}" ]]; then
    read -r -a compose_cmd <<<"$COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
  else
    die "neither 'docker compose' (v2) nor 'docker-compose' (v1) found; install one, e.g." \
      "apt-get install docker-compose (scripts/setup.sh does)"
  fi
}

compose() {
  "${compose_cmd[@]}" -p "$project" -f "$repo/docker-compose.yml" "$@"
}

# Sandboxes are created by the server, not by compose: they carry the server's instance name.
sandbox_filter=(--filter label=io.episode-runtime.managed=1
                --filter "label=io.episode-runtime.owner=$RUNTIME_DEV_INSTANCE")

health_of() {
  docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' \
    "$1" 2>/dev/null || echo "gone"
}

up() {
  [[ -d "$RUNTIME_ENV_DIR" ]] || die "RUNTIME_ENV_DIR=$RUNTIME_ENV_DIR is not a folder"
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    make --no-print-directory images server-image
  fi
  log "starting project $project with ${compose_cmd[*]} (127.0.0.1:$RUNTIME_DEV_PORT," \
    "environments from $RUNTIME_ENV_DIR)"
  compose up -d --remove-orphans
  local cid state deadline=$((SECONDS + wait_s))
  cid="$(compose ps -q "$service")"
  [[ -n "$cid" ]] || die "compose started no $service container"
  while state="$(health_of "$cid")"; [[ "$state" != "running healthy" ]]; do
    if [[ "$state" != running* ]] || ((SECONDS >= deadline)); then
      compose logs --no-color --tail 40 "$service" >&2 || true
      die "the server is not healthy ($state) after $((wait_s - deadline + SECONDS))s; see" \
        "the log above; remove the stack with: $(stack_vars)make dev-down"
    fi
    sleep 1
  done
  log "healthy: episode server on 127.0.0.1:$RUNTIME_DEV_PORT (project $project," \
    "environments: $RUNTIME_DEV_ENVIRONMENTS)"
  hints
}

# What to do next, with commands that act on this stack (its project and instance), not on
# the default one.
hints() {
  local addr="127.0.0.1:$RUNTIME_DEV_PORT" vars env
  vars="$(stack_vars)"
  env="${RUNTIME_DEV_ENVIRONMENTS%%,*}"
  cat >&2 <<EOF

  run an eval against it (any OpenAI-compatible endpoint):
    .venv/bin/python -m runtime eval $env --server $addr \\
        --model MODEL --base-url http://127.0.0.1:8000/v1 -n 5 -r 1
  edit an environment: save a file under $RUNTIME_ENV_DIR; the next episode uses it
  follow the log:      ${vars}scripts/dev.sh compose logs -f $service
  status:              ${vars}scripts/dev.sh status
  stop and clean up:   ${vars}make dev-down
EOF
}

down() {
  # -t: time for the server's own graceful stop (it removes its sandboxes) before a SIGKILL.
  compose down -v --remove-orphans -t 30
  local left
  left="$(docker ps -aq "${sandbox_filter[@]}")"
  if [[ -n "$left" ]]; then
    log "removing $(wc -w <<<"$left") sandbox(es) left by instance $RUNTIME_DEV_INSTANCE"
    # shellcheck disable=SC2086  # one id per word
    docker rm -f $left >/dev/null
  fi
  log "project $project is down"
}

status() {
  compose ps
  echo "sandboxes of instance $RUNTIME_DEV_INSTANCE:"
  docker ps -a "${sandbox_filter[@]}" --format 'table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}'
}

command="${1:-}"
[[ $# -gt 0 ]] && shift
case "$command" in
  up) detect_compose; up ;;
  down) detect_compose; down ;;
  status) detect_compose; status ;;
  compose) detect_compose; compose "$@" ;;
  hints) hints ;;
  *) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
