#!/bin/sh
# The sidecar's entrypoint (docker-compose.yml, sidecar-a and sidecar-b). It runs in the app's network namespace
# (network_mode: service:<app>) and starts as root because iptables needs NET_ADMIN, which Docker grants a root
# process only: a `user: "1337"` container would hold NET_ADMIN in its bounding set but never in effect. So:
#   1. as root: redirect the app's TCP to the sidecar (idempotent, so a restarted sidecar simply runs it again);
#   2. as the proxy uid, with every capability dropped: the proxy. The uid must be the one init-iptables exempts,
#      or the proxy's own connections would be redirected back into it.
# exec keeps the proxy as PID 1, so `docker stop`'s SIGTERM reaches it and it drains before exiting.
set -eu

PROXY_UID=1337
INBOUND_PORT=15006
OUTBOUND_PORT=15001

chaperone proxy init-iptables --proxy-uid "$PROXY_UID" --inbound-port "$INBOUND_PORT" --outbound-port "$OUTBOUND_PORT"

# setpriv sets the real, effective and saved ids (no way back to root), clears the capability sets and the bounding
# set, and sets no_new_privs, so nothing the proxy execs can gain privileges either.
exec setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
  chaperone proxy run \
    --workload-api unix:///run/chaperone/workload.sock \
    --policy /etc/chaperone/policy/policy.yaml \
    --transparent-outbound "$OUTBOUND_PORT" \
    --transparent-inbound "$INBOUND_PORT" \
    --admin 127.0.0.1:15000 \
    "$@"
