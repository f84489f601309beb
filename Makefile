# Two commands do everything on a fresh machine:  `make course`  and  `make test`.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= default
ARGS    ?=
HOST    ?=
SSH_OPTS ?=

.PHONY: setup system-packages course test unit lab doctor benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

system-packages:
	@bash tools/install-system-packages.sh

## The main job: execute every notebook at $(PROFILE) into runs/ with a summary table.
course: setup system-packages
	$(PY) -m course_utils.runner --profile $(PROFILE) $(ARGS)

## Unit tests plus every notebook executed at the ci profile, checked by nbval.
test: setup system-packages
	rm -rf build/nbval
	$(PY) -m course_utils.runner --profile ci --prepare-only --out build/nbval
	$(PY) -m pytest tests build/nbval --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider -n 2 --dist loadfile

unit: setup
	$(PY) -m pytest tests -q

lab: setup
	$(VENV)/bin/jupyter lab notebooks

benchmark: setup system-packages
	$(PY) benchmarks/data_path.py $(ARGS)

clean:
	rm -rf build runs
