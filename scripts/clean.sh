#!/usr/bin/env bash
# Remove the sandbox containers of the named server instances, and only those (`make clean`).
#
#   scripts/clean.sh INSTANCE...
#
# Each INSTANCE is an instance name (`--instance-name` of `serve`, `eval`, `env test`) or a shell
# pattern of names, e.g. 'pytest-*'. A container is removed when it is labelled
# io.episode-runtime.managed and its io.episode-runtime.owner label matches one of them. Every
# other container is left alone, the live episodes of other servers on this Docker daemon above
# all; the script says how many of those it did not touch.
#
# Environment: DOCKER, the docker command (default: docker).
set -euo pipefail
set -f  # patterns are matched against labels, never expanded against file names

docker_cmd="${DOCKER:-docker}"
managed=io.episode-runtime.managed
owner=io.episode-runtime.owner

log() { printf 'clean: %s\n' "$*" >&2; }

if [[ $# -eq 0 ]]; then
  log "error: name at least one instance (a name or a pattern such as 'pytest-*')"
  exit 2
fi

listing="$("$docker_cmd" ps -a --no-trunc --filter "label=$managed" \
  --format "{{.ID}} {{.Label \"$owner\"}}")" || {
  log "error: cannot list containers (is dockerd running?)"
  exit 1
}

ids=() owners=() others=0
while read -r id name; do
  [[ -n "$id" ]] || continue
  matched=0
  for pattern in "$@"; do
    # shellcheck disable=SC2254  # the pattern is meant to be a pattern
    case "$name" in $pattern) matched=1 ;; esac
  done
  if ((matched)); then
    ids+=("$id")
    owners+=("${name:-(none)}")
  else
    others=$((others + 1))
  fi
done <<<"$listing"

kept=""
((others == 0)) || kept="; left $others container(s) of other instances alone"
if ((${#ids[@]} == 0)); then
  log "no sandboxes of instance(s) $*$kept"
  exit 0
fi

if ! "$docker_cmd" rm -f "${ids[@]}" >/dev/null 2>&1; then
  # A container that went away meanwhile is fine; one still there is not.
  still=()
  for id in "${ids[@]}"; do
    if "$docker_cmd" inspect --format '{{.Id}}' "$id" >/dev/null 2>&1; then still+=("$id"); fi
  done
  if ((${#still[@]} > 0)); then
    "$docker_cmd" rm -f "${still[@]}" >/dev/null || {
      log "error: could not remove ${#still[@]} container(s): ${still[*]}"
      exit 1
    }
  fi
fi
summary="$(printf '%s\n' "${owners[@]}" | sort | uniq -c | awk '{printf "%s%s (%d)", sep, $2, $1; sep=", "}')"
log "removed ${#ids[@]} sandbox(es) of: $summary$kept"
