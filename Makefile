# The front door. Every target runs on the project's pinned Node 24 (scripts/node -> scripts/node-path).
#
# NODE is a wrapper script, not a path found when make parses this file: on a fresh clone Node 24
# (node_modules/node-linux-<arch>) only exists once `deps` has run, and an empty $(NODE) turned
# every recipe into "--import tsx ..." - a line make reads as "ignore errors" (leading '-').
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
NODE := $(CURDIR)/scripts/node
TSX := $(NODE) --import tsx
TEST := $(TSX) --test --test-concurrency=1 --test-reporter=spec
# Globs for the test targets; override to run a subset (make test-unit UNIT='test/unit/config.test.ts').
UNIT ?= test/unit/**/*.test.ts
INTEGRATION ?= test/integration/**/*.test.ts
E2E ?= test/e2e/**/*.test.ts
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help all deps system-deps dist check typecheck lint format test test-unit test-integration test-e2e demo bench bench-failover bench-telemetry bench-records bench-status bench-memory clean

help:
	@echo "make demo    the agent on embedded defaults in a namespace lab (root; simulated otherwise)"
	@echo "make test    typecheck + lint + unit + integration + browser tests;  make lint   layering, prettier, 160 columns"
	@echo "make bench   every benchmark (JSON lines);  make dist   the agent bundle"
	@echo "Needs: npm (Node 24 comes from the npm registry); as root, missing Debian packages are"
	@echo "installed by scripts/setup-system (SURGERY_EDGE_NO_APT=1: only say what to install)."

all: check test

# Install only when node_modules is absent: never wipe a working tree's modules behind its back.
deps:
	@[ -d node_modules/tsx ] || npm ci --no-audit --no-fund
	@[ ! node_modules/.package-lock.json -ot package-lock.json ] || echo "surgery-edge: package-lock.json is newer than node_modules: run 'npm ci'" >&2
	@$(NODE) -e 'process.version.startsWith("v24.") || (console.error("surgery-edge: need Node 24, got " + process.version), process.exit(1))'

# Debian packages for the demo and the integration/browser tests (scripts/packages/*.txt).
system-deps:
	@scripts/setup-system --auto

# dist: one minified ESM bundle of the agent with its pure-JS npm packages; the native SQLite addons stay
# in node_modules (scripts/build-dist says what is left outside and why).
# Runs on Node 24 without tsx: less memory and a faster start on the Pi. See docs/architecture.md.
dist: deps
	scripts/build-dist dist/surgery-edge.mjs
	@echo "built dist/surgery-edge.mjs: run with scripts/node dist/surgery-edge.mjs run --config FILE"

typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json

check: typecheck lint

# Layering, formatting and line length (scripts/lint); `make format` rewrites the formatting.
lint: deps
	@scripts/lint

format: deps
	$(NODE) node_modules/.bin/prettier --write --log-level warn $$(git ls-files '*.ts')

# Unit tests always run; integration and e2e tests skip (and say why) without root or a tool.
test: deps system-deps typecheck lint test-unit test-integration test-e2e

# A glob that matches no file is an error, not a green run of nothing.
matches = shopt -s globstar; compgen -G '$(1)' >/dev/null || { echo "surgery-edge: no test files match $(1)" >&2; exit 1; }

test-unit: deps
	@$(call matches,$(UNIT))
	$(TEST) '$(UNIT)'

test-integration: deps system-deps
	@$(call matches,$(INTEGRATION))
	$(TEST) --test-timeout=600000 '$(INTEGRATION)'

test-e2e: deps system-deps
	@$(call matches,$(E2E))
	$(TEST) --test-timeout=600000 '$(E2E)'

demo: deps system-deps
	$(TSX) test/lab/demo.ts

bench: bench-failover bench-telemetry bench-records bench-status bench-memory

bench-failover: deps system-deps
	$(TSX) test/bench/failover.ts

bench-telemetry: deps system-deps
	$(TSX) test/bench/telemetry.ts

# The viewer is measured with the node flags the appliance's unit runs it with (V8 tiers, heap sizes).
UNIT_NODE_FLAGS := $(shell sed -n 's|^ExecStart=[^ ]*/node \(.*\) /opt/surgery-edge/dist/.*|\1|p' image/systemd/surgery-edge.service)
bench-records: deps system-deps
	$(NODE) $(UNIT_NODE_FLAGS) --import tsx test/bench/records.ts

# The dist bundle with every capability on, in the namespace lab: steady-state RSS and CPU (HEAP_SNAPSHOT=1: where the heap goes).
bench-memory: dist system-deps
	$(TSX) test/bench/memory.ts

bench-status: deps system-deps
	$(TSX) test/bench/status.ts

clean:
	rm -rf test-artifacts

# Each area of the product (telephony, fleet, image, ...) keeps its own targets in mk/<area>.mk.
include $(wildcard mk/*.mk)
