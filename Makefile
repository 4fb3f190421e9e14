# Two commands matter: `make demo` runs the whole system, `make test` proves it.
SHELL := /bin/bash
CARGO ?= cargo

# Without TEST_POSTGRES_URL the PostgreSQL variants of the storage and service tests are
# filtered out (nextest counts them as skipped) and a note says so. .ci/run sets it.
ifeq ($(strip $(TEST_POSTGRES_URL)),)
PG_FILTER := -E 'not test(/::postgres$$/)'
PG_SKIP := --skip ::postgres
PG_NOTE := echo "NOTE: TEST_POSTGRES_URL is not set: PostgreSQL tests are SKIPPED (SQLite only). Run .ci/run, or export TEST_POSTGRES_URL=postgres://USER:PASSWORD@HOST/DB (role with CREATEDB)."
else
PG_FILTER :=
PG_SKIP :=
PG_NOTE := echo "PostgreSQL tests enabled (TEST_POSTGRES_URL is set)."
endif

# idp's browser test needs Chromium; without it the test passes as skipped, and this says so.
ifeq ($(shell command -v chromium || command -v chromium-browser),)
CHROMIUM_NOTE := echo "NOTE: chromium is not installed: idp's browser test is SKIPPED (apt-get install chromium, as .ci/run does)."
else
CHROMIUM_NOTE := true
endif


.PHONY: help demo build install test config-reference e2e bench bench-peer lint fmt clean-data

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

demo: ## build and run authz, idp, rs and the demo web app (http://localhost:3000/) on SQLite under ./data, seeding the demo data (ctrl-c stops them; ARGS=--reset-demo seeds it afresh; DEMO_*_PORT move the ports); then `demo walk` (after make install; or target/debug/demo walk) walks every flow
	@./deployments/demo.sh $(ARGS)

build: ## build the three service binaries (debug, under target/debug)
	$(CARGO) build -p authz -p idp -p rs

# cargo install puts the binaries in ~/.cargo/bin, or in $(PREFIX)/bin when PREFIX is set.
PREFIX ?=
INSTALL_ROOT := $(if $(strip $(PREFIX)),--root $(PREFIX),)

install: ## install authz, idp, rs and demo (release builds) into ~/.cargo/bin, or PREFIX/bin with PREFIX=DIR
	$(CARGO) install --locked $(INSTALL_ROOT) --path services/authz
	$(CARGO) install --locked $(INSTALL_ROOT) --path services/idp
	$(CARGO) install --locked $(INSTALL_ROOT) --path services/rs
	$(CARGO) install --locked $(INSTALL_ROOT) --path tools/demo

# cargo-nextest runs each test in its own process; plain cargo test is the fallback.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

# nextest does not run doctests, so they run separately; plain cargo test runs them itself.
# They compile README.md's Rust blocks too (crates/guard includes the README as doc).
test: ## unit, integration, e2e and docs tests, and the doctests (PostgreSQL ones when TEST_POSTGRES_URL is set)
	@$(PG_NOTE)
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast $(PG_FILTER)
	$(CARGO) test --workspace --doc --no-fail-fast
else
	@echo "NOTE: cargo-nextest not found, using cargo test (cargo install cargo-nextest is faster)"
	$(CARGO) test --workspace --no-fail-fast -- $(PG_SKIP)
endif
	@$(PG_NOTE)
	@$(CHROMIUM_NOTE)

e2e: ## only the end-to-end tests (real processes via cargo run; needs cargo-nextest)
	$(CARGO) nextest run -p tests-e2e

bench: ## load-test authz's hot endpoints and the browser login (authz + idp) with tools/loadgen (release build, pinned cores) and print the tables, with RSS per row and cold start
	@python3 tools/loadgen/bench.py

bench-peer: ## the shared wrk bench against authz and node-oidc-provider in one run (needs wrk, node)
	@./tools/loadgen/peer.sh

lint: ## clippy with -D warnings, and rustfmt check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

fmt: ## format the code
	$(CARGO) fmt --all

config-reference: ## regenerate docs/configuration.md from the services' config-reference commands
	@./docs/gen-configuration.sh > docs/configuration.md

SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_SHA256 := 1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
swagger-ui: ## refresh the Swagger UI assets compiled into the admin API (crates/admin-api/assets) from the npm package swagger-ui-dist@$(SWAGGER_UI_VERSION), checking its sha256
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null \
	  && echo "$(SWAGGER_UI_SHA256)  swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz" | sha256sum -c - \
	  && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz \
	  && cp package/swagger-ui-bundle.js package/swagger-ui-standalone-preset.js package/swagger-ui.css package/LICENSE $(CURDIR)/crates/admin-api/assets/ \
	  && rm -rf $$tmp

clean-data: ## delete the demo's SQLite data directory
	rm -rf data
