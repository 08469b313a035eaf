# libprof: one Makefile. `make` builds build/libprof.so; `make demo`, `make test`
# and `make bench` install what they need first (scripts/install-deps.sh).

CC      ?= cc
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wundef -Wvla -fno-common
CFLAGS  := -std=gnu11 -O2 -g -fPIC -fvisibility=hidden $(WARN) -Werror -D_GNU_SOURCE \
           -Ibuild/gen -pthread
# libcurl is linked --as-needed: nothing calls it until the uploader exists, so a
# profiled program does not load it (and its ~30 dependencies) for nothing.
LDLIBS  := -lunwind-generic -lunwind -ldw -lelf -lprotobuf-c -lz -ldl -lrt -lm -pthread \
           -Wl,--as-needed -lcurl -Wl,--no-as-needed

B       := build
SRCS    := $(wildcard preload/*.c wrappers/*.c unwinder/*.c exporter/*.c)
OBJS    := $(SRCS:%.c=$(B)/obj/%.o) $(B)/obj/gen/profile.pb-c.o
HDRS    := $(wildcard */*.h) $(B)/gen/profile.pb-c.h
DEPS_OK := $(B)/.deps-build

.PHONY: all deps demo test unit e2e bench clean
all: $(B)/libprof.so

$(DEPS_OK): scripts/install-deps.sh
	@mkdir -p $(B)
	scripts/install-deps.sh build
	@touch $@

$(B)/gen/profile.pb-c.c $(B)/gen/profile.pb-c.h: proto/profile.proto $(DEPS_OK)
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Iproto proto/profile.proto

$(B)/obj/gen/profile.pb-c.o: $(B)/gen/profile.pb-c.c $(B)/gen/profile.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes,$(CFLAGS)) -c $< -o $@

$(B)/obj/%.o: %.c $(HDRS) $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Linked under a temporary name and renamed: a running program that has the
# library mapped keeps its copy instead of crashing on a rewrite in place.
$(B)/libprof.so: $(OBJS)
	$(CC) -shared -Wl,-z,defs -Wl,-z,now -o $@.tmp $(OBJS) $(LDLIBS)
	mv -f $@.tmp $@
	@exported=$$(nm -D --defined-only $@ | awk '$$2 ~ /[TW]/ {print $$3}' | sort | tr '\n' ' '); \
	 echo "libprof.so exports: $$exported"

# ---- programs used by the demo, the tests and the benchmark -----------------
PROG_CFLAGS := -O1 -g -fno-omit-frame-pointer -fno-inline -pthread $(WARN) -Werror
$(B)/progs/%: tests/progs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) $< -o $@.tmp -ldl -lm && mv -f $@.tmp $@
$(B)/progs/demo: examples/demo.c
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) $< -o $@.tmp && mv -f $@.tmp $@

PROGS := $(patsubst tests/progs/%.c,$(B)/progs/%,$(wildcard tests/progs/*.c))

demo: $(B)/libprof.so $(B)/progs/demo
	@scripts/install-deps.sh demo
	@scripts/demo.sh

# ---- tests ---------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
LIB_OBJS  := $(filter-out $(B)/obj/preload/init.o,$(OBJS))

$(B)/.deps-test: scripts/install-deps.sh
	@mkdir -p $(B)
	scripts/install-deps.sh test
	@touch $@

$(B)/tests/%: tests/unit/%.c $(LIB_OBJS) $(B)/.deps-test
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fvisibility=hidden,$(CFLAGS)) -fvisibility=default -Wno-missing-prototypes \
	  $< tests/unit/stubs.c $(LIB_OBJS) -o $@ -lcmocka $(LDLIBS)

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

e2e: $(B)/libprof.so $(PROGS) $(B)/.deps-test
	@tests/run-e2e.sh

test: $(B)/.deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

bench: $(B)/libprof.so $(PROGS)
	@scripts/install-deps.sh bench
	@scripts/bench.sh

clean:
	rm -rf $(B)
