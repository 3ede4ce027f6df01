# Thin wrapper over Meson, so that the usual commands do the usual things.
#   make            build (into build/)
#   make test       install test dependencies, build, run every suite, then
#                   again built with ASan+UBSan (into build-asan/)
#   make run        build and run the example job under ./var/
#   make install    PREFIX=/usr/local DESTDIR=...
#   make deps       only install the Debian packages

PREFIX ?= /usr/local
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_TEST_FLAGS ?= --print-errorlogs

.PHONY: all deps deps-build test test-plain test-asan run install clean

all: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps.sh test

deps-build:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

test: deps
	@$(MAKE) --no-print-directory test-plain test-asan
	@scripts/test-summary.sh $(BUILD) $(ASAN_BUILD)

test-plain: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) $(MESON_TEST_FLAGS)

test-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(ASAN_BUILD) $(MESON_TEST_FLAGS)

run: all
	scripts/run-example.sh $(BUILD)

install: all
	meson configure $(BUILD) --prefix=$(PREFIX) >/dev/null
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
