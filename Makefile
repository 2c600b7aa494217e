# isthmus — see README.md. Two commands for a newcomer: `make demo`, `make test`.
GO ?= go
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# Tests keep artifacts (the status page screenshot, …) here.
export ISTHMUS_ARTIFACTS ?= $(CURDIR)/artifacts

.PHONY: all build demo test test-short lint fuzz clean dict corpus chaos presence-bench compare transport-table

all: build

build:
	$(GO) build -o bin/isthmus ./cmd/isthmus

# The main job: both gateways, an emulated vhf-9600 link and simulated
# servers in one process, printing the savings. DEMO_FLAGS="--profile bgan-64k".
demo:
	$(GO) run ./cmd/isthmus demo $(DEMO_FLAGS)

# Everything, with the race detector, including the interop tests with real
# Prosody and ejabberd at their default secure settings (they skip only when
# the servers are not installed and CI is unset).
# The full verbose log goes to $(ISTHMUS_ARTIFACTS)/test.log; the terminal
# shows each package's result and the suites' report lines (one per hostile
# input case, the chaos tests' lost/duplicated/reordered, interop figures),
# and on failure the lines around it.
TEST_REPORT := ^(ok |FAIL|--- FAIL|panic:|hostile|chaos )|raw/wire|screenshot
test:
	$(GO) vet ./...
	@mkdir -p $(ISTHMUS_ARTIFACTS)
	@echo "$(GO) test -race -count=1 -timeout 30m -v ./...  (log: $(ISTHMUS_ARTIFACTS)/test.log)"
	@set -o pipefail; $(GO) test -race -count=1 -timeout 30m -v ./... 2>&1 | tee $(ISTHMUS_ARTIFACTS)/test.log | \
		grep --line-buffered -E '$(TEST_REPORT)' || { \
		echo "== failures (from $(ISTHMUS_ARTIFACTS)/test.log):"; \
		grep -E -B25 -A10 '^ *--- FAIL|^panic:' $(ISTHMUS_ARTIFACTS)/test.log | tail -300; exit 1; }

# The transport table of docs/measurements.md: `isthmus demo --compare`
# (tcp, quic, datagram on the seed's traffic) in virtual time for each
# profile, each run with an idle hour and a 10-minute outage, then the
# Markdown table; a few minutes. Narrow it with TABLE_PROFILES=iridium-2400,
# TABLE_TRANSPORTS=datagram, TABLE_DURATION=1m. The link's own figures
# (synthetic chat, no gateway) come from TestTransportScenarios, run too.
TABLE_DURATION ?= 5m
TABLE_PROFILES ?= vhf-9600,iridium-2400,hf-2400,geo-1m
TABLE_TRANSPORTS ?= tcp,quic,datagram
transport-table:
	ISTHMUS_MEASURE=1 ISTHMUS_DURATION=$(TABLE_DURATION) ISTHMUS_PROFILES=$(TABLE_PROFILES) ISTHMUS_TRANSPORTS=$(TABLE_TRANSPORTS) \
		$(GO) test -count=1 -timeout 60m -run '^TestTransportTable$$' -v ./cmd/isthmus
	ISTHMUS_MEASURE=1 ISTHMUS_PROFILES=$(TABLE_PROFILES) ISTHMUS_TRANSPORTS=$(TABLE_TRANSPORTS) \
		$(GO) test -count=1 -timeout 10m -run '^TestTransportScenarios$$' -v ./link

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Run each fuzzer for FUZZTIME (default 30s).
FUZZTIME ?= 30s
# New inputs are minimized for at most this long (go test defaults to 60s,
# which stalls a 30 s run on its first find).
FUZZMINTIME ?= 2s
fuzz:
	@$(GO) test -list 'Fuzz.*' ./... | awk '/^Fuzz/{f=f","$$1} /^ok/{if(f!="")print $$2 f; f=""}' | \
	while IFS=, read -r pkg fuzzers; do \
		for f in $$(echo $$fuzzers | tr , ' '); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg || exit 1; \
		done; \
	done

# Regenerate the codec corpus (testdata/corpus, see its README; about 13
# minutes): the synthetic captures from internal/sim; real Prosody-to-Prosody
# S2S captures recorded by internal/capture (a training session and a
# held-out session with other seeds, domains and user counts); then real
# ejabberd 23.01 <-> Prosody 0.12 S2S captures (TestCaptureServers), one
# session driven by python3-slixmpp clients, one by the mellium clients and
# one by python3-aioxmpp clients (held out from every training set).
CAPTURE = $(GO) test -count=1 -timeout 15m -run '^TestCaptureProsody$$' -v ./internal/capture
CAPTURE_SERVERS = $(GO) test -count=1 -timeout 15m -run '^TestCaptureServers$$' -v ./internal/capture
corpus:
	$(GO) test -count=1 -run '^TestWriteSimCorpus$$' ./compress -write-corpus
	rm -f testdata/corpus/prosody-*.xml.gz testdata/corpus/ejabberd-*.xml.gz
	ISTHMUS_CAPTURE_OUT=$(CURDIR)/testdata/corpus ISTHMUS_CAPTURE_NAME=prosody-train \
		ISTHMUS_CAPTURE_SEED=1 ISTHMUS_CAPTURE_DURATION=3m $(CAPTURE)
	ISTHMUS_CAPTURE_OUT=$(CURDIR)/testdata/corpus ISTHMUS_CAPTURE_NAME=prosody-heldout \
		ISTHMUS_CAPTURE_SEED=7 ISTHMUS_CAPTURE_DOMAINS=ship.example,shore.example \
		ISTHMUS_CAPTURE_USERS=6 ISTHMUS_CAPTURE_DURATION=2m $(CAPTURE)
	ISTHMUS_CAPTURE_OUT=$(CURDIR)/testdata/corpus ISTHMUS_CAPTURE_CLIENTS=slixmpp \
		ISTHMUS_CAPTURE_SEED=3 ISTHMUS_CAPTURE_USERS=7 ISTHMUS_CAPTURE_DURATION=100s $(CAPTURE_SERVERS)
	ISTHMUS_CAPTURE_OUT=$(CURDIR)/testdata/corpus ISTHMUS_CAPTURE_CLIENTS=mellium \
		ISTHMUS_CAPTURE_SEED=5 ISTHMUS_CAPTURE_USERS=8 ISTHMUS_CAPTURE_DURATION=60s $(CAPTURE_SERVERS)
	ISTHMUS_CAPTURE_OUT=$(CURDIR)/testdata/corpus ISTHMUS_CAPTURE_CLIENTS=aioxmpp \
		ISTHMUS_CAPTURE_SEED=11 ISTHMUS_CAPTURE_USERS=6 ISTHMUS_CAPTURE_DURATION=80s $(CAPTURE_SERVERS)

# Rebuild the codec's embedded dictionary from the training part of the
# corpus, set A of testdata/corpus/README (sim-seed9, prosody-heldout,
# ejabberd-* and prosody-slixmpp-* are held out for `isthmus bench`;
# see testdata/corpus/README). Same files, same bytes.
DICT_TRAIN ?= $(sort $(wildcard testdata/corpus/sim-seed[123]-*.xml.gz) $(wildcard testdata/corpus/prosody-train-*.xml.gz) $(wildcard testdata/corpus/prosody-mellium-*.xml.gz))
dict:
	$(GO) run ./cmd/isthmus train-dict -o compress/dict/isthmus.zdict $(DICT_TRAIN)

# The full chaos test: 10,000 messages both ways through two gateway
# processes over an emulated link with outages (and 5% loss on QUIC), each
# gateway killed with SIGKILL and restarted once; prints lost/duplicated/
# reordered/drain_s per transport. `make test` runs the short form.
chaos:
	$(GO) test -count=1 -timeout 30m -run 'Chaos' -v ./internal/chaos -chaos.full

# Presence at login and a login storm, real Prosody on both sides, direct
# S2S against the isthmus pair over vhf-9600 and bgan-64k (issue 7; takes
# about 15 minutes, most of it direct S2S at 9600 bit/s).
# PRESENCE_PROFILES="bgan-64k" picks others.
presence-bench:
	ISTHMUS_PRESENCE_BENCH=1 ISTHMUS_PRESENCE_PROFILES="$(PRESENCE_PROFILES)" $(GO) test -count=1 -timeout 90m -run '^TestPresenceBench$$' -v ./internal/presencebench | grep -v '^=== \|^--- \|^    bench_test.go\|^PASS\|^ok '

# The saving against direct S2S (issue 14): real Prosody (a.test) and real
# ejabberd (b.test), real clients, one scripted workload (subscriptions,
# presence at login, chat both ways, a MUC room with occupants from both
# sides, iq) over the same emulated link twice: S2S straight over it, then
# through the isthmus pair. Prints a Markdown table per profile (bytes on
# the link each way, message latency p50/p90, presence at login, direct ÷
# pair); see internal/compare and docs/measurements.md. About 7 minutes for
# vhf-9600 and 11 for iridium-2400 at the default 60s.
# COMPARE_PROFILE="vhf-9600;iridium-2400" runs several (';'-separated,
# link/emu names with overrides); COMPARE_DURATION sets the chat phase.
# Not part of `make test` (which runs the short TestCompareSmoke).
COMPARE_PROFILE ?= vhf-9600
COMPARE_DURATION ?= 60s
compare:
	@mkdir -p $(ISTHMUS_ARTIFACTS)
	@set -o pipefail; ISTHMUS_COMPARE=1 $(GO) test -count=1 -timeout 60m -run '^TestCompare$$' -v ./internal/compare \
		-args -compare.profile='$(COMPARE_PROFILE)' -compare.duration=$(COMPARE_DURATION) 2>&1 | \
		tee $(ISTHMUS_ARTIFACTS)/compare.log | grep --line-buffered -v '^=== RUN'

clean:
	rm -rf bin
