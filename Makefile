# The front door. Every target runs on the project's pinned Node 24 (scripts/node-path).
SHELL := /bin/bash
NODE := $(shell ./scripts/node-path 2>/dev/null)
TSX := $(NODE) --import tsx
TEST := $(TSX) --test --test-concurrency=1 --test-reporter=spec
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# dist: one ESM bundle of the agent (npm packages stay in node_modules: native addons cannot be bundled).
# Runs on Node 24 without tsx: less memory and a faster start on the Pi. See docs/architecture.md.
dist: deps
	node_modules/esbuild/bin/esbuild agent/src/main.ts --bundle --platform=node --target=node24 --format=esm --packages=external --log-level=warning --outfile=dist/surgery-edge.mjs
	@echo "built dist/surgery-edge.mjs: run with $(NODE) dist/surgery-edge.mjs run --config FILE"

.PHONY: all deps dist check typecheck test test-unit test-integration test-e2e demo bench bench-failover bench-telemetry bench-records bench-status lab-up lab-down clean

all: check test

# Install only when node_modules is absent: never wipe a working tree's modules behind its back.
deps:
	@[ -d node_modules/tsx ] || npm ci --no-audit --no-fund

typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json

check: typecheck

# Unit tests always run; integration and e2e tests skip (and say why) without root or a tool.
test: deps typecheck test-unit test-integration test-e2e

test-unit: deps
	$(TEST) 'test/unit/**/*.test.ts'

test-integration: deps
	@if compgen -G 'test/integration/**/*.test.ts' >/dev/null || compgen -G 'test/integration/*.test.ts' >/dev/null; then $(TEST) --test-timeout=600000 'test/integration/**/*.test.ts'; fi

test-e2e: deps
	@if compgen -G 'test/e2e/*.test.ts' >/dev/null; then $(TEST) --test-timeout=600000 'test/e2e/**/*.test.ts'; fi

demo: deps
	$(TSX) test/lab/demo.ts

bench: bench-failover bench-telemetry bench-records bench-status

bench-failover: deps
	$(TSX) test/bench/failover.ts

bench-telemetry: deps
	$(TSX) test/bench/telemetry.ts

bench-records: deps
	$(TSX) test/bench/records.ts

bench-status: deps
	$(TSX) test/bench/status.ts

clean:
	rm -rf test-artifacts
