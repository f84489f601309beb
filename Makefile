# Two commands do everything on a fresh machine:  `make course`  and  `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= default
ARGS    ?=
HOST    ?=
SSH_OPTS ?=
PORT    ?=
SRC     ?=
DEST    ?=
LESSON  ?=
REMOTE  := $(PYTHON) -m course_utils.tools.remote_lab
NEED_HOST = @test -n "$(HOST)" || { echo "usage: make $@ HOST=user@gpu-box [SSH_OPTS='-p 2222 -i ~/.ssh/key']  (see docs/remote.md)"; exit 2; }

.PHONY: setup data-packages test-packages course test lint unit ddp lab refresh tensorboard doctor benchmark gpu-check clean progress remote-lab remote-run remote-push remote-pull site site-serve

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

## Debian packages: Fashion-MNIST for the lessons; for the tests also sshd (remote lab) and Chromium (browser test).
data-packages:
	@bash scripts/install-system-packages.sh dataset-fashion-mnist

test-packages:
	@bash scripts/install-system-packages.sh dataset-fashion-mnist openssh-server openssh-client chromium chromium-driver

## The main job: execute every notebook at $(PROFILE) into runs/ with a summary table.
course: setup data-packages
	$(PY) -m course_utils.tools.runner --profile $(PROFILE) $(ARGS)

## Unit tests (every exercise's rules among them, as verify checks them), then every notebook executed at the ci
## profile with the reference solutions filled in (their checks strict: one not correct fails), checked by nbval.
test: setup test-packages
	rm -rf build/nbval
	$(PY) -m course_utils.tools.runner --profile ci --prepare-only --solutions --out build/nbval
	$(PY) -m pytest build/nbval tests --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

## ruff over the package, tests, benchmarks and lessons (rules in pyproject.toml); the exercises' code strings are linted by tests/test_lint.py.
lint: setup
	$(PY) -m ruff check .

unit: setup
	$(PY) -m pytest tests -q

## Lesson 16's DDP training on 2 CPU processes, every socket on 127.0.0.1 (ARGS: ddp_train's options).
ddp: setup data-packages
	TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 $(VENV)/bin/torchrun --nproc_per_node=2 --rdzv-backend=c10d \
		--rdzv-conf=store_type=file --local-addr=127.0.0.1 -m course_utils.tools.ddp_train --out runs/ddp/demo $(ARGS)

## How many exercises your working copies (workspace/) solve, per lesson.
progress: setup
	$(PY) -m course_utils.exercises progress $(ARGS)

doctor: setup
	$(PY) -m course_utils.tools.doctor $(ARGS)

## JupyterLab on your working copy workspace/ (lessons copied on first use), 127.0.0.1, a fresh token.
lab: setup
	$(PY) -m course_utils.tools.lab $(ARGS)

## Bring one lesson's working copy up to date, keeping your exercise answers: make refresh LESSON=04
refresh: setup
	@test -n "$(LESSON)" || { echo "usage: make refresh LESSON=04"; exit 2; }
	$(PY) -m course_utils.tools.lab refresh $(LESSON)

## TensorBoard on runs/tensorboard, on 127.0.0.1 only; without PORT it takes 6006 or the next free port.
tensorboard: setup
	@mkdir -p runs/tensorboard
	$(VENV)/bin/tensorboard --logdir runs/tensorboard --host 127.0.0.1 $(if $(PORT),--port $(PORT))

benchmark: setup data-packages
	$(PY) benchmarks/data_path.py $(ARGS)

## On a CUDA machine: every notebook at the gpu-check profile plus the benchmark, one summary (about 8 min).
gpu-check: setup data-packages
	PY=$(PY) OUT=runs/gpu-check bash scripts/gpu-check.sh

clean:
	rm -rf build runs

## JupyterLab on a remote GPU box through an SSH tunnel (docs/remote.md); Ctrl-C stops both ends.
remote-lab:
	$(NEED_HOST)
	$(REMOTE) lab $(HOST) $(SSH_OPTS)

## The course headless on the remote at $(PROFILE); the run folder is copied back into runs/.
remote-run:
	$(NEED_HOST)
	$(REMOTE) run $(HOST) --profile $(PROFILE) $(SSH_OPTS)

## scp -r SRC into the remote project folder (DEST, default: the folder itself).
remote-push:
	$(NEED_HOST)
	@test -n "$(SRC)" || { echo "usage: make remote-push HOST=user@gpu-box SRC=local/path [DEST=remote/path]"; exit 2; }
	$(REMOTE) push $(HOST) $(SRC) $(DEST) $(SSH_OPTS)

## scp -r SRC from the remote project folder to DEST (default: here).
remote-pull:
	$(NEED_HOST)
	@test -n "$(SRC)" || { echo "usage: make remote-pull HOST=user@gpu-box SRC=remote/path [DEST=local/path]"; exit 2; }
	$(REMOTE) pull $(HOST) $(SRC) $(DEST) $(SSH_OPTS)

## The course as a website in build/site/ from the committed notebooks, README and docs/ (nothing executed;
## skipped when no input changed; works offline, from file:// too). ARGS="--force" rebuilds anyway.
site: setup
	$(PY) -m course_utils.tools.site build $(ARGS)

## Serve build/site/ on 127.0.0.1 (port 8000 or the next free one; PORT=N picks it); Ctrl-C stops it.
site-serve: site
	$(PY) -m course_utils.tools.site serve $(if $(PORT),--port $(PORT))
