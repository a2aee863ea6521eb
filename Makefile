# arena: `make demo` runs the main job, `make test` runs the whole test suite.
# Both install what they need (npm packages; later Debian packages and Go-built
# tools through scripts/) and are idempotent.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_STAMP := node_modules/.arena-installed
ARENA := node dist/cli/arena.js
# the small stack the demo loads (short LLM calls, small pools: saturation shows within seconds)
DEMO_STACK := samples/arena-local.yaml

.PHONY: help setup build testenv helm test demo crd golden clean dev-cluster-up dev-cluster-down bench-operator chart-sync samples-sync chart-lint bench-engine bench schemas lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	@echo "[setup] npm ci"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(NODE_STAMP) ## install npm packages (only when package-lock.json changed)

build: setup ## compile TypeScript (strict) into dist/
	@npx tsc -p tsconfig.json
	@chmod +x dist/cli/arena.js

testenv: ## build the local control plane (etcd + kube-apiserver + kube-controller-manager) from Go modules, cached
	@operator/testenv/build.sh

helm: ## build helm from Go modules into .tools/bin/helm (scripts/build-helm.sh, cached)
	@scripts/build-helm.sh

test: build testenv helm lint ## type-check, format check, lint, then run every test (unit, property, golden, CLI, operator e2e, local stack, load engine, Helm chart)
	@scripts/install-debian-deps.sh db chromium xml
	@scripts/run-tests.sh

lint: setup ## prettier --check and eslint (typescript-eslint, max-lines-per-function, complexity, no-floating-promises); fails on any finding
	@echo "[lint] prettier --check"
	@npx prettier --check --log-level warn .
	@echo "[lint] eslint"
	@npx eslint --max-warnings 0 .

fmt: setup ## format the code (prettier --write) and apply eslint's fixes
	@npx prettier --write --log-level warn .
	@npx eslint --fix . || true

dev-cluster-up: build testenv ## start the local control plane (see `arena dev-cluster`)
	@$(ARENA) dev-cluster up

dev-cluster-down: build ## stop the local control plane
	@$(ARENA) dev-cluster down

demo: build ## validate, plan and render the samples; bring the local stack up, load-test it with the mixed scenario, take it down
	@echo "== arena validate -f samples/debate-arena.yaml"
	@$(ARENA) validate -f samples/debate-arena.yaml
	@echo
	@echo "== arena plan -f samples/debate-arena.yaml   (the issue's example: it cannot hold its target)"
	@$(ARENA) plan -f samples/debate-arena.yaml --fail-on none
	@echo
	@echo "== arena plan -f samples/debate-arena-holds.yaml   (sized to hold 10,000 in flight)"
	@$(ARENA) plan -f samples/debate-arena-holds.yaml
	@echo
	@echo "== arena render -f samples/debate-arena-holds.yaml --out-dir out/debate-arena-holds"
	@rm -rf out/debate-arena-holds
	@$(ARENA) render -f samples/debate-arena-holds.yaml --out-dir out/debate-arena-holds
	@ls out/debate-arena-holds
	@echo
	@scripts/install-debian-deps.sh db
	@rc=0; $(ARENA) stack status -f $(DEMO_STACK) >/dev/null 2>&1 || rc=$$?; \
	if [[ $$rc -ne 2 ]]; then \
	  echo "== a stack from an earlier demo is still there: arena stack down -f $(DEMO_STACK)"; \
	  $(ARENA) stack down -f $(DEMO_STACK); echo; fi
	@echo "== arena stack up -f $(DEMO_STACK)   (PostgreSQL, PgBouncer, Redis, the reference API on 127.0.0.1)"
	@$(ARENA) stack up -f $(DEMO_STACK)
	@echo
	@echo "== arena stack status -f $(DEMO_STACK)"
	@$(ARENA) stack status -f $(DEMO_STACK) || { $(ARENA) stack down -f $(DEMO_STACK); exit 1; }
	@echo
	@echo "== arena loadtest run -f $(DEMO_STACK) --scenario mixed --rate 150 --ramp 3s --duration 15s --sample auto"
	@echo "   (the file's request mix, Poisson arrivals, latency from the scheduled start, every pool sampled)"
	@$(ARENA) loadtest run -f $(DEMO_STACK) --scenario mixed --rate 150 --ramp 3s --duration 15s --graceful-stop 10s --sample auto --out out/demo-loadtest \
	  || { rc=$$?; $(ARENA) stack down -f $(DEMO_STACK); exit $$rc; }
	@echo
	@echo "== arena stack down -f $(DEMO_STACK)"
	@$(ARENA) stack down -f $(DEMO_STACK)

bench-operator: build testenv ## measure the operator against a local control plane (docs/benchmarks.md)
	@node dist/operator/bench/operator-bench.js

bench-engine: build ## arena's load engine vs vegeta and autocannon at 10,000 in flight, SSE, cost curve (BENCH_DURATION, BENCH_ONLY)
	@scripts/install-bench-peers.sh
	@node dist/loadtest/bench/engine-bench.js

bench: build ## the capacity bench: samples/local-10k.yaml at 1,000/2,500/5,000/10,000 in flight and 1.3x beyond, 60 s steady each (about 15 min; out/bench/local-10k/)
	@scripts/install-debian-deps.sh db
	@$(ARENA) bench -f samples/local-10k.yaml --out out/bench/local-10k

schemas: build ## regenerate the published JSON Schemas in docs/schemas/ from their TypeBox sources
	@for m in loadtest/engine loadtest/api loadtest/stack loadtest/sampler operator/planner; do node dist/$$m/schema-file.js --write; done

crd: build ## regenerate crds/arenadeployment.yaml and crds/arenaloadtest.yaml from their schemas
	@$(ARENA) gen-crd --out crds/arenadeployment.yaml && $(ARENA) gen-crd --kind ArenaLoadTest --out crds/arenaloadtest.yaml

chart-sync: build ## copy crds/ and operator/rbac/ into charts/arena-operator and regenerate its README values table
	@node dist/operator/packaging/sync.js chart

samples-sync: build ## regenerate the plan summary comments of samples/arena-{small,medium,10k}.yaml
	@node dist/operator/packaging/sync.js samples

chart-lint: build helm ## helm lint the chart (default and non-default values)
	@.tools/bin/helm lint --strict charts/arena-operator
	@.tools/bin/helm lint --strict charts/arena-operator --set replicaCount=2,podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true

golden: build ## refresh the golden render files after an intended change
	@UPDATE_GOLDEN=1 node --test dist/operator/render/ >/dev/null

clean: ## remove build output (keeps node_modules and .tools)
	@rm -rf dist out
