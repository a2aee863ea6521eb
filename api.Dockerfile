# syntax=docker/dockerfile:1
#
# The reference arena API (loadtest/api): `node dist/loadtest/api/main.js`,
# configured only by environment variables (PORT, WEB_CONCURRENCY, DB_*,
# REDIS_URL, ...; the operator's rendered Deployment sets them). Build from the
# repository root:
#
#   docker build -f api.Dockerfile -t REGISTRY/arena-api:0.1.0 .
#
# Checked by operator/packaging/dockerfile.test.ts (no container engine on the
# project's machines, so it is parsed and linted there, not built; docs/install.md).
# Pin NODE_IMAGE by digest in production: --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:...
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile TypeScript
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY lib/ lib/
COPY cli/ cli/
COPY operator/ operator/
COPY loadtest/ loadtest/
RUN npx tsc -p tsconfig.json

# ---- deps: production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="arena-api" \
      org.opencontainers.image.description="The reference arena API: an LLM-backed web API to load-test capacity plans against" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    PORT=8000
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Non-root, numeric so Kubernetes can check runAsNonRoot.
USER 65532:65532
EXPOSE 8000
# For docker/podman only; in Kubernetes the operator's rendered Deployment probes spec.api.healthPath (/health).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The primary process forwards SIGTERM to its workers and drains them (SHUTDOWN_GRACE_SECONDS).
ENTRYPOINT ["node", "dist/loadtest/api/main.js"]
