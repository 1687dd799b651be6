# cpekit — top-level tasks. `make demo` and `make test` work on a fresh
# Debian 12 machine that has only the Rust toolchain: missing system
# packages are installed with apt-get first (as root, or through sudo).

CARGO ?= cargo
# System packages: openssl (PKCS#7 interop), bzip2 (the 2Wire dialect's
# wrapped samples in tests), curl (Digest interop with the
# Connection Request server), pkg-config + libxml2-dev + libxmlsec1-dev +
# libclang-dev (the libxmlsec1 bindings of cpekit-xmldsig, the voucher helper), xmlsec1 (XML-DSig
# interop), libxml2-utils (xmllint: every emitted CWMP envelope is validated
# against the BBF schema), chromium (headless tests of the LAN pages),
# iputils-ping (IPPingDiagnostics falls back to it without ICMP sockets),
# systemd (systemd-analyze verify of packaging/cpekit-agent.service),
# python3 (the example data-model provider the tests run), softhsm2 (a
# PKCS#11 token for the --key pkcs11: tests).
DEB_PACKAGES ?= openssl bzip2 curl pkg-config libxml2-dev libxmlsec1-dev libclang-dev xmlsec1 libxml2-utils chromium softhsm2 iputils-ping systemd python3
DEMO_DIR := target/demo

.PHONY: all deps build test demo man install fuzz bench-verify bench-install bench-download bench-voucher keys clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "error: need root (or sudo) to apt-get install:$$missing" >&2; exit 1; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# `cpekit` and `cpekit-xmldsig`, the helper process that signs and verifies
# vouchers (the only binary linking libxmlsec1/libxml2, issue 14).
build: deps
	$(CARGO) build --release --locked -p cpekit -p cpekit-xmldsig

# Includes tests/demo.rs: scripts/demo (the life cycle of `make demo`)
# against the debug binaries, asserting each step's outcome.
test: deps
	$(CARGO) test --workspace --locked

# Build a sample package from testdata/, sign it with the TEST key, inspect
# and verify it. Then the life cycle on loopback (scripts/demo): a voucher
# and the package travel from the signer through the lab ACS
# (cpekit-lab-acs, a lab tool) to `cpekit agent`, which installs the package
# into $(DEMO_DIR)/root; a package signed by the rogue TEST key is refused.
# `make test` runs the same script against the debug binaries (tests/demo.rs).
demo: build
	$(CARGO) build --release --locked -p cpekit -p cpekit-xmldsig -p cpekit-lab
	@mkdir -p $(DEMO_DIR)
	target/release/cpekit package build --manifest testdata/demo/manifest.toml \
	    --key testdata/keys/signer.key --cert testdata/keys/signer.pem -o $(DEMO_DIR)/demo.pkg
	target/release/cpekit package inspect $(DEMO_DIR)/demo.pkg
	target/release/cpekit package verify $(DEMO_DIR)/demo.pkg --trust testdata/keys/ca.pem
	CPEKIT=target/release/cpekit LAB_ACS=target/release/cpekit-lab-acs DEMO_DIR=$(DEMO_DIR) scripts/demo

# Install the binary and its voucher helper (cpekit-xmldsig, beside it), the man pages, the shell completions, the agent's
# service file, example config (an existing agent.toml is kept), example
# data-model provider and its protocol, under PREFIX (staged under DESTDIR if
# given). BIN (or CPEKIT_BIN) names the binary to install; by default the
# release build, built first. XMLDSIG_BIN names the helper (default:
# cpekit-xmldsig beside BIN). With PREFIX=/usr the config goes to /etc/cpekit and the
# systemd unit to /lib/systemd/system, else under PREFIX (SYSCONFDIR,
# SYSTEMDUNITDIR override). OPENWRT=1 installs the procd init script
# (SYSCONFDIR/init.d) instead of the systemd unit.
PREFIX ?= /usr/local
BIN ?= target/release/cpekit
CPEKIT_BIN ?= $(BIN)
XMLDSIG_BIN ?= $(dir $(CPEKIT_BIN))cpekit-xmldsig
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
OPENWRT ?=
AGENT_PATHS = sed -e 's\#/usr/bin/cpekit\#$(PREFIX)/bin/cpekit\#' -e 's\#/etc/cpekit\#$(SYSCONFDIR)/cpekit\#g'
install:
	@if [ "$(CPEKIT_BIN)" = target/release/cpekit ]; then $(MAKE) build; fi
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d \
	    $(DESTDIR)$(PREFIX)/lib/cpekit $(DESTDIR)$(PREFIX)/share/doc/cpekit $(DESTDIR)$(SYSCONFDIR)/cpekit
	install -m 0755 $(CPEKIT_BIN) $(DESTDIR)$(PREFIX)/bin/cpekit
	install -m 0755 $(XMLDSIG_BIN) $(DESTDIR)$(PREFIX)/bin/cpekit-xmldsig
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(CPEKIT_BIN) completions bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cpekit
	$(CPEKIT_BIN) completions zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_cpekit
	$(CPEKIT_BIN) completions fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/cpekit.fish
	install -m 0755 examples/provider/hosts-provider.py $(DESTDIR)$(PREFIX)/lib/cpekit/hosts-provider.py
	install -m 0644 docs/provider-protocol.md $(DESTDIR)$(PREFIX)/share/doc/cpekit/provider-protocol.md
	install -m 0644 examples/agent.toml $(DESTDIR)$(PREFIX)/share/doc/cpekit/agent.toml.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/cpekit/agent.toml ] || { \
	  (umask 077; sed -e 's#/usr/bin/cpekit-xmldsig#$(PREFIX)/bin/cpekit-xmldsig#' examples/agent.toml > $(DESTDIR)$(SYSCONFDIR)/cpekit/agent.toml) && \
	  chmod 0600 $(DESTDIR)$(SYSCONFDIR)/cpekit/agent.toml; }
	if [ -n "$(OPENWRT)" ]; then \
	  install -d $(DESTDIR)$(SYSCONFDIR)/init.d && \
	  $(AGENT_PATHS) packaging/openwrt/cpekit-agent.init > $(DESTDIR)$(SYSCONFDIR)/init.d/cpekit-agent && \
	  chmod 0755 $(DESTDIR)$(SYSCONFDIR)/init.d/cpekit-agent; \
	else \
	  install -d $(DESTDIR)$(SYSTEMDUNITDIR) && \
	  $(AGENT_PATHS) packaging/cpekit-agent.service > $(DESTDIR)$(SYSTEMDUNITDIR)/cpekit-agent.service && \
	  chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/cpekit-agent.service; \
	fi

# Regenerate man pages (a test fails when they are stale).
man:
	$(CARGO) run --quiet -- generate-man man

# Regenerate the TEST-ONLY keys and certificates.
keys: deps
	testdata/gen-keys.sh

# Every target of both scripts, one at a time; each stops at FUZZ_SECONDS or
# FUZZ_RUNS executions (issue 10: 10 million each, see docs/benchmarks.md).
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
fuzz:
	RUNS=$(FUZZ_RUNS) scripts/fuzz-package $(FUZZ_SECONDS)
	RUNS=$(FUZZ_RUNS) scripts/fuzz-agent $(FUZZ_SECONDS)

bench-verify:
	$(MAKE) deps DEB_PACKAGES="$(DEB_PACKAGES) time"
	scripts/bench-verify

bench-install:
	$(MAKE) deps DEB_PACKAGES="$(DEB_PACKAGES) time"
	scripts/bench-install

bench-download:
	$(MAKE) deps DEB_PACKAGES="$(DEB_PACKAGES) time curl"
	scripts/bench-download

bench-voucher: deps
	scripts/bench-voucher

clean:
	$(CARGO) clean
