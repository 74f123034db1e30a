# Chaperone's image: one image for the agent (`chaperone agent run`), the sidecar (`chaperone proxy …`) and the
# operator's commands (`chaperone entry …`). See the README (Deployment) and docker-compose.yml.
#
#   docker build -t chaperone .

# Debian slim rather than Alpine: better-sqlite3 and koffi ship and build against glibc, and the runtime needs
# iptables and setpriv (util-linux), both plain Debian packages.
ARG NODE_IMAGE=node:20-bookworm-slim

# ── toolchain: what compiling the native modules needs ──────────────────────────────────────────────────────────
# better-sqlite3 compiles from source when no prebuilt binary can be fetched, which needs python3, make and g++.
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# ── build: every dependency (TypeScript is a dev dependency), then dist/ ────────────────────────────────────────
FROM toolchain AS build
COPY package.json package-lock.json ./
RUN npm ci
# The sources (.dockerignore keeps node_modules, dist and tests out of the context).
COPY . .
# npm pack keeps exactly what package.json "files" ships (dist/, the .proto files, policy/schema.json, README.md)
# plus package.json, so the image cannot drift from the published package.
RUN npm run build \
 && npm pack --pack-destination /tmp \
 && mkdir /package && tar -xzf /tmp/chaperone-*.tgz -C /package --strip-components=1

# ── prod-deps: the build's node_modules without the dev dependencies ────────────────────────────────────────────
# A stage of its own so the runtime gets node_modules without TypeScript, eslint or tap, and without the compilers
# (the compiled .node files are all it needs). Pruned from the build stage rather than installed again, so the
# native modules are compiled once (a second `npm ci` took a minute more on a cold build). Same base image as the
# runtime, so the same glibc and Node ABI.
FROM build AS prod-deps
RUN npm prune --omit=dev && npm cache clean --force

# ── runtime ─────────────────────────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE}
# iptables: `chaperone proxy init-iptables` (the sidecar's init step) runs it. Debian's default is the nft backend;
# on a host without nf_tables, `update-alternatives --set iptables /usr/sbin/iptables-legacy` in a derived image.
# setpriv (util-linux, always installed) lets the sidecar's entrypoint drop from root to the proxy uid.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*

# The sidecar's proxy uid is fixed at 1337 (as Istio's): init-iptables exempts this uid's connections from the
# redirect, so it must be known before the proxy runs. Apps must not run as 1337, or their traffic bypasses it.
RUN groupadd --gid 1337 chaperone \
 && useradd --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin chaperone

ENV NODE_ENV=production
# A 1 MiB young generation instead of V8's default (up to 16 MiB per semi-space): under load a sidecar's resident
# set is about 30 MB smaller, for no measurable loss of throughput (bench/tuning.md). Every node process of the
# image gets it, `chaperone` run through its symlink included.
ENV NODE_OPTIONS=--max-semi-space-size=1
WORKDIR /app
# The packed package: dist/ and the shipped files at their paths, under the package.json the CLI finds them from.
COPY --from=build /package/ ./
COPY --from=prod-deps /app/node_modules ./node_modules

# `chaperone` on the PATH, for healthchecks and scripts (main.js starts with #!/usr/bin/env node).
RUN chmod 0755 dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/chaperone \
 && mkdir -p /run/chaperone /var/lib/chaperone /etc/chaperone/policy

# Non-root by default. The compose file runs the agent as root (it reads other processes' /proc entries and the
# Docker socket) and starts each sidecar as root only for its iptables step (deploy/sidecar-entrypoint.sh).
USER 1337:1337
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
