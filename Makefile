# drsn-edge: a thin layer over the `drsn-edge` CLI. `make help` lists the targets.
#   make all                      the whole pipeline on the default (emulated) board
#   make test                     the test suite
#   make train CONFIG=configs/smoke.toml SET="train.epochs=3 model.arch=drsn_cs"
#   make flash BOARD=netduinoplus2 REAL=1 PORT=/dev/ttyACM0 [BAUD=1000000] [DRY_RUN=1]
#   make flash BOARDS=2 && make hil   a farm of two emulated boards sharing one HIL run

CONFIG ?= configs/default.toml
SET    ?=
BOARD  ?=
# make all boots one emulated board per CPU core (a farm; measured faster than one, see
# README "A board farm"); make flash boots one unless BOARDS=N.
CORES  := $(shell nproc 2>/dev/null || echo 1)
PORT   ?=
REAL   ?=
DRY_RUN ?=
DEBUG  ?=
REALTIME ?=
MODEL  ?=
BAUD   ?=
OPTIMIZE ?=
VENV   := .venv
CLI    := $(VENV)/bin/drsn-edge
ARGS   := --config $(CONFIG) $(foreach s,$(SET),--set $(s))
BOARD_ARG := $(if $(BOARD),--board $(BOARD)) $(if $(OPTIMIZE),--optimize $(OPTIMIZE))
MODEL_ARG := $(if $(MODEL),--model $(MODEL))
BAUD_ARG := $(if $(BAUD),--baud $(BAUD))

.DEFAULT_GOAL := help
.PHONY: help setup doctor all train quantize data firmware flash stop hil monitor benchmark test clean

help:  ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: CONFIG=$(CONFIG)  SET="key=value ..."  BOARD= BOARDS=N PORT="url ..." REAL=1 DRY_RUN=1 DEBUG=N MODEL=my.tflite REALTIME=1 BAUD=921600 OPTIMIZE=size"

setup:  ## install Debian packages and the Python environment (idempotent)
	@scripts/setup.sh

doctor: setup  ## check that every tool works: C/C++ cross compilers, QEMU's boards, Python packages
	$(CLI) doctor

all: BOARDS ?= $(CORES)
all: train quantize flash hil  ## the whole pipeline on the default emulated board (one per CPU core)

data: setup  ## generate the datasets under build/data and report how hard they are
	$(CLI) data $(ARGS)

train: setup  ## train DRSN + ResNet baseline; build/model/, build/reports/train.{json,md}
	$(CLI) train $(ARGS)

quantize: setup  ## int8 QAT/PTQ, .tflite for TFLM, op audit, parity; build/reports/quantize.{json,md}
	$(CLI) quantize $(ARGS)

firmware: setup  ## C from the int8 model + firmware image for BOARD; build/reports/firmware.{json,md}
	$(CLI) firmware $(ARGS) $(BOARD_ARG) $(MODEL_ARG) $(BAUD_ARG)

flash: setup  ## build and boot BOARD in QEMU (UART on a TCP port; BOARDS=N boots N); REAL=1 PORT=... flashes hardware
	$(CLI) flash $(ARGS) $(BOARD_ARG) $(MODEL_ARG) $(BAUD_ARG) $(if $(REAL),--real) $(if $(PORT),--port $(PORT)) $(if $(DRY_RUN),--dry-run) $(if $(BOARDS),--count $(BOARDS))

stop: setup  ## stop the emulated board(s) `make flash` started
	$(CLI) stop $(ARGS)

hil: setup  ## stream the test sweep to the board(s) over serial; build/reports/hil.{json,md,xml}
	$(CLI) hil $(ARGS) $(MODEL_ARG) $(BAUD_ARG) $(foreach p,$(PORT),--port $(p)) $(if $(DEBUG),--debug $(DEBUG))

monitor: setup  ## stream a recording through the flashed board as its sensor; build/reports/monitor.{json,md}
	$(CLI) monitor $(ARGS) $(BAUD_ARG) $(if $(PORT),--port $(PORT)) $(if $(REALTIME),--realtime)

benchmark: setup  ## instructions/MACs/flash/RAM per layer on BOARD; build/reports/benchmark.{json,md}
	$(CLI) benchmark $(ARGS) $(BOARD_ARG) $(MODEL_ARG)

test: setup  ## run the test suite
	$(VENV)/bin/python -m pytest

clean:  ## remove build/ (keeps .venv)
	rm -rf build
