# berth: a low-level OCI runtime (runtime/) and its per-container shim (shim/).
#
#   make demo         build, make a busybox bundle, run it through berth-shim and berth,
#                     show its log and exit status (installs busybox-static if missing)
#   make test         install what the tests need, then fmt, clippy and every test
#   make test-runc    the runtime-agnostic suite against /usr/sbin/runc
#   make conformance RUNTIME=/path/to/runtime   one line per spec feature: pass/fail/unsupported
#   make bench        berth side by side with runc and crun (and the shim with conmon)
#   make test-vm      the cgroup tests in a cgroup-v2 microVM, then the --systemd-cgroup tests
#                     in a Debian VM with systemd as PID 1 (qemu TCG, ~5 min; first run also
#                     debootstraps the image into /var/cache/berth-systemd-vm, ~40 s)
#   make test-systemd-vm  only the --systemd-cgroup tests
#   make engines      containerd and podman running a container through berth
#   make install      binaries to $(PREFIX)/bin

PREFIX ?= /usr/local
CARGO ?= cargo
SHARED ?= $(CURDIR)/../shared
BENCH ?= $(SHARED)/bench
DEMO_DIR ?= /tmp/berth-demo
RUNTIME ?=
# libbpf-sys (libcgroups' cgroup v2 device filter) builds libbpf: libelf, zlib, pkg-config.
BUILD_PACKAGES = gcc make pkg-config libelf-dev zlib1g-dev
# qemu, the cloud kernel and cpio: the cgroup v2 microVM (integration/microvm); debootstrap
# and e2fsprogs: the systemd VM's image (integration/microvm/systemd-image.sh).
VM_PACKAGES = qemu-system-x86 linux-image-cloud-amd64 cpio debootstrap e2fsprogs
APT_PACKAGES = busybox-static runc crun containerd conmon podman uidmap time jq hyperfine python3 bc \
	$(BUILD_PACKAGES) $(VM_PACKAGES)

.PHONY: all build release install demo deps build-deps test test-runc conformance bench test-vm test-systemd-vm engines clean

all: build

build: build-deps
	$(CARGO) build --workspace

# The release berth is linked statically and at a fixed address (glibc, static non-PIE):
# no shared libraries to map, and none of static-pie's ~12k relocations to apply, at each
# of the execs of a container's life (berth state of a missing id: 246k -> 90k
# instructions, 107 -> 49 page faults; run of /bin/true -0.25 ms). The cost is ASLR of
# berth's own image (stack, heap and mmaps stay randomised), as for Debian's runc and
# every default Go build; docs/security.md. BERTH_PIE=1 builds static-pie instead.
# crt-static must not reach proc-macros, hence --target; the static binary then
# replaces cargo's dynamic target/release/berth.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
release: build-deps
	$(CARGO) build --workspace --release
	RUSTFLAGS="-C target-feature=+crt-static $(if $(BERTH_PIE),,-C relocation-model=static)" \
	  $(CARGO) build --release -p berth --target $(HOST_TRIPLE)
	install -m 0755 target/$(HOST_TRIPLE)/release/berth target/release/berth
	# containerd's shim is a long-lived root daemon with a socket: static, but position
	# independent (its image keeps ASLR). Static saves the shared libc's resident pages:
	# idle RSS 4.6 -> 3.6 MiB per container.
	RUSTFLAGS="-C target-feature=+crt-static" \
	  $(CARGO) build --release -p berth-shim --bin containerd-shim-berth-v2 --target $(HOST_TRIPLE) \
	  --target-dir target/static-pie
	install -m 0755 target/static-pie/$(HOST_TRIPLE)/release/containerd-shim-berth-v2 target/release/containerd-shim-berth-v2

install: release
	install -D -m 0755 target/release/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -D -m 0755 target/release/berth-shim $(DESTDIR)$(PREFIX)/bin/berth-shim
	install -D -m 0755 target/release/containerd-shim-berth-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-berth-v2

# What compiling needs, and (deps) what the tests and the demo use; apt-get only installs
# what is missing.
build-deps:
	@missing=""; for p in $(BUILD_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: release
	@command -v busybox >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@sh integration/demo-bundle.sh $(DEMO_DIR)/bundle
	@echo "== berth-shim --foreground runs the container through berth; its output goes to a CRI log"
	@target/release/berth-shim --id berth-demo --bundle $(DEMO_DIR)/bundle \
	  --runtime $(CURDIR)/target/release/berth --runtime-root $(DEMO_DIR)/state \
	  --log-path $(DEMO_DIR)/ctr.log --exit-file $(DEMO_DIR)/exit.json --foreground --rm; \
	  echo "== shim exit status: $$?"
	@echo "== log ($(DEMO_DIR)/ctr.log):"; cat $(DEMO_DIR)/ctr.log
	@echo "== exit file ($(DEMO_DIR)/exit.json):"; cat $(DEMO_DIR)/exit.json; echo

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace
	$(CARGO) test --workspace --no-fail-fast
	# The same conformance cases against runc: they check the spec, not our reading of it.
	RUNTIME=/usr/sbin/runc $(CARGO) test -p berth-tests --test conformance
	integration/engines.sh target/debug/berth
	# containerd-shim-berth-v2 under containerd, then the same cases with containerd's own runc
	# shim: they check containerd's contract, not our reading of it.
	integration/shim-v2.sh -b target/debug
	integration/shim-v2.sh -r io.containerd.runc.v2
	integration/microvm/run-tests.sh

test-runc: deps build
	RUNTIME=/usr/sbin/runc $(CARGO) test -p berth-tests --test conformance

conformance: build
	RUNTIME=$(RUNTIME) $(CARGO) test -q -p berth-tests --test conformance -- --conformance

BENCH_OUT ?= /tmp/berth-bench/out
bench: release deps
	$(BENCH)/lifecycle.sh -o $(BENCH_OUT)/lifecycle --floor berth=$(CURDIR)/target/release/berth runc crun
	# The same, interleaved (berth, runc, crun, floor in every iteration): this host's steal
	# changes within minutes, and lifecycle.sh's rows are measured one after the other.
	BENCH=$(BENCH) integration/interleaved.sh -o $(BENCH_OUT)/interleaved berth=$(CURDIR)/target/release/berth runc crun
	$(BENCH)/memory.sh -o $(BENCH_OUT)/memory berth=$(CURDIR)/target/release/berth runc crun
	# The shim scripts name files $$OUT/NAME=PATH...: the directory must exist.
	mkdir -p "$(BENCH_OUT)/shim-memory/berth=$(CURDIR)/target/release" "$(BENCH_OUT)/log-throughput/berth=$(CURDIR)/target/release"
	$(BENCH)/shim-memory.sh -o $(BENCH_OUT)/shim-memory berth=$(CURDIR)/target/release/berth-shim conmon containerd
	# containerd's shims: berth's (io.containerd.berth.v2) next to runc's, idle containers.
	integration/shim-v2-memory.sh -o $(BENCH_OUT)/shim-v2-memory
	$(BENCH)/log-throughput.sh -o $(BENCH_OUT)/log-throughput -m 1024 floor direct conmon containerd berth=$(CURDIR)/target/release/berth-shim
	# The issue's "no byte lost" for the same 1 GiB: the log's content after stripping the CRI
	# prefixes, and the shim's peak RSS (log-throughput.sh only checks the file size).
	@SHIM_LOG_MIB=1024 RUNTIME=$$(command -v runc) $(CARGO) test --release -p berth-shim --test conmon_log -- --nocapture \
	  > $(BENCH_OUT)/shim-log-check.log 2>&1; st=$$?; \
	  grep '^conmon mode:' $(BENCH_OUT)/shim-log-check.log > $(BENCH_OUT)/shim-log-check.txt; \
	  if [ $$st = 0 ]; then echo "content complete" >> $(BENCH_OUT)/shim-log-check.txt; \
	  else echo "FAILED, see $(BENCH_OUT)/shim-log-check.log" >> $(BENCH_OUT)/shim-log-check.txt; fi
	@echo; integration/bench-ratios.sh $(BENCH_OUT)

# Both VMs run even if the first fails; the target fails if either did.
test-vm: deps build
	@rc=0; integration/microvm/run-tests.sh || rc=1; \
	  integration/microvm/systemd-vm.sh || rc=1; exit $$rc

test-systemd-vm: deps build
	integration/microvm/systemd-vm.sh

engines: build
	integration/engines.sh
	integration/shim-v2.sh -b target/debug

clean:
	$(CARGO) clean
