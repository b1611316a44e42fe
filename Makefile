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
# Each new input that widens coverage is minimized for at most 5 s, not
# the default 60 s: the shared state target finds one a minute for a
# while, and spent 9 of its 10 minutes minimizing them (340k executions
# against 14.1M with 5 s, both beside other work on 2 cores).
FUZZTIME ?= 10m
soak-fuzz:
	for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -timeout 0 $$pkg || exit 1; \
		done; \
	done
