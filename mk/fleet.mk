# Fleet manager (fleet/): see docs/fleet.md.
FLEET_DATA ?= fleet-data

.PHONY: fleet bench-fleet test-fleet

# One command, embedded defaults: SQLite in $(FLEET_DATA)/ and a local mosquitto on a free loopback port.
fleet: deps
	fleet/bin/fleet run --data-dir $(FLEET_DATA) $(if $(FLEET_CONFIG),--config $(FLEET_CONFIG))

# 10,000 simulated devices at 60 s telemetry over 1,000 TLS connections; prints JSON figures (ingest lag
# p99, page p95, RSS). STORE=pg make bench-fleet: the same against a PostgreSQL the bench starts itself
# (fsync on). The open-file limit is raised for the bench and the mosquitto it starts (one fd per connection).
bench-fleet: deps
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); $(TSX) test/bench/fleet.ts

test-fleet: deps
	$(TEST) --test-concurrency=1 'test/unit/fleet/*.test.ts' 'test/integration/fleet/*.test.ts' 'test/e2e/fleet*.test.ts'
