# libprof: one Makefile. `make` builds build/libprof.so; `make demo`, `make test`
# and `make bench` install what they need first (scripts/install-deps.sh).

CC      ?= cc
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wundef -Wvla -fno-common
CFLAGS  := -std=gnu11 -O2 -g -fPIC -fvisibility=hidden $(WARN) -Werror -D_GNU_SOURCE \
           -Ibuild/gen -pthread
LDLIBS  := -lunwind-generic -lunwind -ldw -lelf -lprotobuf-c -lz -ldl -lrt -lm -pthread

B       := build
SRCS    := $(wildcard preload/*.c wrappers/*.c unwinder/*.c exporter/*.c)
# The OTLP .proto files (they import one another) serve the library's encoder
# (exporter/otlp.c, objects built -fPIC apart) and the collector.
OTLP_PROTOS := otlp_common otlp_resource otlp_profiles otlp_profiles_service
OTLP_GEN_H  := $(OTLP_PROTOS:%=$(B)/gen/%.pb-c.h)
OBJS    := $(SRCS:%.c=$(B)/obj/%.o) $(B)/obj/gen/profile.pb-c.o \
           $(OTLP_PROTOS:%=$(B)/obj/pic/gen/%.pb-c.o)
HDRS    := $(wildcard preload/*.h wrappers/*.h unwinder/*.h exporter/*.h) $(B)/gen/profile.pb-c.h \
           $(OTLP_GEN_H)
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

$(B)/obj/pic/gen/%.pb-c.o: $(B)/gen/%.pb-c.c $(OTLP_GEN_H)
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

PROGS := $(patsubst tests/progs/%.c,$(B)/progs/%,$(wildcard tests/progs/*.c))

demo: all $(B)/progs/trace_server
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
OTLP_OBJS   := $(OTLP_PROTOS:%=$(B)/obj/gen/%.pb-c.o)
COL_OBJS    := $(patsubst %.c,$(B)/obj/%.o,$(wildcard collector/*.c)) $(OTLP_OBJS) \
               $(B)/obj/gen/profile.pb-c.o $(B)/obj/gen/web_assets.o   # the page: next section
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
                 ingest_otlp.c store.c flamegraph.c) $(OTLP_PROTOS:%=$(B)/gen/%.pb-c.c) $(B)/gen/profile.pb-c.c
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

# ---- the collector's page (collector/web/, docs/COLLECTOR.md) ------------------------
# d3-flame-graph and the d3 modules it loads, pinned in collector/web/package-lock.json,
# are fetched with npm into build/web/ once (npm's cache is build/npm-cache, so a
# later `npm ci` works offline); their UMD builds are joined into one script, and
# collector/web/embed.sh compiles that and the page's own files into the collector.
NPM_FLAGS := --no-audit --no-fund --ignore-scripts --prefer-offline --loglevel=error \
             --cache $(abspath $(B))/npm-cache
WEB_MODS  := $(B)/web/node_modules
D3_MODS   := array color interpolate format time time-format scale dispatch timer ease \
             selection transition hierarchy
WEB_SRCS  := collector/web/index.html collector/web/app.js collector/web/style.css

$(B)/web/.installed: collector/web/package.json collector/web/package-lock.json $(DEPS_OK)
	@mkdir -p $(B)/web
	cp collector/web/package.json collector/web/package-lock.json $(B)/web/
	cd $(B)/web && npm ci $(NPM_FLAGS)
	@touch $@

# Each d3 module's UMD build adds itself to the global d3, in dependency order;
# d3-flame-graph's then reads them from there.
$(B)/web/flamegraph.js: $(B)/web/.installed
	for f in $(foreach m,$(D3_MODS),$(WEB_MODS)/d3-$(m)/dist/d3-$(m).min.js) \
	         $(WEB_MODS)/d3-flame-graph/dist/d3-flamegraph.umd.min.js; do \
	  cat "$$f" && printf ';\n' || exit 1; done >$@.tmp
	mv -f $@.tmp $@

$(B)/gen/web_assets.c: collector/web/embed.sh $(WEB_SRCS) $(B)/web/flamegraph.js
	@mkdir -p $(B)/gen
	collector/web/embed.sh $@ / collector/web/index.html /app.js collector/web/app.js \
	  /style.css collector/web/style.css /flamegraph.js $(B)/web/flamegraph.js

$(B)/obj/gen/web_assets.o: $(B)/gen/web_assets.c collector/collector.h $(OTLP_GEN_H) \
                           $(B)/gen/profile.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(COL_CFLAGS) -Icollector -c $< -o $@

# playwright-core (no browser of its own) drives Debian's chromium in
# tests/e2e/24_collector_web.sh; pinned in tests/e2e/browser/, installed in build/.
$(B)/e2e-browser/.installed: tests/e2e/browser/package.json tests/e2e/browser/package-lock.json \
                             $(B)/.deps-test
	@mkdir -p $(B)/e2e-browser
	cp tests/e2e/browser/package.json tests/e2e/browser/package-lock.json $(B)/e2e-browser/
	cd $(B)/e2e-browser && npm ci $(NPM_FLAGS)
	@touch $@
e2e: $(B)/e2e-browser/.installed
bench: $(B)/libprof-collector   # scripts/bench_collector.py: ingest rate, trace query latency

# ---- the libprof command (cli/libprof.c: `libprof run`, `libprof collector`) --------
all: $(B)/libprof
$(B)/libprof: cli/libprof.c $(DEPS_OK)
	$(CC) -std=gnu11 -O2 -g $(WARN) -Werror -D_GNU_SOURCE $< -o $@.tmp
	mv -f $@.tmp $@
e2e: $(B)/libprof

# ---- make install PREFIX=/usr/local [DESTDIR=] ----------------------------------------
# PREFIX/lib/libprof.so, PREFIX/bin/libprof and libprof-collector, the docs in
# PREFIX/share/doc/libprof/. `libprof run` finds the library as ../lib/libprof.so.
PREFIX ?= /usr/local
DOCS   := README.md $(wildcard docs/*.md)
.PHONY: install
install: $(B)/libprof.so $(B)/libprof-collector $(B)/libprof
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/libprof
	install -m 0755 $(B)/libprof.so $(DESTDIR)$(PREFIX)/lib/libprof.so
	install -m 0755 $(B)/libprof $(B)/libprof-collector $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(DOCS) $(DESTDIR)$(PREFIX)/share/doc/libprof/

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
