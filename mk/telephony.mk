# Survivable telephony (agent/src/telephony). Packages: scripts/packages/telephony.txt
.PHONY: test-telephony
test-telephony: deps
	$(TEST) 'test/unit/telephony/*.test.ts' 'test/integration/telephony/*.test.ts'

.PHONY: bench-telephony
bench-telephony: deps
	$(TSX) test/bench/telephony.ts
