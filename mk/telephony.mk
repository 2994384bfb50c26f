# Survivable telephony (agent/src/telephony). Packages: scripts/packages/telephony.txt
# test-telephony: unit + integration (real kamailio, SIPp, nft/tc in namespaces; ~50 s, root for nft/tc parts).
# bench-telephony: namespace lab (prefix tp/tpv, needs root); TRIALS=5 by default.
.PHONY: test-telephony
test-telephony: deps
	$(TEST) 'test/unit/telephony/*.test.ts' 'test/unit/status/phones-card.test.ts' 'test/integration/telephony/*.test.ts'

.PHONY: bench-telephony
bench-telephony: deps
	$(TSX) test/bench/telephony.ts
	$(TSX) test/bench/voice-qos.ts
