# Developer commands. See README.md.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test lint fmt e2e soak demo bench release kube-start kube-stop kube-status clean

all: lint test

build:
	$(CARGO) build --workspace --all-targets

## Unit + integration tests, including the tests against the genuine local kube-apiserver (started if needed).
test:
	hack/run-tests.sh

## Formatting check and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Only the integration/e2e test binaries (tests/ directories), against the local control plane.
e2e:
	hack/run-tests.sh -E 'kind(test)'

## The fault matrix with a long outage window per fault (SOAK_SECONDS, default 240 s per fault).
soak:
	SOAK_SECONDS=$${SOAK_SECONDS:-240} hack/run-tests.sh -E 'binary(fault_matrix)'

## The main job, end to end, on this machine.
demo:
	hack/demo.sh

## Benchmarks (docs/performance.md).
bench:
	hack/bench.sh $(BENCH_ARGS)

## Release builds of the shipped binaries (what bins/Dockerfile packages), each run with --version.
release:
	$(CARGO) build --release -p ccm -p csi-controller -p cs-emulator
	@for bin in ccm csi-controller cs-emulator; do target/release/$$bin --version || exit 1; done

kube-start:
	hack/local-kube.sh start
kube-stop:
	hack/local-kube.sh stop
kube-status:
	hack/local-kube.sh status

clean:
	$(CARGO) clean
