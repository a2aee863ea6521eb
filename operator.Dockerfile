# syntax=docker/dockerfile:1
#
# The arena operator: `arena operator run` (charts/arena-operator runs it with
# --leader-elect and the flags from its values). Build from the repository root:
#
#   docker build -f operator.Dockerfile -t REGISTRY/arena-operator:0.1.0 .
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
RUN npx tsc -p tsconfig.json && chmod +x dist/cli/arena.js

# ---- deps: production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="arena-operator" \
      org.opencontainers.image.description="Kubernetes operator for ArenaDeployment capacity plans" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# `arena` on PATH (the chart runs `arena operator run ...`); the file starts with #!/usr/bin/env node.
RUN ln -s /app/dist/cli/arena.js /usr/local/bin/arena
# Non-root, numeric so Kubernetes can check runAsNonRoot (the chart sets the same ids).
USER 65532:65532
# /metrics and /healthz, /readyz
EXPOSE 8080 8081
# For docker/podman only; Kubernetes ignores HEALTHCHECK and uses the chart's probes on /healthz and /readyz.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["arena"]
CMD ["operator", "run", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"]
