#!/usr/bin/env bash
# Build the local base image (default runtime/base:bookworm) from Debian packages,
# with no container registry: mmdebstrap writes a rootfs tarball, `docker import`
# turns it into an image.
#
# Skips the build when the image already exists and was built from the same
# recipe (package list, suite, options; recorded in an image label). Set FORCE=1
# to rebuild regardless.
#
# Environment:
#   BASE_TAG   image tag to produce          (default runtime/base:bookworm)
#   SUITE      Debian suite                  (default bookworm)
#   MIRROR     Debian mirror URI             (default: mmdebstrap's, deb.debian.org
#                                             plus -updates and -security)
#   FORCE=1    rebuild even if the image is up to date
set -euo pipefail

BASE_TAG="${BASE_TAG:-runtime/base:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-}"
FORCE="${FORCE:-0}"

# Everything the sandboxes may rely on. python3 (not python3-minimal, which lacks
# most of the stdlib). ca-certificates deliberately absent: sandboxes have no network.
PACKAGES=(python3 bash coreutils findutils grep sed gawk procps git)

# Keep docs/man pages/translations out of the image (copyright files stay).
DPKG_OPTS=(
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*'
)

# Bump when the way the image is put together changes in a way the lists above
# don't capture.
RECIPE_VERSION=1
RECIPE_LABEL=io.episode-runtime.base-recipe
recipe="$(printf '%s\n' "$RECIPE_VERSION" "$SUITE" "$MIRROR" "${PACKAGES[@]}" "${DPKG_OPTS[@]}" \
  | sha256sum | cut -c1-16)"

log() { printf '[base] %s\n' "$*" >&2; }

for tool in docker mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || { log "error: '$tool' not found (run scripts/setup.sh)"; exit 1; }
done

old_id=""
if old_id="$(docker image inspect --format '{{.Id}}' "$BASE_TAG" 2>/dev/null)"; then
  have="$(docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$BASE_TAG" 2>/dev/null || true)"
  if [[ "$FORCE" != 1 && "$have" == "$recipe" ]]; then
    log "$BASE_TAG is up to date (recipe $recipe); FORCE=1 to rebuild"
    exit 0
  fi
  if [[ "$FORCE" == 1 ]]; then
    log "FORCE=1: rebuilding $BASE_TAG"
  else
    log "$BASE_TAG exists but was built from a different recipe (${have:-none} != $recipe); rebuilding"
  fi
else
  old_id=""
fi

workdir="$(mktemp -d "${TMPDIR:-/var/tmp}/episode-runtime-base.XXXXXX")"
trap 'rm -rf -- "$workdir"' EXIT

include="$(IFS=,; echo "${PACKAGES[*]}")"
args=(--variant=apt --include="$include")
for opt in "${DPKG_OPTS[@]}"; do args+=(--dpkgopt="$opt"); done

log "mmdebstrap $SUITE (+ $include)"
start=$SECONDS
# </dev/null: never let mmdebstrap (or apt inside it) read from a terminal or CI stdin.
mmdebstrap --quiet "${args[@]}" "$SUITE" "$workdir/rootfs.tar" ${MIRROR:+"$MIRROR"} </dev/null
log "rootfs built in $((SECONDS - start))s ($(du -h "$workdir/rootfs.tar" | cut -f1))"

new_id="$(docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL $RECIPE_LABEL=$recipe" \
  --change 'CMD ["bash"]' \
  "$workdir/rootfs.tar" "$BASE_TAG")"
log "imported $BASE_TAG ($new_id)"

# Best effort: drop the image this one replaced (fails harmlessly if still in use).
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  docker image rm "$old_id" >/dev/null 2>&1 || true
fi
