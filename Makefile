# hospital.cloud: one entry point for set-up, tests, benchmarks and the lab.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
REPO := $(CURDIR)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
COLL_ROOT := $(REPO)/.cache/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export ANSIBLE_PYTHON_INTERPRETER := $(PY)
export PATH := $(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help deps venv lock lint sanity unit integration test bench lab lab-reliability lab-destroy test-molecule test-molecule-kvm test-dmcrypt test-upgrade test-dr ee-context ee clean

help:
	@echo "make test     - set up (Debian packages, venv) and run lint, sanity, unit and integration tests"
	@echo "make lab      - the virtual rack on this machine with everything deployed (site.yml), then a summary (lab/README.md)"
	@echo "make test-molecule - molecule default scenario: site.yml on the lab rack, idempotence, testinfra"
	@echo "make test-molecule-kvm - molecule kvm scenario: kvm_host converged inside a libvirt guest (TCG here)"
	@echo "make test-dmcrypt - molecule dmcrypt scenario: a dm-crypt OSD in a TCG guest (marker not on disk, reboot)"
	@echo "make test-upgrade - rolling upgrade Debian 12 -> 13 (Ceph 16 -> 18) of a 3-host rack, interrupted and resumed (slow)"
	@echo "make test-dr  - site disaster recovery: rbd-mirror between two test-bed Ceph clusters, RPO/RTO figures (slow)"
	@echo "make ee-context - the AWX execution environment's build context (offline); make ee builds it (podman/docker)"
	@echo "make lab-destroy - remove everything make lab created"
	@echo "make bench    - benchmarks (figures and ratios against baselines; never gating)"
	@echo "make lint     - ansible-lint (production profile)"
	@echo "make sanity   - ansible-test sanity (empty ignore files)"
	@echo "make unit / make integration - the pytest tiers on their own (integration without tests/integration/dr)"

deps:
	@bash tests/testbed/install-deps.sh

$(VENV)/.stamp: requirements.txt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -c 'import rados, rbd, libvirt, cv2, ansible' || { echo "venv: Python bindings missing (run make deps)"; exit 1; }
	touch $@

venv: deps $(VENV)/.stamp
	@bash tests/testbed/collection-path.sh >/dev/null
	@$(PY) tests/testbed/collections_check.py  # galaxy.yml's and tests/requirements.yml's collections

lock: venv
	{ echo "# Pinned with: .venv/bin/pip freeze --local (make lock). Python 3.11 (Debian /usr/bin/python3, venv --system-site-packages)"; $(PY) -m pip freeze --local; } > requirements.txt

lint: venv
	ansible-lint --profile production --offline

sanity: venv
	bash tests/testbed/sanity.sh

unit: venv
	bash tests/testbed/pytest.sh tests/unit $(PYTEST_ARGS)

integration: venv
	bash tests/testbed/pytest.sh tests/integration --ignore=tests/integration/dr $(PYTEST_ARGS)

# The ops tier runs beside the rest (tests/testbed/make-test.sh says why); --durations: the CI log shows where
# the time went.
test: venv
	bash tests/testbed/make-test.sh $(PYTEST_ARGS)

bench: venv
	bash tests/bench/run.sh

test-molecule: venv
	molecule test -s default

# kvm_host inside a TCG guest: not in .ci/run (budget); run it before a release and on changes to kvm_host.
test-molecule-kvm: venv
	molecule test -s kvm

# Encryption at rest (ceph_osd_dmcrypt) in a TCG guest: not in .ci/run (the Ceph install inside TCG is slow).
test-dmcrypt: venv
	molecule test -s dmcrypt

# Rolling release upgrade bookworm -> trixie of a 3-host rack (tests/upgrade): not in .ci/run (slow; HC_KEEP_RACK=1 keeps the rack).
test-upgrade: venv
	HC_DEBIAN_SUITE=bookworm bash tests/testbed/pytest.sh tests/upgrade $(PYTEST_ARGS)

# Site disaster recovery with rbd-mirror between two host-side test-bed clusters (tests/integration/dr, ~10 min):
# not in make test (CI budget); run it on changes to rbd_mirror. Prints DR FIGURES (RPO/RTO).
test-dr: venv
	bash tests/testbed/pytest.sh tests/integration/dr $(PYTEST_ARGS)

# The execution environment's build context (offline; building the image needs podman or docker).
ee-context: venv
	rm -rf .cache/ee && ansible-galaxy collection build --output-path .cache/ee .
	ansible-builder create -f execution-environment.yml -c .cache/ee/context --output-filename Containerfile

ee: ee-context
	ansible-builder build -f execution-environment.yml -c .cache/ee/context -t hospital-cloud-ee:$$(awk '/^version:/{print $$2}' galaxy.yml)

lab: venv
	$(PY) -m lab up

lab-reliability: venv
	$(PY) -m lab reliability

lab-destroy: venv
	$(PY) -m lab down

clean:
	rm -rf .cache/sanity .pytest_cache tests/output
