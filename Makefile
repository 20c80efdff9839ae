# corio - one Makefile for the library, tests, examples and benchmarks.
#
#   make                 library (static + shared), examples, benchmarks, test binary into build/
#   make check           build and run the native test suite once
#   make test            the whole test command: native, ASan+UBSan, ucontext switch, arm64 (qemu)
#   make test-arm64      cross-build with aarch64-linux-gnu-gcc, run the core tests under qemu
#   make valgrind        the native suite under valgrind (stacks registered)
#   make demo            the seed programs on real time, plus a 100,000-task scale demo
#   make bench           corio_bench and the network benchmarks (w4-w6) beside the peers
#                        in ../shared/peers, medians of 3
#
# Variants (each builds into its own folder):
#   SAN=asan             -fsanitize=address,undefined             -> build/asan
#   SWITCH=ucontext      ucontext fallback instead of assembly     -> build/ucontext
#   CROSS=aarch64        aarch64-linux-gnu-gcc (run under qemu)   -> build/arm64

CC      ?= gcc
CROSS   ?=
SAN     ?=
SWITCH  ?= asm

ifeq ($(CROSS),aarch64)
  CC       := aarch64-linux-gnu-gcc
  BUILD    ?= build/arm64
  LDSTATIC :=
else ifeq ($(SAN),asan)
  BUILD    ?= build/asan
else ifeq ($(SWITCH),ucontext)
  BUILD    ?= build/ucontext
else
  BUILD    ?= build
endif

# -fno-semantic-interposition: nobody interposes corio_* symbols, so calls between
# them may be inlined even in -fPIC code (a few ns off every spawn and yield).
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fPIC -fno-semantic-interposition -pthread -Iinclude -Isrc
LDLIBS  += -pthread -lm
ifeq ($(SAN),asan)
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SWITCH),ucontext)
  CFLAGS  += -DCORIO_SWITCH_UCONTEXT
endif
LDFLAGS += $(LDSTATIC)

# io_uring through liburing (Debian liburing-dev). The arm64 cross build has
# no arm64 liburing (and qemu-user has no io_uring): it is epoll only.
ifeq ($(CROSS),aarch64)
  CFLAGS  += -DCORIO_NO_IO_URING
else
  LDLIBS  += -luring
endif
EXE_LDFLAGS := -rdynamic   # lets dladdr name entry functions in overflow and deadlock reports

MACHINE := $(shell $(CC) -dumpmachine)
# Functions start on 32-byte boundaries on x86-64. Measured on AMD Zen 5 (this
# machine): with GCC's default 16, small shifts of the code put the switch path
# on layouts where w2 costs 61-83 ns instead of 45 (w2b 10 ns instead of 7.7);
# with 32, five shifted layouts all gave 45-47 ns (docs/internals.md).
ifneq (,$(findstring x86_64,$(MACHINE)))
  CFLAGS += -falign-functions=32
endif
ifneq ($(SWITCH),ucontext)
  ifneq (,$(findstring x86_64,$(MACHINE)))
    ASM_SRC := src/arch/switch_x86_64.S
  else ifneq (,$(findstring aarch64,$(MACHINE)))
    ASM_SRC := src/arch/switch_aarch64.S
  else
    $(error no assembly context switch for $(MACHINE): build with SWITCH=ucontext)
  endif
endif

# The resuming stubs (src/arch/resume_x86_64.S) whatever the switch.
ifneq (,$(findstring x86_64,$(MACHINE)))
  ASM_SRC += src/arch/resume_x86_64.S
endif

LIB_SRC  := $(wildcard src/*.c) src/arch/switch_ucontext.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(ASM_SRC:%.S=$(BUILD)/obj/%.o)
HDRS     := include/corio.h $(wildcard src/*.h src/arch/*.h)

TEST_SRC := $(wildcard test/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all lib check test test-arm64 valgrind demo bench clean
all: lib $(EXAMPLES) $(BENCHES) $(BUILD)/test/corio_tests

lib: $(BUILD)/libcorio.a $(if $(CROSS),,$(BUILD)/libcorio.so)

$(BUILD)/obj/%.o: %.c $(HDRS) $(wildcard test/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.S $(wildcard src/arch/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcorio.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/libcorio.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libcorio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(EXE_LDFLAGS) -o $@ $< $(BUILD)/libcorio.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libcorio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcorio.a $(LDLIBS)

$(BUILD)/test/corio_tests: $(TEST_OBJ) $(BUILD)/libcorio.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(EXE_LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libcorio.a $(LDLIBS)

# The suite needs the examples built too (it checks the seed programs' output).
check: all
	CORIO_BUILD=$(BUILD) $(BUILD)/test/corio_tests

test:
	scripts/test.sh

test-arm64:
	scripts/test.sh arm64

valgrind: all
	CORIO_BUILD=$(BUILD) CORIO_VALGRIND=1 $(BUILD)/test/corio_tests

# demo.sh installs what it needs (gcc, make...) and builds by itself.
demo:
	BUILD=$(BUILD) scripts/demo.sh

bench: all
	BUILD=$(BUILD) bench/run.sh
	BUILD=$(BUILD) bench/net.sh

clean:
	rm -rf build
