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

# libheif.mk builds the library without its tools (WITH_EXAMPLES=OFF). spis needs heif-dec, so
# with BR2_PACKAGE_SPIS_HEIF the tools are switched back on: a later -D wins in CMake, and
# LIBHEIF_CONF_OPTS is only expanded when libheif is configured, after every .mk has been read.
# heifio looks for libpng, libtiff and libwebp on its own; they are kept out so that the build
# does not depend on what else happens to be in staging (heif-dec writes JPEG for spis).
ifeq ($(BR2_PACKAGE_SPIS_HEIF),y)
# check-package disable TypoInPackageVariable
LIBHEIF_CONF_OPTS += \
	-DWITH_EXAMPLES=ON \
	-DWITH_EXAMPLE_HEIF_THUMB=OFF \
	-DWITH_EXAMPLE_HEIF_VIEW=OFF \
	-DCMAKE_DISABLE_FIND_PACKAGE_PNG=ON \
	-DCMAKE_DISABLE_FIND_PACKAGE_TIFF=ON \
	-DCMAKE_DISABLE_FIND_PACKAGE_WEBP=ON
SPIS_DEPENDENCIES += libheif
endif

$(eval $(generic-package))
