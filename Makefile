# mixq — plain GNU make. Variants build out of tree:
#   make            release build (build/release)
#   make debug      -O0 -g build (build/debug)
#   make asan       AddressSanitizer + UBSan build of library, CLI and tests (build/asan)
#   make check      build and run the test suite (release)
#   make check-asan build and run the test suite under ASan+UBSan
#   make demo       install deps, build, train a small model, print its summary
#   make bench      long benchmarks (training speed vs PyTorch, accuracy runs)
VARIANT ?= release
BUILD   ?= build/$(VARIANT)
CC      ?= cc

OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-openmp
OPENBLAS_LIB ?= /usr/lib/x86_64-linux-gnu/openblas-openmp

WARN    := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L
# Built where it runs: the host's vector ISA (no -ffast-math; -std=c11 keeps FP contraction
# off, so results are the same as without ARCH). Override with ARCH= for a portable binary.
ARCH    ?= -march=native
CFLAGS_release := -O3 -g $(ARCH)
CFLAGS_debug   := -O0 -g3
CFLAGS_asan    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_asan   := -fsanitize=address,undefined
CFLAGS  += $(CSTD) $(WARN) $(CFLAGS_$(VARIANT)) -fopenmp -Iinclude -Isrc -I$(OPENBLAS_INC) -MMD -MP
LDFLAGS += $(LDFLAGS_$(VARIANT)) -fopenmp -L$(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_LIB)
LDLIBS  += -lopenblas -ldnnl -lcjson -lprotobuf-c -lz -lm

LIB_SRC   := $(sort $(wildcard src/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/hw_presets.o $(BUILD)/gen/onnx.pb-c.o
HW_PRESETS := $(sort $(wildcard hw/*.json))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_COMMON := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_COMMON_OBJ := $(TEST_COMMON:%.c=$(BUILD)/%.o)
BENCH_SRC := $(sort $(filter-out %_dnnl.c,$(wildcard bench/*.c)))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.SECONDARY:
.PHONY: all lib cli tests check check-asan asan debug release demo bench bench-hw clean deps test
all: lib cli
lib: $(BUILD)/libmixq.a
cli: $(BUILD)/mixq
tests: $(TEST_BIN)

$(BUILD)/libmixq.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/mixq: $(TOOL_OBJ) $(BUILD)/libmixq.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libmixq.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJ) $(BUILD)/libmixq.a
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_COMMON_OBJ) $(BUILD)/libmixq.a $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libmixq.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libmixq.a $(LDLIBS)

# Built-in hardware presets: the files in hw/, embedded as strings.
$(BUILD)/gen/hw_presets.c: $(HW_PRESETS) scripts/embed_presets.sh
	@mkdir -p $(@D)
	sh scripts/embed_presets.sh $(HW_PRESETS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/hw_presets.o: $(BUILD)/gen/hw_presets.c
	$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

# ONNX's schema from Debian's libonnx-dev, compiled by protobuf-c at build time.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
$(BUILD)/gen/onnx.pb-c.c: $(ONNX_PROTO)
	@mkdir -p $(@D)
	protoc-c --c_out=$(BUILD)/gen --proto_path=$(dir $(ONNX_PROTO)) $(notdir $(ONNX_PROTO))
$(BUILD)/gen/onnx.pb-c.h: $(BUILD)/gen/onnx.pb-c.c
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) $(filter-out -Werror -Wpedantic -Wmissing-prototypes -Wstrict-prototypes -Wshadow,$(CFLAGS)) -w -c -o $@ $<
$(BUILD)/src/io/onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/src/io/onnx.o: CFLAGS += -I$(BUILD)/gen

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The test suite: every tests/test_*.c is its own binary; tests/run.sh runs them all from the
# repository root and prints the summed "N passed, N failed" line (non-zero exit on any failure).
check: all tests
	MIXQ_BIN=$(BUILD)/mixq sh tests/run.sh $(BUILD)

check-asan:
	$(MAKE) VARIANT=asan check

asan:
	$(MAKE) VARIANT=asan all tests
debug:
	$(MAKE) VARIANT=debug all tests
release:
	$(MAKE) VARIANT=release all tests

deps:
	sh scripts/deps.sh

# The README's test command (and CI's): installs what is missing, then release + ASan/UBSan suites.
test:
	sh scripts/test.sh

demo: deps
	$(MAKE) VARIANT=release all
	sh scripts/demo.sh build/release/mixq

# Cost-model query rates (cold search, memo cache, threads) for every hardware preset.
bench-hw: $(BUILD)/bench/bench_hw
	$(BUILD)/bench/bench_hw resnet20 1,28,28
	$(BUILD)/bench/bench_hw mobilenet_v1 3,224,224 2

# CPU runtime: per-layer kernels (bit-serial, int8) and whole networks against oneDNN int8/fp32,
# OpenBLAS and PyTorch; writes bench/results/runtime_layers.md and runtime_network.md.
.PHONY: bench-runtime
bench-runtime:
	BUILD=$(BUILD) sh bench/runtime.sh

bench: deps
	$(MAKE) VARIANT=release all $(BENCH_BIN)
	sh bench/run.sh
	sh bench/accuracy.sh
	sh bench/quant_accuracy.sh runs/accuracy/lenet5.mixq
	sh bench/quant_accuracy.sh runs/accuracy/resnet20.mixq

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_COMMON_OBJ:.o=.d) $(BENCH_BIN:=.d)
