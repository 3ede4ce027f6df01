# SPDX-License-Identifier: MIT
# Thin wrapper over Meson, so that the usual commands do the usual things.
#   make            build (into build/)
#   make test       install test dependencies, build QEMU with vgpu-stub (make
#                   qemu), build, run every suite (the VM test included), then
#                   again built with ASan+UBSan (build-asan/), and the threaded
#                   suites built with ThreadSanitizer (build-tsan/)
#   make qemu       Debian's QEMU source with vgpu-stub, built into build-qemu/
#                   (ccache in /var/cache/vgpu/ccache)
#   make test-vm    only the VM test: boot a guest with vgpu-stub
#   make test-qemu42  the device built into QEMU 4.2 (XCP-ng 8.2's device
#                   model) from the operator's patch, then the VM suites
#                   booted in it (downloads QEMU 4.2 from Ubuntu's archive,
#                   so not part of make test)
#   make run        build (QEMU too) and run the example job under ./var/:
#                   host clients and 4 guests through their devices
#   make install    PREFIX=/usr/local DESTDIR=...
#   make deps       only install the Debian packages
#   make fuzz       fuzz every parser with libFuzzer for FUZZ_SECONDS each

PREFIX ?= /usr/local
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
# The suites whose programs run threads: the mediator, backends, guest library.
TSAN_SUITES = --suite mediator --suite backend --suite guest --suite e2e
MESON_TEST_FLAGS ?= --print-errorlogs
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES = xe_vm_list conf cli_values protocol ring cuda_ring agent

.PHONY: all deps deps-build test test-plain test-asan test-tsan test-vm test-qemu42 qemu run install fuzz clean

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
	@$(MAKE) --no-print-directory test-plain test-asan test-tsan
	@scripts/test-summary.sh $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)

# The plain suite boots a guest in the built QEMU (tests/vm/).
test-plain: qemu $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) $(MESON_TEST_FLAGS)

qemu:
	scripts/build-qemu.sh

test-vm: deps qemu $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) $(MESON_TEST_FLAGS) --suite vm

# Its own build directory: the same tests, their QEMU option pointing at 4.2.
QEMU42_BUILD ?= build-q42
test-qemu42: deps
	scripts/build-qemu42.sh
	[ -f $(QEMU42_BUILD)/build.ninja ] || \
		meson setup $(QEMU42_BUILD) -Dqemu=$(CURDIR)/build-qemu42/qemu-system-x86_64
	ninja -C $(QEMU42_BUILD)
	meson test -C $(QEMU42_BUILD) $(MESON_TEST_FLAGS) --suite vm

test-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(ASAN_BUILD) $(MESON_TEST_FLAGS)

$(TSAN_BUILD)/build.ninja:
	meson setup $(TSAN_BUILD) -Db_sanitize=thread -Dbuildtype=debugoptimized

test-tsan: $(TSAN_BUILD)/build.ninja
	ninja -C $(TSAN_BUILD)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 VGPU_E2E_SGEMM=384 VGPU_E2E_SGEMM_LONG=640 \
	VGPU_E2E_WINDOW_SCALE=3 \
		meson test -C $(TSAN_BUILD) $(MESON_TEST_FLAGS) $(TSAN_SUITES)

# Guests too: QEMU (make qemu), the driver built against the guest kernel's
# headers (make deps installs them).
run: deps qemu $(BUILD)/build.ninja
	ninja -C $(BUILD)
	scripts/run-example.sh $(BUILD)

install: all
	meson configure $(BUILD) --prefix=$(PREFIX) >/dev/null
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

# New inputs that libFuzzer finds go to a scratch directory; copy the ones
# worth keeping into tests/fuzz/corpus/ by hand.
fuzz:
	@scripts/install-deps.sh fuzz
	[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ_BUILD)
	set -e; for h in $(FUZZ_HARNESSES); do \
		mkdir -p $(FUZZ_BUILD)/found/$$h; \
		$(FUZZ_BUILD)/tests/fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) \
			$(FUZZ_BUILD)/found/$$h tests/fuzz/corpus/$$h; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(QEMU42_BUILD)
