# spis: `make help` lists the verbs.

MEDIA ?= tests/fixtures/photos
LISTEN ?= 127.0.0.1:8080
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
AARCH64_BIN := $(TARGET_DIR)/aarch64-unknown-linux-musl/release/spis
CARD_DIR := $(TARGET_DIR)/card
IMAGE ?= $(CARD_DIR)/spis-cm4.img

.DEFAULT_GOAL := help
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local
DESTDIR ?=
BIN ?=

.PHONY: help run test lint msrv unit api web soak aarch64 card-test deploy-check static bench fuzz build install uninstall card image image-test buildroot-check clean

help: ## List the verbs
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run: ## Serve MEDIA (default: the demo photos) on http://LISTEN
	$(CARGO) run --release -- --media "$(MEDIA)" --listen "$(LISTEN)" $(ARGS)

test: lint msrv unit api web soak aarch64 card-test deploy-check ## Everything CI runs: formatting, lints, the 1.88 build and all tests

lint: ## No C in the dependency tree, cargo fmt --check, shellcheck, clippy with warnings as errors
	scripts/setup-test-deps.sh
	scripts/check-pure-rust.sh
	$(CARGO) fmt --check
	shellcheck -x $$(grep -rlE '^#!(/usr)?/bin/(env )?(ba)?sh' scripts rootfs buildroot .ci tests/web/*.sh tests/api/*.sh) scripts/card/apt.sh tests/api/venv.sh
	$(CARGO) clippy --all-targets --locked -- -D warnings

msrv: ## Check that the crate builds with Rust 1.88 (what Buildroot 2026.02 ships)
	rustup toolchain list | grep -q '^1\.88' || rustup toolchain install 1.88 --profile minimal
	$(CARGO) +1.88 check --all-targets --locked --target-dir "$${CARGO_TARGET_DIR:-target}/msrv"

unit: ## Unit and integration tests (the real binary on 127.0.0.1:0)
	$(CARGO) test --all-targets --locked

api: ## The API against its OpenAPI document (schemathesis, every check), resumable uploads with tuspy, and TLS with sslyze (Mozilla intermediate)
	$(CARGO) build --locked
	SPIS_BIN="$(TARGET_DIR)/debug/spis" tests/api/schemathesis.sh
	SPIS_BIN="$(TARGET_DIR)/debug/spis" tests/api/tus.sh
	SPIS_BIN="$(TARGET_DIR)/debug/spis" tests/api/sslyze.sh

web: ## Type-check web/ (strict tsc), then the web app in a real browser (Debian chromium) against the real server, and Lighthouse (accessibility, best practices, SEO at 100)
	tests/web/typecheck.sh
	$(CARGO) build --locked
	SPIS_BIN="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug/spis" SCREENSHOT_DIR="$(CURDIR)/target/screenshots" tests/web/run.sh
	@# A new deploy needs a web app that can change under the running server: --web-dir.
	SPIS_BIN="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug/spis" SPIS_WEB_DIR="$(CURDIR)/web" \
	  SCREENSHOT_DIR="$(CURDIR)/target/screenshots" tests/web/run.sh --test-name-pattern="new deploy"

soak: ## 60 s of wrk at 256 connections while files come and go and the folder vanishes and returns
	$(CARGO) build --locked
	SPIS_BIN="$(TARGET_DIR)/debug/spis" scripts/soak.sh

aarch64: ## The static aarch64 (Pi) binary, smoke-tested under qemu-aarch64-static
	scripts/static.sh aarch64-unknown-linux-musl
	scripts/smoke-aarch64.sh "$(AARCH64_BIN)"

card-test: ## Build the card (make card, no .xz) and boot it as a CM4 in QEMU raspi4b (make image-test)
	scripts/static.sh aarch64-unknown-linux-musl
	CARD_XZ=0 scripts/card/build.sh "$(AARCH64_BIN)"
	scripts/card/test.sh "$(CARD_DIR)/spis-cm4.img"

static: ## Fully static, stripped musl binaries for x86_64 and aarch64 under TARGET_DIR
	scripts/static.sh

bench: ## Benchmarks, shipped binary beside glibc: 100k-photo index, list latency, RSS; the same on SD-card-speed storage; thumbnails and signed URLs vs vips and nginx; peak RSS with 100k indexed while camera photos render; AVIF vs vips; live latency; zip, uploads; HTTPS vs nginx; Lighthouse performance
	scripts/bench.sh
	scripts/bench/slow.sh
	scripts/bench/thumbs.sh
	scripts/bench/memory.sh
	scripts/bench/avif.sh
	scripts/bench/live.sh
	scripts/bench/transfer.sh
	scripts/bench/tls.sh
	scripts/bench/lighthouse.sh

fuzz: ## Fuzz the header parsers, dates, queries and the thumbnail pipeline, FUZZ_SECONDS (60) each
	scripts/fuzz.sh $(FUZZ_SECONDS)

build: ## Release binary in target/release/spis
	$(CARGO) build --release --locked

install: $(if $(BIN),,build) ## Binary to PREFIX/bin, systemd unit, sysusers, /etc/spis/spis.toml if none (BIN, DESTDIR)
	BIN="$(or $(BIN),$(TARGET_DIR)/release/spis)" PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/install.sh install

uninstall: ## Remove what install put there; keeps an edited config and the state dir
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/install.sh uninstall

deploy-check: ## Offline: make install into a temp DESTDIR, hadolint, compose and Kubernetes manifests
	$(CARGO) build --locked
	SPIS_BIN="$(TARGET_DIR)/debug/spis" scripts/deploy/check.sh

card: ## The CM4 card image, offline from Debian packages: spis-cm4.img, .img.xz, SHA256SUMS in TARGET_DIR/card
	scripts/static.sh aarch64-unknown-linux-musl
	scripts/card/build.sh "$(AARCH64_BIN)"

image-test: ## Boot a card image (IMAGE=..., default the one make card built) as a CM4 in QEMU raspi4b and check it
	scripts/card/test.sh "$(IMAGE)"

image: ## Appliance sdcard.img for a Raspberry Pi CM4 with Buildroot (internet; BUILDROOT, O, BR2_DL_DIR)
	scripts/static.sh aarch64-unknown-linux-musl
	scripts/buildroot.sh image

buildroot-check: ## Offline: defconfig resolves, check-package, shellcheck (BUILDROOT=a Buildroot checkout)
	scripts/buildroot.sh check

clean: ## Remove build output
	$(CARGO) clean
