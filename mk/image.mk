# Appliance image, .deb and signed updates (docs/image.md, docs/updates.md). Included by the
# top-level Makefile; try it before the merge with: make -f Makefile -f mk/image.mk <target>.
#
#   make deb   [ARCH=amd64|arm64]   out/image/surgery-edge_<version>_<arch>.deb (dpkg-deb, offline)
#   make image [ARCH=amd64|arm64]   out/image/surgery-edge-<version>-<arch>.img (+ .root.sqfs, .seb, .img.zst)
#              [ICB_CA=pki/icb/ca.crt CLAIM_URL=https://fleet.icb.example:8443]   what boxes claim through
#                                   (without ICB_CA: a development CA in out/image/dev-icb, never ship)
#   make test-image [ARCH=arm64]    boot the image in qemu (arm64: virt + AAVMF, TCG): READY + watchdog, ro root, status page,
#                                   then the enrolment runbook (stick CSR, practice bundle, online on MQTT),
#                                   then commissioning: claim code on the LAN page, claimed through a fleet,
#                                   set-up wizard in chromium, online and named on the dashboard
#   make test-image-update          A/B update in qemu with power cuts mid-install and mid-trial
#   make update-key DIR=...         the ICB update-signing key (Ed25519)
#   make update-bundle PAYLOAD=... VERSION=... KEY=...   sign a bundle
#   make bench-update               streaming verify/install figures (memory, MB/s)
#   make bench-update-delta [DELTA_FROM=old.root.sqfs] [DELTA_TO=new.root.sqfs]
#                                   full vs delta bundle bytes and install time (default: make image's
#                                   root and an agent-only change of it)
ARCH ?= amd64
IMAGE_OUT ?= out/image
IMAGE_KEYS ?=
ICB_CA ?=
CLAIM_URL ?=
DEB_COMPRESS ?= xz

.PHONY: image-deps deb image test-image test-image-update update-bundle update-key bench-update bench-update-delta image-clean

# The heavy build/boot toolchain (mmdebstrap, squashfs, qemu, OVMF): not part of make test.
image-deps:
	$(CURDIR)/scripts/setup-system --auto --with image-build

deb: dist system-deps
	DEB_COMPRESS=$(DEB_COMPRESS) image/deb/build-deb.sh $(ARCH) $(IMAGE_OUT)

image: image-deps deb
	image/build.sh --arch $(ARCH) --deb $(IMAGE_OUT)/surgery-edge_$$($(NODE) -p 'require("./package.json").version')_$(ARCH).deb \
	  --out $(IMAGE_OUT) $(if $(IMAGE_KEYS),--keys $(IMAGE_KEYS)) $(if $(ICB_CA),--icb-ca $(ICB_CA)) $(if $(CLAIM_URL),--claim-url $(CLAIM_URL))

# Boots the image `make image` built (it does not rebuild it: say `make image test-image` for both).
test-image: deps image-deps
	ARCH=$(ARCH) IMAGE_OUT=$(IMAGE_OUT) $(TEST) --test-timeout=1800000 test/image/boot.test.ts test/image/commission.test.ts

test-image-update: deps image-deps
	ARCH=$(ARCH) IMAGE_OUT=$(IMAGE_OUT) $(TEST) --test-timeout=3600000 test/image/update.test.ts

update-key:
	provisioning/update-key.sh init $(or $(DIR),pki/update)

# The full bundle and the delta bundle (format 2) with its chunk store, side by side in IMAGE_OUT:
# publish all three; boxes from before format 2 can only take the full one.
update-bundle:
	@[ -n "$(PAYLOAD)" ] && [ -n "$(VERSION)" ] && [ -n "$(KEY)" ] || { echo "usage: make update-bundle PAYLOAD=root.sqfs VERSION=x.y.z KEY=update-key.pem [ARCH=amd64]"; exit 2; }
	image/bundle/make-bundle.sh --key $(KEY) --version $(VERSION) --arch $(ARCH) --payload $(PAYLOAD) --out $(IMAGE_OUT)/surgery-edge-$(VERSION)-$(ARCH).seb
	image/bundle/make-bundle.sh --key $(KEY) --version $(VERSION) --arch $(ARCH) --payload $(PAYLOAD) --out $(IMAGE_OUT)/surgery-edge-$(VERSION)-$(ARCH).delta.seb \
	  --delta-store $(IMAGE_OUT)/surgery-edge-$(ARCH).castr

bench-update: deps
	$(TSX) test/bench/image.ts

bench-update-delta: deps
	DELTA_FROM=$(DELTA_FROM) DELTA_TO=$(DELTA_TO) $(TSX) test/bench/image-delta.ts

image-clean:
	rm -rf $(IMAGE_OUT)
