################################################################################
#
# spis
#
################################################################################

# No source to download: the package installs the binary that "make static"
# built (static, musl, pure Rust), so the image runs the exact binary the tests
# ran. No SPIS_VERSION either: with a version Buildroot would look for a
# tarball. SPIS_BINARY may be overridden on the make command line.
SPIS_LICENSE = MIT
SPIS_BINARY = $(call qstrip,$(BR2_PACKAGE_SPIS_BINARY))

# Same user as rootfs/usr/lib/sysusers.d/spis.conf, created at build time
# because /etc is read-only on the appliance.
define SPIS_USERS
	spis -1 spis -1 * /var/lib/spis /usr/sbin/nologin - spis photo server
endef

define SPIS_INSTALL_TARGET_CMDS
	@test -f "$(SPIS_BINARY)" || { \
		echo "spis: $(SPIS_BINARY) is missing: run 'make static' first"; \
		exit 1; }
	$(INSTALL) -D -m 0755 "$(SPIS_BINARY)" $(TARGET_DIR)/usr/bin/spis
endef

$(eval $(generic-package))
