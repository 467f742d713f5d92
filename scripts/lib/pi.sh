# Cross-building for the Raspberry Pi without Docker (used by scripts/build-pi
# and scripts/test-pi). Debian's cross gcc and libc come from the host's
# packages; the Pi's own libraries (Tesseract, Leptonica and what they link)
# come from arm64/armhf .debs unpacked with `dpkg -x` into a sysroot under
# target/pi-sysroot. `dpkg --add-architecture` is never used: it would let apt
# replace host packages. A private apt configuration reads the foreign
# architecture's package lists instead.
# shellcheck shell=bash

# Debian packages whose libraries the Pi binaries link (closure resolved by apt).
PI_SYSROOT_PACKAGES=(libtesseract-dev libleptonica-dev)

# pi_setup TRIPLE: install the cross toolchain, add the Rust target, make the
# sysroot, and export the variables cargo, cc, bindgen and pkg-config need.
pi_setup() {
  local triple="$1" deb_arch gnu
  case "$triple" in
    aarch64-unknown-linux-gnu) deb_arch=arm64; gnu=aarch64-linux-gnu ;;
    armv7-unknown-linux-gnueabihf) deb_arch=armhf; gnu=arm-linux-gnueabihf ;;
    *) die "unsupported Pi target $triple (aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" ;;
  esac
  ensure_apt "gcc-$gnu" "libc6-dev-$deb_arch-cross" qemu-user-static clang libclang-dev pkg-config
  ensure_rust
  rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" >/dev/null

  PI_SYSROOT="$CARGO_TARGET_DIR/pi-sysroot/$deb_arch"
  pi_make_sysroot "$deb_arch" "$PI_SYSROOT"

  local up env_triple libdir="$PI_SYSROOT/usr/lib/$gnu"
  up="$(echo "$triple" | tr 'a-z-' 'A-Z_')"
  env_triple="${triple//-/_}"
  export "CARGO_TARGET_${up}_LINKER=$gnu-gcc"
  export "CC_${env_triple}=$gnu-gcc" "CXX_${env_triple}=$gnu-g++" "AR_${env_triple}=$gnu-ar"
  # The sysroot's libraries drag in others (libarchive, libcurl, …): -rpath-link
  # lets the linker find them without putting them on the binary's runpath.
  export "CARGO_TARGET_${up}_RUSTFLAGS=-L native=$libdir -C link-arg=-Wl,-rpath-link,$libdir -C link-arg=-Wl,-rpath-link,$PI_SYSROOT/lib/$gnu"
  export "BINDGEN_EXTRA_CLANG_ARGS_${env_triple}=--sysroot=/usr/$gnu -I$PI_SYSROOT/usr/include -I$PI_SYSROOT/usr/include/$gnu"
  export PKG_CONFIG_ALLOW_CROSS=1
  export "PKG_CONFIG_SYSROOT_DIR_${env_triple}=$PI_SYSROOT"
  export "PKG_CONFIG_LIBDIR_${env_triple}=$libdir/pkgconfig:$PI_SYSROOT/usr/share/pkgconfig"
  PI_GNU="$gnu"
  PI_LIBDIR="$libdir"
  export PI_SYSROOT PI_GNU PI_LIBDIR
}

# pi_make_sysroot DEB_ARCH DIR: download PI_SYSROOT_PACKAGES and their
# dependencies for DEB_ARCH and unpack them into DIR (skipped when done).
pi_make_sysroot() {
  local arch="$1" dir="$2" apt_dir="$CARGO_TARGET_DIR/pi-sysroot/apt-$1"
  local stamp="$dir/.complete-${PI_SYSROOT_PACKAGES[*]// /_}"
  [ -f "$stamp" ] && return 0
  say "making the $arch sysroot (${PI_SYSROOT_PACKAGES[*]} and dependencies) in $dir"
  rm -rf "$dir" "$apt_dir"
  mkdir -p "$dir" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc" "$apt_dir/debs"
  : > "$apt_dir/status"
  cat > "$apt_dir/apt.conf" <<CONF
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
Dir::State "$apt_dir";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
Dir::Etc::Parts "$apt_dir/etc";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$apt_dir/etc";
Debug::NoLocking "true";
CONF
  export APT_CONFIG="$apt_dir/apt.conf"
  # A list that fails to download (a mirror mid-sync) is not fatal here if
  # the packages still resolve from the lists that came: a sysroot needs
  # matching headers and libraries, not the newest security release.
  if ! apt-get update -qq >/dev/null && ! { sleep 10; apt-get update -qq >/dev/null; }; then
    say "warning: some $arch package lists did not download; resolving from those that did"
  fi
  # With an empty status file, apt lists the whole dependency closure.
  local uris
  uris="$(apt-get install -qq --print-uris --no-install-recommends "${PI_SYSROOT_PACKAGES[@]}" | awk '{print $1}' | tr -d "'")"
  [ -n "$uris" ] || die "apt found no $arch packages for ${PI_SYSROOT_PACKAGES[*]}"
  (cd "$apt_dir/debs" && echo "$uris" | xargs -n 16 curl -fsSL --remote-name-all --retry 3)
  unset APT_CONFIG
  local deb
  for deb in "$apt_dir"/debs/*.deb; do
    dpkg -x "$deb" "$dir"
  done
  # Absolute symlinks (lib.so -> /lib/…) must point inside the sysroot.
  find "$dir" -type l -lname '/*' | while read -r l; do
    ln -sfn "$dir$(readlink "$l")" "$l"
  done
  touch "$stamp"
}
