#!/usr/bin/env bash
# Build every sandbox image: the base image first (sandbox_images/base/build.sh,
# skipped when up to date), then each sandbox_images/<name>/Dockerfile as
# runtime/<name>:latest.
#
# Environment:
#   BASE_IMAGE  if set, passed as --build-arg BASE=... to every Dockerfile
#               (e.g. python:3.11-slim-bookworm when a registry is reachable);
#               the local base image is then not built.
#   FORCE=1     rebuild the base image even if it is up to date.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[images] %s\n' "$*" >&2; }

if [[ -z "${BASE_IMAGE:-}" ]]; then
  bash "$here/base/build.sh"
fi

shopt -s nullglob
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
built=0
for dockerfile in "$here"/*/Dockerfile; do
  dir="$(dirname "$dockerfile")"
  name="$(basename "$dir")"
  tag="runtime/$name:latest"
  args=(build --tag "$tag" --iidfile "$tmp/iid")
  if [[ -n "${BASE_IMAGE:-}" ]]; then
    args+=(--build-arg "BASE=$BASE_IMAGE")
  fi
  log "building $tag${BASE_IMAGE:+ (BASE=$BASE_IMAGE)}"
  start=$SECONDS
  # The build context is a copy: C sources under shim/ are compiled here, with the host's gcc
  # (the images are Debian bookworm like the host), and only the built objects go in.
  context="$tmp/context-$name"
  rm -rf -- "$context"
  cp -r -- "$dir" "$context"
  for source in "$context"/shim/*.c; do
    command -v gcc >/dev/null 2>&1 || { log "error: gcc not found (run scripts/setup.sh)"; exit 1; }
    gcc -shared -fPIC -O2 -Wall -Werror -o "${source%.c}.so" "$source"
    rm -- "$source"
  done
  # Build output only matters when something goes wrong (it also carries the
  # CLI's "legacy builder is deprecated" notice when buildx isn't installed).
  if ! docker "${args[@]}" "$context" >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2
    log "error: building $tag failed"
    exit 1
  fi
  id="$(cat "$tmp/iid")"
  log "built $tag ${id#sha256:} in $((SECONDS - start))s"
  built=$((built + 1))
done
log "done: $built image(s)"
