# episode-runtime developer/CI entry points. `make setup` once, then `make test`.

PY ?= .venv/bin/python
DOCKER ?= docker
PYTEST_ARGS ?=

PROTO := protos/runtime/v1/runtime.proto
PROTO_OUT := runtime/v1
MANAGED_LABEL := io.episode-runtime.managed
# Only lint directories that exist (environments/ may be empty or absent early on).
LINT_PATHS := $(wildcard runtime tests environments benchmarks)

.DEFAULT_GOAL := help
.PHONY: help setup serve images proto proto-check lint typecheck test test-gvisor clean-check clean fmt bench

help:
	@echo "make setup        install docker/mmdebstrap/make, start dockerd, create .venv, build images"
	@echo "make serve        run the gRPC server ($(PY) -m runtime serve)"
	@echo "make images       build sandbox images (BASE_IMAGE=... to build FROM a registry image)"
	@echo "make proto        regenerate $(PROTO_OUT)/ from $(PROTO)"
	@echo "make proto-check  fail if the committed stubs in $(PROTO_OUT)/ are stale"
	@echo "make lint         ruff check + ruff format --check"
	@echo "make typecheck    mypy (strict)"
	@echo "make test         lint, typecheck, pytest (PYTEST_ARGS=...), leftover-container check"
	@echo "make fmt          ruff format + ruff check --fix"
	@echo "make clean        remove the sandboxes of instances $(INSTANCES) (the tests' and the dev"
	@echo "                  loop's) and no others: another server's live episodes are never touched;"
	@echo "                  INSTANCES=\"NAME 'PATTERN*' ...\" names the instances, e.g. after a crash"
	@echo "make test-gvisor  the sandbox test set under gVisor (runsc) only"
	@echo "make bench        benchmark against the raw Docker SDK (BENCH_ARGS=--quick)"
	@echo "make soak         hostile episodes against a real server; fails on a canary miss, a leak, a"
	@echo "                  lost sandbox (SOAK_EPISODES=1000 SOAK_CONCURRENCY=16 SOAK_ISOLATION=runc|gvisor)"
	@echo "make dev          the docker-compose dev loop: build, up, wait until healthy"
	@echo "make dev-down     stop the dev loop and remove its sandboxes"

setup:
	bash scripts/setup.sh

serve:
	$(PY) -m runtime serve

images:
	bash sandbox_images/build.sh

proto:
	@test -f $(PROTO) || { echo "error: $(PROTO) not found" >&2; exit 1; }
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO)
	@test -f $(PROTO_OUT)/__init__.py || \
		printf '%s\n' '"""Generated gRPC/protobuf code; regenerate with `make proto`."""' > $(PROTO_OUT)/__init__.py

# Stale stubs show up as a diff; stubs that were never added show up as untracked files.
proto-check: proto
	@git diff --exit-code -- $(PROTO_OUT) || { \
		echo "error: $(PROTO_OUT)/ is stale; run 'make proto' and commit the result" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- $(PROTO_OUT))"; \
	if [ -n "$$untracked" ]; then \
		echo "error: generated files not committed:" >&2; echo "$$untracked" >&2; exit 1; \
	fi

lint:
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

typecheck:
	$(PY) -m mypy runtime

# clean-check runs even when pytest fails (leftover containers are a useful clue);
# the target fails if either did.
# The run's containers carry a unique owner label, so clean-check judges this run only.
TEST_OWNER := pytest-$(shell date +%s)-$(shell od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
# The sandbox test set runs a second time under gVisor (runsc), which setup registers: the
# sandbox defaults, the agent's isolation, the soak, the request surface, and the rewards' cheats.
SANDBOX_TESTS := tests/test_sandbox_defaults.py tests/test_builtin_tools.py \
	tests/test_agent_isolation.py tests/test_soak.py tests/test_request_surface.py \
	tests/test_env_shell_tasks_cheats.py tests/test_env_humaneval_harness.py
# ... and a shipped shell environment's gold episodes, end to end, under gVisor.
GVISOR_ENV_TEST = $(PY) -m runtime env test shell_tasks --sandbox-isolation gvisor -c 4
test: lint typecheck proto-check
	@status=0; \
	RUNTIME_TEST_OWNER=$(TEST_OWNER) $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	echo "--- the sandbox test set again, under gVisor ---"; \
	RUNTIME_TEST_OWNER=$(TEST_OWNER) RUNTIME_TEST_ISOLATION=gvisor \
		$(PY) -m pytest $(SANDBOX_TESTS) $(PYTEST_ARGS) || { [ $$status -ne 0 ] || status=1; }; \
	echo "--- env test shell_tasks, under gVisor ---"; \
	$(GVISOR_ENV_TEST) --instance-name $(TEST_OWNER) || { [ $$status -ne 0 ] || status=1; }; \
	if [ "$${CI:-}" = "true" ]; then \
		echo "--- restarting dockerd under a live episode (CI only: it stops every container) ---"; \
		RUNTIME_TEST_OWNER=$(TEST_OWNER) RUNTIME_TEST_DOCKERD_RESTART=1 $(PY) -m pytest \
			tests/test_server_faults.py -k docker_daemon_restart $(PYTEST_ARGS) \
			|| { [ $$status -ne 0 ] || status=1; }; \
	fi; \
	$(MAKE) --no-print-directory clean-check OWNER=$(TEST_OWNER) || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

test-gvisor:
	RUNTIME_TEST_ISOLATION=gvisor $(PY) -m pytest $(SANDBOX_TESTS) $(PYTEST_ARGS)
	$(GVISOR_ENV_TEST)

OWNER ?=
CHECK_FILTER = --filter label=$(MANAGED_LABEL) $(if $(OWNER),--filter label=io.episode-runtime.owner=$(OWNER))
clean-check:
	@left="$$($(DOCKER) ps -aq $(CHECK_FILTER))" || { \
		echo "error: clean-check: cannot list containers (is dockerd running?)" >&2; exit 1; }; \
	if [ -n "$$left" ]; then \
		echo "error: containers labelled $(MANAGED_LABEL) left behind (remove with 'make clean'):" >&2; \
		$(DOCKER) ps -a $(CHECK_FILTER) \
			--format 'table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}' >&2; \
		exit 1; \
	fi; \
	echo "clean-check: no managed containers left"

# Only the sandboxes of these instances (names or shell patterns): those of the project's tests
# (every owner label the tests use starts with pytest-) and of the dev loop (RUNTIME_DEV_INSTANCE,
# default compose). Another server on this Docker daemon keeps its live episodes.
INSTANCES ?= pytest-* $(or $(RUNTIME_DEV_INSTANCE),compose)
clean:
	@DOCKER="$(DOCKER)" bash scripts/clean.sh $(foreach i,$(INSTANCES),'$(i)')

fmt:
	$(PY) -m ruff format $(LINT_PATHS)
	$(PY) -m ruff check --fix $(LINT_PATHS)

bench: ; $(PY) benchmarks/bench.py $(BENCH_ARGS)

# The hostile soak (docs/soak.md): its own server, instance soak-<random>, report in bench-results/.
.PHONY: soak
SOAK_EPISODES ?= 1000
SOAK_CONCURRENCY ?= 16
SOAK_ISOLATION ?= runc
SOAK_ARGS ?=
soak:
	$(PY) benchmarks/soak.py --episodes $(SOAK_EPISODES) --concurrency $(SOAK_CONCURRENCY) \
		--isolation $(SOAK_ISOLATION) --json bench-results/soak-$(SOAK_ISOLATION).json $(SOAK_ARGS)

# --- docker-compose dev loop (docker-compose.yml, README, "Dev loop") ----------------------------
.PHONY: server-image dev dev-down

# The server's image for compose, built offline (host-built wheels; BASE_IMAGE=... for a
# registry base); skipped when up to date.
server-image:
	bash deploy/build-server-image.sh

# Build what is missing, start the stack, wait until healthy, print how to run an eval.
dev:
	bash scripts/dev.sh up

# Remove the stack (containers, network, volumes) and every sandbox its server left.
dev-down:
	bash scripts/dev.sh down
