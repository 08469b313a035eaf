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
HDRS    := $(wildcard preload/*.h wrappers/*.h unwinder/*.h exporter/*.h) $(B)/gen/profile.pb-c.h
DEPS_OK := $(B)/.deps-build

.PHONY: all deps demo test unit e2e bench clean
all: $(B)/libprof.so $(B)/libprof-collector

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

# ---- collector: build/libprof-collector (collector/, docs/COLLECTOR.md) -------------
# A program, not part of libprof.so: no -fPIC, no hidden visibility. The OTLP
# .proto files import one another: every object waits for all their headers.
OTLP_PROTOS := otlp_common otlp_resource otlp_profiles otlp_profiles_service
OTLP_GEN_H  := $(OTLP_PROTOS:%=$(B)/gen/%.pb-c.h)
OTLP_OBJS   := $(OTLP_PROTOS:%=$(B)/obj/gen/%.pb-c.o)
COL_OBJS    := $(patsubst %.c,$(B)/obj/%.o,$(wildcard collector/*.c)) $(OTLP_OBJS) \
               $(B)/obj/gen/profile.pb-c.o
COL_CFLAGS  := -std=gnu11 -O2 -g $(WARN) -Werror -D_GNU_SOURCE -I$(B)/gen -pthread
COL_LDLIBS  := -lmicrohttpd -lsqlite3 -lprotobuf-c -lz -pthread

$(B)/gen/otlp_%.pb-c.c $(B)/gen/otlp_%.pb-c.h: proto/otlp_%.proto $(DEPS_OK)
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Iproto $<

$(B)/obj/gen/otlp_%.pb-c.o: $(B)/gen/otlp_%.pb-c.c $(OTLP_GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes,$(COL_CFLAGS)) -c $< -o $@

$(B)/obj/collector/%.o: collector/%.c collector/collector.h $(OTLP_GEN_H) $(B)/gen/profile.pb-c.h $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(COL_CFLAGS) -c $< -o $@

$(B)/libprof-collector: $(COL_OBJS)
	$(CC) -o $@.tmp $(COL_OBJS) $(COL_LDLIBS)
	mv -f $@.tmp $@

e2e: $(B)/libprof-collector   # tests/e2e/2x_collector*.sh

# tests/unit/test_collector.c links the collector's objects, not libprof's
# (this explicit rule wins over the pattern rule of the tests section).
COL_TEST_OBJS := $(filter-out $(B)/obj/collector/main.o $(B)/obj/collector/http.o,$(COL_OBJS))
$(B)/tests/test_collector: tests/unit/test_collector.c $(COL_TEST_OBJS) $(B)/.deps-test
	@mkdir -p $(dir $@)
	$(CC) $(COL_CFLAGS) -Wno-missing-prototypes -Icollector $< $(COL_TEST_OBJS) -o $@ \
	  -lcmocka -lsqlite3 -lprotobuf-c -lz -pthread

# The collector's libFuzzer targets (tests/fuzz/fuzz_{multipart,otlp,pprof}.c),
# run by `make fuzz` (next section) for FUZZ_SECONDS each, from the seeds in
# tests/fuzz/collector-seeds/<target>/; new inputs go to build/fuzz/collector-<target>/.
COL_FUZZ_SRCS := $(addprefix collector/,util.c pprof.c pprof_merge.c ingest_pyroscope.c otlp_convert.c \
                 ingest_otlp.c store.c) $(OTLP_PROTOS:%=$(B)/gen/%.pb-c.c) $(B)/gen/profile.pb-c.c
COL_FUZZ      := $(addprefix $(B)/fuzz/fuzz_,multipart otlp pprof)
FUZZ_TARGETS  += $(COL_FUZZ)

$(COL_FUZZ): $(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(COL_FUZZ_SRCS) collector/collector.h $(OTLP_GEN_H)
	@scripts/install-deps.sh fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Wmissing-prototypes,$(FUZZ_CFLAGS)) -I$(B)/gen -Icollector -pthread \
	  $< $(COL_FUZZ_SRCS) -o $@.tmp -lsqlite3 -lprotobuf-c -lz
	mv -f $@.tmp $@

.PHONY: fuzz-collector
fuzz: fuzz-collector
fuzz-collector: $(COL_FUZZ)
	@for t in multipart otlp pprof; do mkdir -p $(B)/fuzz/collector-$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	    -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/collector-$$t tests/fuzz/collector-seeds/$$t \
	    || exit 1; done

# ---- fuzzing --------------------------------------------------------------------------
# `make fuzz` (not part of `make test`): the libFuzzer target of the traceparent
# parser and HTTP/1.x request-head scanner (wrappers/traceparent.c), built with
# clang's sanitizers and run for FUZZ_SECONDS from the seeds in tests/fuzz/corpus/.
# New inputs are kept in build/fuzz/traceparent/, a crashing one in build/fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined $(WARN) -Werror -D_GNU_SOURCE

$(B)/fuzz/fuzz_traceparent: tests/fuzz/fuzz_traceparent.c wrappers/traceparent.c \
                            wrappers/traceparent.h preload/preload.h
	@scripts/install-deps.sh fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_traceparent.c wrappers/traceparent.c -o $@.tmp
	mv -f $@.tmp $@

.PHONY: fuzz
fuzz: $(B)/fuzz/fuzz_traceparent
	@mkdir -p $(B)/fuzz/traceparent
	$(B)/fuzz/fuzz_traceparent -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
	  -dict=tests/fuzz/traceparent.dict -artifact_prefix=$(B)/fuzz/ \
	  $(B)/fuzz/traceparent tests/fuzz/corpus
