# drsn-edge: a thin layer over the `drsn-edge` CLI. `make help` lists the targets.
#   make all                      the whole pipeline on the default (emulated) board
#   make test                     the test suite
#   make train CONFIG=configs/smoke.toml SET="train.epochs=3 model.arch=drsn_cs"

CONFIG ?= configs/default.toml
SET    ?=
VENV   := .venv
CLI    := $(VENV)/bin/drsn-edge
ARGS   := --config $(CONFIG) $(foreach s,$(SET),--set $(s))

.DEFAULT_GOAL := help
.PHONY: help setup all train quantize data test clean

help:  ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: CONFIG=$(CONFIG)  SET=\"key=value ...\""

setup:  ## install Debian packages and the Python environment (idempotent)
	@scripts/setup.sh

all: train quantize  ## the pipeline as far as it exists: train, quantize (flash, hil follow)

data: setup  ## generate the datasets under build/data and report how hard they are
	$(CLI) data $(ARGS)

train: setup  ## train DRSN + ResNet baseline; build/model/, build/reports/train.{json,md}
	$(CLI) train $(ARGS)

quantize: setup  ## int8 QAT/PTQ, .tflite for TFLM, op audit, parity; build/reports/quantize.{json,md}
	$(CLI) quantize $(ARGS)

test: setup  ## run the test suite
	$(VENV)/bin/python -m pytest

clean:  ## remove build/ (keeps .venv)
	rm -rf build
