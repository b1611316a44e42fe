# Everyday commands are plain go commands (see README). This file holds the
# long run of the reliability suite, which CI runs at a bounded size.

# soak: every crash, fault and corruption test at full size, without -race
# (which slows it several times over, and these tests look for other
# bugs).
.PHONY: soak soak-fuzz
soak:
	go test -count=1 -timeout 0 -v ./engine/ \
		-run 'TestKillLoop|TestPowerCut|TestFaultLoop|TestMalformedFiles|TestCrashPoints|TestModel' \
		-kennel.killcycles=1000 -kennel.powercuts=2000 -kennel.fault-stride=1 \
		-kennel.malformed-stride=1 -kennel.crashpoint-runs=20 \
		-kennel.model-seqs=100 -kennel.model-ops=1000

# soak-fuzz: every fuzz target for FUZZTIME each (10 minutes by default).
FUZZTIME ?= 10m
soak-fuzz:
	for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -timeout 0 $$pkg || exit 1; \
		done; \
	done
