#!/usr/bin/env bash
# Build the episode server's image (default episode-runtime/server:latest) for docker-compose.yml,
# with no container registry and no network inside `docker build`:
#   1. On the host, pip (with the host's own configuration: index, CA bundle) builds wheels of
#      the runtime dependencies and the non-dev extras (SERVER_EXTRAS; cached, see WHEEL_CACHE)
#      plus a pip wheel to install them with, and a wheel of this project (from a staged copy
#      of pyproject.toml, README.md and runtime/), into a temporary build context.
#   2. `docker build -f deploy/server.Dockerfile` FROM the local base image (`make images`), which
#      installs the wheels with --no-index --find-links.
#
# Skips the build when the image exists and was built from the same inputs (runtime/,
# pyproject.toml, the Dockerfile, the probe, this script, the base image; recorded in an image
# label). A code change under runtime/ therefore means a rebuild: `make server-image` (or
# `make dev`, which runs it).
#
# Environment:
#   SERVER_IMAGE  tag to produce                     (default episode-runtime/server:latest)
#   BASE_IMAGE    registry image to build FROM, e.g. python:3.11-slim-bookworm
#                 (default: the local runtime/base:bookworm, built by `make images`)
#   PY            host Python that builds the wheels (default .venv/bin/python); the image's
#                 Python must have the same major.minor version
#   SERVER_EXTRAS comma-separated optional-dependency groups installed too (default: every group
#                 but dev, so that environments needing extra packages load in the container
#                 as they do in the venv)
#   WHEEL_CACHE   where dependency wheels are kept between builds, keyed by the declared
#                 dependencies (default ~/.cache/episode-runtime/server-wheels; delete it to
#                 fetch newer releases)
#   FORCE=1       rebuild even if the image is up to date
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

SERVER_IMAGE="${SERVER_IMAGE:-episode-runtime/server:latest}"
BASE="${BASE_IMAGE:-runtime/base:bookworm}"
PY="${PY:-.venv/bin/python}"
FORCE="${FORCE:-0}"
INPUTS_LABEL=io.episode-runtime.server-inputs

log() { printf '[server-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "'docker' not found (run scripts/setup.sh)"
[[ -x "$PY" ]] || die "$PY not found (run scripts/setup.sh, or set PY=...)"
if [[ -z "${BASE_IMAGE:-}" ]] && ! docker image inspect "$BASE" >/dev/null 2>&1; then
  die "base image $BASE not found; build it with 'make images'"
fi

# Everything the image is made of. README.md is staged (the package metadata names it) but not
# hashed: a documentation edit needs no new image.
inputs=(pyproject.toml deploy/server.Dockerfile deploy/healthcheck.py deploy/build-server-image.sh)
base_id="$(docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || true)"
inputs_hash="$(
  {
    printf '%s\n' "$BASE" "$base_id" "${SERVER_EXTRAS-(all but dev)}"
    find runtime "${inputs[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)"

if [[ "$FORCE" != 1 ]]; then
  have="$(docker image inspect --format "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" \
    "$SERVER_IMAGE" 2>/dev/null || true)"
  if [[ "$have" == "$inputs_hash" ]]; then
    log "$SERVER_IMAGE is up to date (inputs $inputs_hash); FORCE=1 to rebuild"
    exit 0
  fi
fi

# The wheels are built for the host interpreter; the image's python3 must be the same version.
host_py="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
image_py="$(docker run --rm --network none --entrypoint python3 "$BASE" \
  -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  || die "cannot run python3 in $BASE (a server base image must provide python3)"
[[ "$host_py" == "$image_py" ]] \
  || die "$BASE has Python $image_py but $PY is $host_py; the wheels would not fit (set PY=...)"

ctx="$(mktemp -d "${TMPDIR:-/var/tmp}/episode-runtime-server.XXXXXX")"
trap 'rm -rf -- "$ctx"' EXIT
build_log="$ctx/build.log"

export PIP_DISABLE_PIP_VERSION_CHECK=1
run_logged() {  # run "$@" quietly; on failure show its output and stop
  if ! "$@" >"$build_log" 2>&1; then
    cat "$build_log" >&2
    die "failed: $*"
  fi
}

# Dependency wheels (and the pip wheel that installs them) are cached on the host, keyed by the
# declared dependencies and the Python version: a code change rebuilds only the project's wheel.
deps="$("$PY" - <<'PY'
import os
import sys
import tomllib

with open("pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = project.get("optional-dependencies", {})
chosen = os.environ.get("SERVER_EXTRAS")
groups = [g for g in extras if g != "dev"] if chosen is None else [g for g in chosen.split(",") if g]
unknown = sorted(set(groups) - set(extras))
if unknown:
    sys.exit(f"SERVER_EXTRAS: no such optional-dependency group(s) {unknown}; have {sorted(extras)}")
print(f"[server-image] extras installed: {','.join(groups) or 'none'}", file=sys.stderr)
name = project["name"].lower().replace("_", "-")
for req in project["dependencies"] + [r for g in groups for r in extras[g]]:
    if not req.lower().replace("_", "-").startswith(name):  # self-references add nothing
        print(req)
PY
)" || die "cannot read the dependencies from pyproject.toml"
deps_key="$(printf '%s\n' "$host_py" "$deps" | sha256sum | cut -c1-16)"
cache="${WHEEL_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/episode-runtime/server-wheels}"
deps_dir="$cache/$deps_key"
start=$SECONDS
if [[ ! -f "$deps_dir/.complete" ]]; then
  log "building dependency wheels (python $host_py) into $deps_dir"
  rm -rf -- "$deps_dir"
  mkdir -p "$deps_dir"
  printf '%s\n' "$deps" >"$ctx/requirements.txt"
  run_logged "$PY" -m pip wheel --quiet --wheel-dir "$deps_dir" -r "$ctx/requirements.txt"
  run_logged "$PY" -m pip download --quiet --only-binary :all: --no-deps --dest "$deps_dir" pip
  touch "$deps_dir/.complete"
  # Older keys are of no further use.
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$deps_key" -exec rm -rf -- {} +
fi
mkdir -p "$ctx/wheels/deps" "$ctx/wheels/project" "$ctx/src"
cp -p "$deps_dir"/*.whl "$ctx/wheels/deps/"

# The project's wheel from a staged copy, not the checkout: setuptools' in-tree build/ dir can
# carry deleted modules into the wheel, and none of it belongs in the repository.
tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md runtime | tar -x -C "$ctx/src"
run_logged "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/wheels/project" "$ctx/src"
log "wheels ready in $((SECONDS - start))s"
cp deploy/healthcheck.py "$ctx/healthcheck.py"

old_id="$(docker image inspect --format '{{.Id}}' "$SERVER_IMAGE" 2>/dev/null || true)"
start=$SECONDS
args=(build --file "$repo/deploy/server.Dockerfile" --tag "$SERVER_IMAGE"
      --label "$INPUTS_LABEL=$inputs_hash" --iidfile "$ctx/iid")
if [[ -n "${BASE_IMAGE:-}" ]]; then args+=(--build-arg "BASE=$BASE_IMAGE"); fi
log "docker build $SERVER_IMAGE (FROM $BASE)"
if ! docker "${args[@]}" "$ctx" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  die "docker build of $SERVER_IMAGE failed"
fi
new_id="$(cat "$ctx/iid")"
log "built $SERVER_IMAGE ${new_id:7:12} in $((SECONDS - start))s (inputs $inputs_hash)"
# Best effort: drop the image this one replaced (fails harmlessly while a container uses it).
# The "install" stage's layers stay as build cache (dangling images; `docker image prune`).
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  docker image rm "$old_id" >/dev/null 2>&1 || true
fi
