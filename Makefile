# The front door. Every target runs on the project's pinned Node 24 (scripts/node-path).
SHELL := /bin/bash
NODE := $(shell ./scripts/node-path 2>/dev/null)
TSX := $(NODE) --import tsx
TEST := $(TSX) --test --test-concurrency=1 --test-reporter=spec
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: all deps check typecheck test test-unit test-integration test-e2e demo bench bench-failover bench-telemetry bench-records bench-status lab-up lab-down clean

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
