#!/bin/sh
# Registers the deployment's workloads with the agent (docker-compose.yml, the one-shot `register` service).
# Idempotent: run it at every `docker compose up`; an entry that is already there is left as it is.
#
# Each sidecar is recognised by a label of its container (docker:label:…), which the agent reads from the Docker
# Engine for the container the caller's process is in. Not by unix:uid: every sidecar's proxy runs as uid 1337, so
# the kernel's uid cannot tell sidecar-a from sidecar-b (and under userns-remap it is not even 1337 on the host).
# A new app: a line below, with the label given to its sidecar in docker-compose.yml.
#
# One more entry may be given as arguments, SPIFFE_ID SELECTOR [SELECTOR …]: docker-compose.node.yml gives the
# node proxy's this way (its container's label and uid 0), the ID the agent's authorizedDelegates names.
set -eu

ADMIN_SOCKET="${CHAPERONE_ADMIN_SOCKET:-/run/chaperone-admin/admin.sock}"

# register SPIFFE_ID SELECTOR [SELECTOR …]: the workloads with all the selectors get the ID.
register () {
  id=$1
  shift
  selectors=''
  for selector in "$@"; do selectors="$selectors --selector $selector"; done
  status=0
  # $selectors unquoted on purpose: one word per option and value (selectors contain no spaces).
  # shellcheck disable=SC2086
  output=$(chaperone entry create --admin-socket "$ADMIN_SOCKET" --spiffe-id "$id" $selectors 2>&1) || status=$?
  if [ "$status" -eq 0 ]; then
    echo "registered $id ($*)"
    return 0
  fi
  # Exit 2 is bad input, which includes ERR_ENTRY_DUPLICATE. Only an entry that is really there (this ID with this
  # selector) makes it success, so a mistyped selector still fails the service.
  if [ "$status" -eq 2 ]; then
    existing=$(chaperone entry list --admin-socket "$ADMIN_SOCKET" --spiffe-id "$id" --selector "$1" --json) || existing='[]'
    if [ "$existing" != '[]' ]; then
      echo "already registered: $id ($*)"
      return 0
    fi
  fi
  echo "$output" >&2
  return "$status"
}

register spiffe://plant.example/app-a docker:label:io.chaperone.workload:app-a
register spiffe://plant.example/app-b docker:label:io.chaperone.workload:app-b
if [ "$#" -gt 0 ]; then register "$@"; fi
