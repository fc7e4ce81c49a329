# Build and test voxplane.pbx. Every target installs what it needs and is idempotent:
# a second run does nothing heavy.
#
#   make test         deps venv collection sanity lint unit integration integration-targets, then
#                     two lanes in parallel, one a core: sip then media; attack, molecule,
#                     release-check and demo-fresh one after the other (each lane logged to
#                     build/test-results/<lane>.log, printed when all are done), then one summary line
#   make venv         .venv with the pinned tools of requirements/test.txt (reinstalled on change)
#   make try          venv + collection, no root and no system packages: the modules against a file
#                     under /tmp (README "Try the modules without a PBX")
#   make deps         Debian packages the tests need (apt only when one is missing)
#   make collection   build/collections/ansible_collections/voxplane/pbx -> this tree, and the
#                     collections it depends on (community.postgresql) beside it
#   make sanity       ansible-test sanity, offline, on a copy under build/sanity
#   make lint         ansible-lint, offline, on playbooks/ and roles/
#   make unit | integration | sip | attack | media    pytest on tests/<suite> (PYTEST_ARGS='-n 2 -k x' ...)
#   make cdr-load     CDR_CALLS (1000) calls through Kamailio give exactly as many call records
#   make integration-targets  ansible-test integration --local on tests/integration/targets/
#   make molecule     the roles' molecule scenarios (roles/*/molecule/default, delegated, localhost)
#   make release-check    tarball, galaxy-importer, install + user playbook + ansible-lint of the
#                     installed copy, ansible-builder introspect, changelog (tools/release-check.sh)
#   make fuzz         the attack suite's fuzz stage alone, 10,000 messages (FUZZ_MESSAGES, FUZZ_SEED)
#   make demo | demo-stop            playbooks/demo.yml | demo-stop.yml on inventories/demo
#   make demo-clean   demo-stop, then remove every file the demo left (playbooks/demo-clean.yml)
#   make demo-fresh   demo-clean, make demo as on a machine that never ran it (its summary line
#                     required; log in build/test-results/demo.log), demo-stop
#   make bench-tools  profilers for the benchmarks only (linux-perf, py-spy pinned); never needed by a test
#   make profile      bench/profile_worker.py: flame graphs of a router worker under load into docs/flamegraphs
#   make clean        build output and caches;  make distclean  also .venv
#   make lock         re-resolve requirements/constraints.txt from requirements/test.txt (and
#                     requirements/release-constraints.txt from requirements/release.txt)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

ROOT := $(CURDIR)
PYTHON ?= python3
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.voxplane-requirements.stamp
REQUIREMENTS := requirements/test.txt requirements/constraints.txt

BUILD := $(ROOT)/build
COLLECTION_LINK := $(BUILD)/collections/ansible_collections/voxplane/pbx
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/voxplane/pbx
RESULTS := $(BUILD)/test-results

# ansible-test: the controller Python of the venv; extra options via SANITY_ARGS
# (e.g. SANITY_ARGS='--test pylint').
SANITY_PYTHON := 3.11
SANITY_ARGS ?=
PYTEST_ARGS ?=
LINT_ARGS ?=
DEMO_ARGS ?=

# graphviz draws the call-flow SVGs (route_info, tenant_info); chromium renders them in the tests.
APT_PACKAGES := kamailio kamailio-python3-modules kamailio-sqlite-modules \
	kamailio-postgres-modules kamailio-utils-modules kamailio-extra-modules \
	sip-tester baresip-core sqlite3 shellcheck sipvicious nginx-light python3-jinja2 \
	rtpengine-daemon nftables conntrack iproute2 kamailio-tls-modules kamailio-websocket-modules \
	espeak-ng sox python3-venv graphviz chromium postgresql-15 python3-psycopg2 ssl-cert prometheus

# The venv's tools first on PATH (ansible-lint and molecule look up ansible-* there), and
# this repository's ansible.cfg wherever a tool changes directory.
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help test try venv deps collection sanity lint unit integration sip attack media fuzz summary \
	demo demo-stop demo-clean clean distclean lock molecule release-check integration-targets \
	bench-tools profile cdr-load

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------- everything
# tools/test-steps.sh runs them: prerequisites first (a failure there stops), then every check
# even when an earlier one failed, each timed; the last line is the pytest total over unit,
# integration, sip, attack and media.
# sip and attack each deploy their own Kamailio (random 127.0.0.x, free ports) and run at the
# same time; their output goes to $(RESULTS)/<suite>.log and is printed once all are done.
# A parallel step a+b+c is one lane running make -k a b c (molecule and release-check deploy
# on 127.0.0.61-.64, demo-fresh removes every trace of the demo and runs make demo on 127.0.0.1-.3
# and its own namespaces; they fit in the time sip takes). `make -j` is not supported here.
# media is a lane of its own beside them (random 127.0.0.x, free ports like sip), its pytest
# at a higher priority (nice -5): its tests play and record audio in real time.
TEST_STEPS := sanity lint unit integration integration-targets
# Two lanes on this project's 2-core machines: sip and media (real-time audio) never share the
# cores with each other, only with the attack lane.
PARALLEL_STEPS := sip+media attack+molecule+release-check+demo-fresh

test:
	@MAKE="$(MAKE)" tools/test-steps.sh "$(RESULTS)" "deps venv collection" "$(TEST_STEPS)" "$(PARALLEL_STEPS)"

# ---------------------------------------------------------------------------- python tools
venv: $(VENV_STAMP)
	@:

$(VENV_STAMP): $(REQUIREMENTS)
	@if ! "$(BIN)/python" -c 'import sys' >/dev/null 2>&1; then \
		echo "venv: creating $(VENV) with $$($(PYTHON) -c 'import sys; print(sys.executable)')"; \
		rm -rf "$(VENV)"; \
		$(PYTHON) -m venv "$(VENV)"; \
	fi
	"$(BIN)/python" -m pip install --quiet -r requirements/test.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch "$@"

# Re-resolve the transitive pins from the direct ones (in a scratch venv).
lock:
	rm -rf "$(BUILD)/lock-venv"
	$(PYTHON) -m venv "$(BUILD)/lock-venv"
	grep -v '^-c ' requirements/test.txt > "$(BUILD)/lock-requirements.txt"
	"$(BUILD)/lock-venv/bin/python" -m pip install --quiet -r "$(BUILD)/lock-requirements.txt"
	{ echo "# Transitive pins for requirements/test.txt, written by \`make lock\`; do not edit by hand."; \
	  "$(BUILD)/lock-venv/bin/python" -m pip freeze --all --exclude pip --exclude setuptools \
	    | grep -v -i -E "^($$(grep -E -o '^[A-Za-z0-9_.-]+==' requirements/test.txt | tr -d '=' | paste -sd'|'))=="; \
	} > requirements/constraints.txt
	rm -rf "$(BUILD)/lock-venv" "$(BUILD)/lock-requirements.txt"
	$(PYTHON) -m venv "$(BUILD)/lock-venv"
	"$(BUILD)/lock-venv/bin/python" -m pip install --quiet $$(grep -v -E '^(#|-c |$$)' requirements/release.txt)
	{ echo "# Transitive pins for requirements/release.txt (galaxy-importer's venv); refresh with \`make lock\`."; \
	  "$(BUILD)/lock-venv/bin/python" -m pip freeze --all --exclude pip --exclude setuptools | grep -v -i '^galaxy.importer=='; \
	} > requirements/release-constraints.txt
	rm -rf "$(BUILD)/lock-venv"

# The modules without a PBX and without root (README "Try the modules without a PBX"): the virtualenv
# and the collection link only; no Debian package, no Kamailio.
try: venv collection
	@echo "try: ready. From this folder: .venv/bin/ansible-playbook /tmp/voxplane-tour/tour.yml -e vault_anna_desk=..."
	@echo "     (the README's tour, saved there; its directory is /tmp/voxplane-tour/directory.db)"

# ---------------------------------------------------------------------------- system packages
deps:
	@tools/apt-deps.sh $(APT_PACKAGES)

# ---------------------------------------------------------------------------- collection path
# A relative link, so the tree can move: build/collections/ansible_collections/voxplane/pbx -> ../../../..
# galaxy.yml's dependencies come from the ansible package on PyPI (tools/collection-deps.sh).
ANSIBLE_PACKAGE := ansible==12.3.0
COLLECTION_DEPS := community.postgresql
collection: venv
	@if [ "$$(readlink "$(COLLECTION_LINK)" 2>/dev/null)" != "../../../.." ]; then \
		mkdir -p "$(dir $(COLLECTION_LINK))"; \
		rm -rf "$(COLLECTION_LINK)"; \
		ln -s ../../../.. "$(COLLECTION_LINK)"; \
		echo "collection: $(COLLECTION_LINK) -> $(ROOT)"; \
	fi
	@tools/collection-deps.sh "$(BIN)/pip" "$(ANSIBLE_PACKAGE)" "$(BUILD)/collections" $(COLLECTION_DEPS)

# ---------------------------------------------------------------------------- static checks
# ansible-test needs .../ansible_collections/voxplane/pbx and tests what git would commit:
# it runs on a fresh copy of that. It bootstraps pip into its per-test venvs
# (~/.ansible/test/venv, reused on later runs) with a get-pip script from a host that is
# unreachable here; tools/get_pip_offline.py stands in for it (pip and PyPI do the rest).
sanity: venv
	@"$(BIN)/python" tools/get_pip_offline.py --install-shim "$(BIN)/python"
	@tools/sanity-tree.sh "$(SANITY_ROOT)"
	cd "$(SANITY_ROOT)" && env -u ANSIBLE_CONFIG "$(BIN)/ansible-test" sanity --local --python $(SANITY_PYTHON) $(SANITY_ARGS)

lint: venv collection
	ansible-lint $(LINT_ARGS) playbooks/ roles/

# ---------------------------------------------------------------------------- pytest suites
# $(call pytest_suite,NAME[,OPTIONS[,PREFIX]]): pytest on tests/NAME (run by PREFIX, e.g. nice) with a JUnit report; a suite without
# tests yet (no folder, or pytest's exit 5 "no tests collected") passes with a note.
define pytest_suite
	@mkdir -p "$(RESULTS)"; rm -f "$(RESULTS)/$(1).xml"
	@if [ ! -d tests/$(1) ]; then echo "$(1): no tests/$(1) folder yet"; exit 0; fi; \
	rc=0; $(3) "$(BIN)/python" -m pytest tests/$(1) --junitxml="$(RESULTS)/$(1).xml" $(2) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "$(1): no tests collected in tests/$(1) yet"; rc=0; fi; \
	exit $$rc
endef

# unit and integration on two pytest workers, a file's tests on one (each test has its own directory, SQLite file or
# PostgreSQL schema; each worker its own PostgreSQL server).
unit: venv collection deps
	$(call pytest_suite,unit,-n 2 --dist loadfile)

integration: venv collection deps
	$(call pytest_suite,integration,-n 2 --dist loadfile)

sip: venv collection deps
	$(call pytest_suite,sip)

# Call records under load (docs/operations.md#call-detail-records): CDR_CALLS calls through the real
# Kamailio must leave exactly as many records (make sip runs the same test with 200).
CDR_CALLS ?= 1000
cdr-load: venv collection deps
	@mkdir -p "$(RESULTS)"
	VOXPLANE_CDR_LOAD_CALLS=$(CDR_CALLS) "$(BIN)/python" -m pytest tests/sip/test_call_records.py -k load \
		-p no:cacheprovider --junitxml="$(RESULTS)/cdr-load.xml" $(PYTEST_ARGS)

# The attack suite (docs/testing.md): SIPVicious, bans, floods and the fuzz stage against a
# Kamailio of its own. No pytest cache: it runs next to the sip suite in make test.
attack: venv collection deps
	$(call pytest_suite,attack,-p no:cacheprovider)

# The media service (docs/media.md): deployed by its role, called by pjsua2 test phones with
# real audio (tests/media).
media: venv collection deps
	$(call pytest_suite,media,-p no:cacheprovider,nice -n -5)

# The fuzz stage alone, long: FUZZ_MESSAGES (default 10000) messages, seed FUZZ_SEED (default:
# the current time, printed in the report; give it again to replay a run).
FUZZ_MESSAGES ?= 10000
FUZZ_SEED ?=
fuzz: venv collection deps
	@mkdir -p "$(RESULTS)"
	seed=$(if $(FUZZ_SEED),$(FUZZ_SEED),$$(date +%s)); echo "fuzz: $(FUZZ_MESSAGES) messages, seed $$seed"; \
	VOXPLANE_FUZZ_MESSAGES=$(FUZZ_MESSAGES) VOXPLANE_FUZZ_SEED=$$seed \
	VOXPLANE_ATTACK_SUMMARY="$(RESULTS)/fuzz-summary.txt" \
	"$(BIN)/python" -m pytest tests/attack/test_fuzz.py -p no:cacheprovider --junitxml="$(RESULTS)/fuzz.xml" $(PYTEST_ARGS)

# ansible-test's own integration targets (tests/integration/targets/*), on the same kind of copy
# as sanity; TARGETS_ARGS picks targets or adds options.
TARGETS_ROOT := $(BUILD)/targets/ansible_collections/voxplane/pbx
TARGETS_ARGS ?=
integration-targets: venv
	@tools/sanity-tree.sh "$(TARGETS_ROOT)"
	cd "$(TARGETS_ROOT)" && env -u ANSIBLE_CONFIG "$(BIN)/ansible-test" integration --local --python $(SANITY_PYTHON) $(TARGETS_ARGS)

# ---------------------------------------------------------------------------- roles and release
# Each role's molecule scenario against this machine (docs/testing.md). prerun off in
# molecule.yml: molecule would otherwise install the collection into ~/.ansible/collections.
MOLECULE_ROLES := directory kamailio rtpengine provisioning media
molecule: venv collection deps
	@for role in $(MOLECULE_ROLES); do \
		echo "==> molecule test: roles/$$role"; \
		(cd roles/$$role && molecule test) || exit 1; \
	done

# The collection as users get it: tools/release-check.sh (docs/releasing.md).
release-check: venv collection deps
	@tools/release-check.sh

summary:
	@echo "Test summary (JUnit reports in $(RESULTS)):"
	@"$(BIN)/python" tools/test_summary.py "$(RESULTS)/unit.xml" "$(RESULTS)/integration.xml" "$(RESULTS)/sip.xml" \
		"$(RESULTS)/attack.xml" "$(RESULTS)/media.xml"

# ---------------------------------------------------------------------------- demo
demo: deps venv collection
	ansible-playbook -i inventories/demo playbooks/demo.yml $(DEMO_ARGS)

demo-stop: venv collection
	ansible-playbook -i inventories/demo playbooks/demo-stop.yml $(DEMO_ARGS)

demo-clean: venv collection
	ansible-playbook -i inventories/demo playbooks/demo-clean.yml $(DEMO_ARGS)

# The README's first command on a machine that never ran it (make test runs this): every trace
# of an earlier demo removed, then make demo, which must end with its summary line; stopped
# again afterwards whatever happened.
demo-fresh: deps venv collection
	@mkdir -p "$(RESULTS)"
	@echo "demo-fresh: removing every trace of an earlier demo (make demo-clean)"
	@$(MAKE) demo-clean > "$(RESULTS)/demo-clean.log" 2>&1 || { cat "$(RESULTS)/demo-clean.log"; exit 1; }
	@echo "demo-fresh: make demo (log in $(RESULTS)/demo.log)"
	@rc=0; $(MAKE) demo > "$(RESULTS)/demo.log" 2>&1 || rc=$$?; \
	$(MAKE) demo-stop > "$(RESULTS)/demo-stop.log" 2>&1 || true; \
	line=$$(grep -A6 "voxplane demo passed:" "$(RESULTS)/demo.log" | tr -s ' \n' ' ' | sed -e "s/^.*msg: '//" -e "s/'.*$$//"); \
	if [ "$$rc" -ne 0 ] || [ -z "$$line" ]; then \
		tail -n 80 "$(RESULTS)/demo.log"; echo "demo-fresh: FAILED (make demo exit $$rc, no summary line)"; exit 1; \
	fi; \
	echo "demo-fresh: $$line"

# ---------------------------------------------------------------------------- benchmarks only
# Profilers for bench/profile_worker.py (docs/benchmarks.md), never a prerequisite of a test: Debian's
# linux-perf (perf, for the kernel the machine runs) and py-spy from PyPI at a pinned version,
# into the venv. make profile draws the flame graphs into docs/flamegraphs under the exclusive
# benchmark lock (PROFILE_ARGS: e.g. --seconds 8 --rate 2000 --request register).
BENCH_APT_PACKAGES := linux-perf
BENCH_PIP_PACKAGES := py-spy==0.4.3
PROFILE_ARGS ?=
bench-tools: venv
	@tools/apt-deps.sh $(BENCH_APT_PACKAGES)
	@$(BIN)/python -m pip install --quiet $(BENCH_PIP_PACKAGES)

profile: bench-tools collection
	$(BIN)/python bench/profile_worker.py $(PROFILE_ARGS)

# ---------------------------------------------------------------------------- cleaning
clean:
	rm -rf "$(BUILD)" tests/output .pytest_cache .ansible
	find . -path ./.venv -prune -o -path ./.git -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf "$(VENV)"
