# stepup — build and test entry points. `make` runs the tests.

.DEFAULT_GOAL := test
.PHONY: test redis-server chromium build vet bench

GO ?= go

# apt-get needs root; use sudo only when not already root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Tests run against a real redis-server (internal/redistest), never an
# emulation, and the console's in a real browser (headless chromium), so
# make sure both are installed first.
test: redis-server chromium
	$(GO) test -race ./...

redis-server:
	@command -v redis-server >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server)

# The console's and the hosted prompt's browser tests (console/, prompt/)
# drive Debian's headless chromium.
chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# Screenshots of the hosted prompt's pages for the README (docs/prompt/).
screenshots: chromium
	STEPUP_SCREENSHOTS=1 $(GO) test -count=1 -run 'TestPrompt' ./prompt/

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run XXX -bench . ./...
