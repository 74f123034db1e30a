#!/bin/sh
# The sidecar's entrypoint (docker-compose.yml, sidecar-a and sidecar-b). The sidecar's container owns the network
# namespace its app later joins (network_mode: service:<sidecar>), and it starts as root because iptables needs
# NET_ADMIN, which Docker grants a root process only: a `user: "1337"` container would hold NET_ADMIN in its
# bounding set but never in effect. So:
#   1. as root: redirect the namespace's TCP to the sidecar, before the app exists (the app is started only once
#      this container is healthy, so its first packet is already redirected);
#   2. as the proxy uid, with every capability dropped: the proxy. The uid must be the one init-iptables exempts,
#      or the proxy's own connections would be redirected back into it.
# The proxy is restarted here when it exits (with a growing pause, 1 s up to 30 s) rather than by restarting the
# container: a new container would be a new namespace, and the app would be left in the old one. While the proxy
# is down the rules stay, so the app's connections are refused, never sent in plain text. `docker stop`'s SIGTERM
# is passed on to the proxy, which drains its connections and exits; then this script exits with its status.
set -eu

PROXY_UID=1337
INBOUND_PORT=15006
OUTBOUND_PORT=15001

chaperone proxy init-iptables --proxy-uid "$PROXY_UID" --inbound-port "$INBOUND_PORT" --outbound-port "$OUTBOUND_PORT"

stopping=false
proxy=''
signals=0
stop () {
  stopping=true
  signals=$((signals + 1))
  if [ -n "$proxy" ]; then kill -TERM "$proxy" 2>/dev/null || true; fi
}
trap stop TERM INT

pause=1
while :; do
  started=$(date +%s)
  # setpriv sets the real, effective and saved ids (no way back to root), clears the capability sets and the
  # bounding set, and sets no_new_privs, so nothing the proxy execs can gain privileges either.
  setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
    chaperone proxy run \
      --workload-api unix:///run/chaperone/workload.sock \
      --policy /etc/chaperone/policy/policy.yaml \
      --transparent-outbound "$OUTBOUND_PORT" \
      --transparent-inbound "$INBOUND_PORT" \
      --admin 127.0.0.1:15000 \
      "$@" &
  proxy=$!
  # A trapped signal interrupts `wait` (status > 128) while the proxy still drains, or has just exited: wait again,
  # for the proxy's own status (the shell keeps it until a `wait` returns it; checking whether the proxy still runs
  # instead would lose it when the proxy exits in between).
  while :; do
    before=$signals
    status=0
    wait "$proxy" || status=$?
    if [ "$status" -le 128 ] || [ "$signals" -eq "$before" ]; then break; fi
  done
  proxy=''
  if "$stopping"; then exit "$status"; fi
  # A proxy that ran for a minute had a fault of its own, not a start-up problem: start over at the shortest pause.
  if [ $(($(date +%s) - started)) -ge 60 ]; then pause=1; fi
  echo "sidecar-entrypoint: the proxy exited with status $status; starting it again in ${pause}s (iptables stays in place)" >&2
  sleep "$pause" &
  wait $! || true
  if "$stopping"; then exit "$status"; fi
  pause=$((pause * 2 > 30 ? 30 : pause * 2))
done
