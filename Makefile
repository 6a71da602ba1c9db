# vigil — build, run and test entry points. See README.md.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/root/.cargo/bin:$(PATH)
CARGO ?= cargo
RULES ?= rules
VIGIL := target/release/vigil

.PHONY: deps build run test deb clean

deps:
	./scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked

# Run the detector on the bundled default rules (needs root for eBPF).
run: build
	$(VIGIL) run --rules $(RULES)

# The whole test suite: unit, command-line and live kernel tests, the default
# rules' test cases, formatting and lints. CI runs exactly this.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) build --release --locked
	$(CARGO) test --workspace --locked -- --test-threads=2
	$(VIGIL) validate $(RULES)
	$(VIGIL) test --require-coverage $(RULES)

# Debian package: target/debian/vigil_<version>_<arch>.deb
deb: build
	./scripts/build-deb.sh

clean:
	$(CARGO) clean
