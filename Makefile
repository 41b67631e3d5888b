# reach_rl: make setup | make test | make demo        (see README.md)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

# The ros-jazzy wheels are CPython 3.11 builds.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.reach_rl-setup-stamp
# Franka's official libfranka bindings (libfranka >= 0.18: robot server protocol 10, FR3 system >= 5.9),
# used by the franka_ros2 stand-in (reach_rl_sim).
PYLIBFRANKA_VERSION := 0.21.3
# The deploy node's libfranka interface: franky-control bundles libfranka 0.21.2 and Ruckig and runs
# Franka's 1 kHz loop on a C++ thread without the GIL.
FRANKY_VERSION := 2.0.0
# franka-sim, the libfranka-protocol robot the deploy node is judged against, in a venv of its own.
SIM_VENV := .venv-sim

# torch is pinned and installed first: an unpinned torch resolves a multi-GB CUDA build.
TORCH_VERSION := 2.13.0
# pytest<8.4: on a ROS 2 install, launch_pytest (Jazzy) reads fixture internals that pytest 8.4
# changed, and the launch_testing pytest plugin uses a hook argument that pytest 9 removed
# (without these bounds every pytest run there fails at collection). Kept here too: one pytest.
PY_DEPS := numpy onnx onnxruntime pyyaml omegaconf tensorboard matplotlib "pytest>=8,<8.4" \
  pylibfranka==$(PYLIBFRANKA_VERSION) franky-control==$(FRANKY_VERSION)
ROS_DEPS := ros-wheels-bootstrapper ros-jazzy-rclpy ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
  ros-jazzy-geometry-msgs ros-jazzy-trajectory-msgs ros-jazzy-std-srvs ros-jazzy-diagnostic-msgs ros-jazzy-rmw-fastrtps-cpp \
  ros-jazzy-ament-package colcon-common-extensions colcon-ros catkin-pkg
# Dev tools; rsl-rl-lib (for bench/) depends on torch, so it is installed in the same pip run as
# the pinned torch, which keeps it at $(TORCH_VERSION).
# mypy<1.16: the last mypy that can type-check for --python-version 3.8 (Isaac Gym side).
# import-linter: the packages' import contract (.importlinter, test/test_import_contract.py).
DEV_DEPS := vermin "mypy<1.16" isaacgym-stubs rsl-rl-lib import-linter

# ROS environment for colcon/pytest: see env.sh (venv, LD_LIBRARY_PATH, AMENT_PREFIX_PATH, DDS on loopback).
COLCON_ARGS := --base-paths src --build-base build --install-base install
# Extra pytest arguments for `make test`, e.g. make test PYTEST_ARGS="-k packaging -x"
PYTEST_ARGS ?=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup test build demo clean
help:
	@echo "make setup   create .venv and install everything (torch $(TORCH_VERSION) CPU, ROS 2 wheels, colcon, the package)"
	@echo "make test    colcon build + colcon test (pytest) + colcon test-result; non-zero on any failure"
	@echo "            (make test PYTEST_ARGS=\"-k packaging\" to pass arguments to pytest)"
	@echo "make demo    train a policy for the libfranka interface (or reuse runs/demo/libfranka_policy.onnx),"
	@echo "            evaluate it, deploy it on franka-sim (reach-rl-launch: what franka.launch.py starts),"
	@echo "            send four targets, print errors and reflexes"
	@echo "make clean   remove build/ install/ log/"

setup: $(STAMP)

# The four colcon packages (src/<name>: package.xml, setup.cfg, <name>/, test/).
PACKAGES := reach_rl_core reach_rl_deploy reach_rl_train reach_rl_sim
SIM_SETUP := src/reach_rl_sim/scripts/setup_franka_sim.sh

$(STAMP): Makefile $(foreach p,$(PACKAGES),src/$(p)/setup.cfg src/$(p)/package.xml) $(SIM_SETUP)
	@echo "== setup: venv at $(VENV)"
	[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	@echo "== setup: torch==$(TORCH_VERSION) first (pinned)"
	$(PIP) install -q "torch==$(TORCH_VERSION)"
	@echo "== setup: Python, ROS 2 wheels, colcon, dev tools"
	$(PIP) install -q "torch==$(TORCH_VERSION)" $(PY_DEPS) $(ROS_DEPS) $(DEV_DEPS)
	@echo "== setup: franka-sim (independent FCI emulator) in $(SIM_VENV)"
	$(SIM_SETUP) $(PYTHON) $(SIM_VENV)
	@echo "== setup: the four packages (editable: reach-rl-train and the other commands on PATH)"
	$(PIP) uninstall -q -y reach_rl 2>/dev/null || true  # the single package of before
	$(PIP) install -q --no-deps $(foreach p,$(PACKAGES),-e src/$(p))
	$(VPY) -c 'import pytest; assert pytest.version_tuple[:2] < (8, 4), "pytest %s: launch_pytest needs pytest<8.4" % pytest.__version__'
	$(VPY) -c 'import torch, sys; v = torch.__version__; print("torch", v); sys.exit(0 if v.startswith("$(TORCH_VERSION)") else "torch is not $(TORCH_VERSION): " + v)'
	touch $(STAMP)
	@echo "== setup: done"

build: setup
	source ./env.sh
	@echo "== colcon build"
	colcon build $(COLCON_ARGS) --symlink-install --event-handlers console_cohesion+

test: build
	source ./env.sh
	# A DDS domain of its own for this run, and discovery on loopback only (env.sh).
	export ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( (RANDOM % 100) + 1 ))}
	echo "== colcon test (ROS_DOMAIN_ID=$$ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=$$ROS_AUTOMATIC_DISCOVERY_RANGE)"
	rm -rf build/*/pytest.xml build/*/test_results build/repo_checks
	rc=0
	# One package at a time: franka-sim's port is fixed, so its tests never run side by side.
	colcon test $(COLCON_ARGS) --executor sequential --event-handlers console_direct+ \
	  --return-code-on-test-failure $(if $(strip $(PYTEST_ARGS)),--pytest-args $(PYTEST_ARGS)) || rc=$$?
	echo "== repository checks (test/: install space, import contract, layout)"
	# exit 5 (nothing collected, e.g. PYTEST_ARGS="-k deploy"): the total below still needs tests
	python -m pytest test --junitxml=build/repo_checks/pytest.xml $(PYTEST_ARGS) || { r=$$?; [ "$$r" -eq 5 ] || rc=$$r; }
	echo "== colcon test-result"
	colcon test-result --test-result-base build --verbose | tee log/test-result.txt || { [ "$$rc" -ne 0 ] || rc=1; }
	# pytest's exit 5 (no tests collected) must not pass: require at least one test ran.
	n=$$(sed -n 's/^Summary: \([0-9]*\) tests\{0,1\},.*/\1/p' log/test-result.txt | tail -1)
	if [ -z "$$n" ] || [ "$$n" -eq 0 ]; then echo "FAIL: no test results (did pytest collect anything?)"; exit 1; fi
	# Each package's tests ran under pytest (colcon falls back to unittest, which finds none,
	# when a package's setup.cfg does not name pytest among its test extras).
	for p in $(PACKAGES); do [ -f build/$$p/pytest.xml ] || { echo "FAIL: no pytest results for $$p"; rc=1; }; done
	python test/support/skip_report.py build/*/pytest.xml
	if [ "$$rc" -ne 0 ]; then echo "FAIL: colcon test / test-result exit $$rc"; exit "$$rc"; fi
	echo "== make test: OK ($$n tests)"

# The policy is trained once and reused (delete it to train again). The demo runs the libfranka
# interface on franka-sim: the faster arm of the two sim paths (docs/deploy.md, "Two interfaces").
DEMO_POLICY := runs/demo/libfranka_policy.onnx
demo: build
	source ./env.sh
	export ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( (RANDOM % 100) + 1 ))}
	if [ -f $(DEMO_POLICY) ]; then
	  echo "== demo: reusing $(DEMO_POLICY) (delete it to train again)"
	else
	  echo "== demo: training on the built-in simulator for the libfranka interface until the goal (CPU, ~1.5 min, at most ~8)"
	  # The interface's own limits (4 rad/s^2), as the deploy tests' libfranka_policy trains.
	  reach-rl-train --interface libfranka --device cpu --out $(DEMO_POLICY)
	fi
	echo "== demo: evaluating $(DEMO_POLICY) on held-out targets, 50 in a row"
	reach-rl-eval $(DEMO_POLICY) --targets 500 --in-a-row 50
	echo "== demo: reach-rl-launch interface:=libfranka sim:=true (franka-sim + deploy node, as franka.launch.py starts them)"
	# Job control: the runner has a process group of its own and does not ignore SIGINT (a
	# non-interactive shell's background jobs would).
	set -m
	reach-rl-launch interface:=libfranka sim:=true policy:=$(abspath $(DEMO_POLICY)) \
	  > log/demo_launch.log 2>&1 &
	launch=$$!
	# At the end SIGINT: the runner stops the deploy node (it ramps to zero and ends its motion),
	# then franka-sim. SIGKILL after 30 s: the runner's processes die with it.
	stop_launch() {
	  kill -INT $$launch 2>/dev/null || true
	  for i in $$(seq 150); do kill -0 $$launch 2>/dev/null || break; sleep 0.2; done
	  kill -KILL $$launch 2>/dev/null || true
	  wait $$launch && echo "== demo: reach-rl-launch stopped everything cleanly" \
	    || echo "== demo: reach-rl-launch exit $$?: see log/demo_launch.log"
	  if (exec 3<>/dev/tcp/127.0.0.1/1337) 2>/dev/null; then echo "== demo: TCP 1337 is still taken"; fi
	}
	trap stop_launch EXIT
	reach-rl-targets --hold 3 --wait 60 0.45,0.20,0.35 0.50,-0.20,0.50 0.35,0.05,0.25 0.55,0.25,0.45

clean:
	rm -rf build install log
