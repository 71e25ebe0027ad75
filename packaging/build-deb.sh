#!/bin/sh
# Builds target/debian/lanyard_<version>_amd64.deb from this workspace: release binaries, then
# a package tree assembled by hand and `dpkg-deb --build --root-owner-group` (no cargo-deb).
# Reproducible: fixed mtimes (SOURCE_DATE_EPOCH, from the last commit unless set), sorted
# inputs, `gzip -n`, root:root ownership. Incremental: cargo rebuilds only what changed.
# Needs: cargo, dpkg-deb, python3, gzip, objdump (binutils). Prints the .deb's path last.
set -eu
cd "$(dirname "$0")/.."
umask 022

cargo build --release --locked -p lanyard-agent -p nss_lanyard -p pam_lanyard

upstream=$(cargo metadata --format-version 1 --no-deps --locked |
	python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "lanyard-agent"))')
version="$upstream-1"
arch=amd64
multiarch=x86_64-linux-gnu
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH
release=${CARGO_TARGET_DIR:-target}/release
out=target/debian
root=$out/lanyard_${version}_$arch
deb=$out/lanyard_${version}_$arch.deb
rm -rf "$root"
mkdir -p "$root/DEBIAN"

# install MODE SOURCE DEST: a copy with an exact mode (dpkg-deb --root-owner-group makes it root:root).
put() {
	mkdir -p "$root$(dirname "$3")"
	cp "$2" "$root$3"
	chmod "$1" "$root$3"
}
# gz SOURCE DEST: gzip -9n (no name, no timestamp inside) at mode 0644.
gz() {
	mkdir -p "$root$(dirname "$2")"
	gzip -9nc "$1" > "$root$2"
	chmod 0644 "$root$2"
}

put 0755 "$release/lanyardd" /usr/sbin/lanyardd
put 0755 "$release/lanyardctl" /usr/sbin/lanyardctl
put 0644 "$release/libnss_lanyard.so" "/usr/lib/$multiarch/libnss_lanyard.so.2"
put 0644 "$release/libpam_lanyard.so" "/usr/lib/$multiarch/security/pam_lanyard.so"
for binary in usr/sbin/lanyardd usr/sbin/lanyardctl "usr/lib/$multiarch/libnss_lanyard.so.2" \
	"usr/lib/$multiarch/security/pam_lanyard.so"; do
	# The release profile strips (strip = true); refuse to ship anything that is not.
	# The compiler's version string (.comment) is of no use at run time.
	objcopy --remove-section=.comment "$root/$binary"
	case $(file -b "$root/$binary") in
	*", stripped"*) ;;
	*) echo "build-deb.sh: $binary is not stripped: $(file -b "$root/$binary")" >&2; exit 1 ;;
	esac
done

put 0640 packaging/lanyard.toml /etc/lanyard/lanyard.toml
put 0644 packaging/lanyardd.service /usr/lib/systemd/system/lanyardd.service
put 0644 packaging/lanyard.pam-config /usr/share/pam-configs/lanyard
for page in packaging/man/*.[0-9]; do
	section=${page##*.}
	gz "$page" "/usr/share/man/man$section/$(basename "$page").gz"
done
put 0644 packaging/completions/lanyardctl.bash /usr/share/bash-completion/completions/lanyardctl
put 0644 packaging/completions/_lanyardctl /usr/share/zsh/vendor-completions/_lanyardctl
put 0644 packaging/completions/lanyardctl.fish /usr/share/fish/vendor_completions.d/lanyardctl.fish
put 0644 packaging/debian/lintian-overrides /usr/share/lintian/overrides/lanyard

doc=/usr/share/doc/lanyard
mkdir -p "$root$doc"
cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu |
	python3 packaging/debian/copyright.py > "$root$doc/copyright"
chmod 0644 "$root$doc/copyright"
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
maintainer="Lanyard maintainers <lanyard@example.org>"
printf '%s\n' \
	"lanyard ($version) unstable; urgency=medium" "" \
	"  * Package lanyardd, lanyardctl, libnss_lanyard.so.2 and pam_lanyard.so" \
	"    built from this workspace by packaging/build-deb.sh." "" \
	" -- $maintainer  $changelog_date" > "$out/changelog.Debian"
gz "$out/changelog.Debian" "$doc/changelog.Debian.gz"

# Maintainer scripts: the shared nsswitch.conf editor pasted in at #NSSWITCH#.
for script in postinst prerm postrm; do
	sed -e '/^#NSSWITCH#$/{' -e 'r packaging/debian/nsswitch.sh' -e 'd' -e '}' \
		"packaging/debian/$script" > "$root/DEBIAN/$script"
	chmod 0755 "$root/DEBIAN/$script"
done
printf '/etc/lanyard/lanyard.toml\n' > "$root/DEBIAN/conffiles"
# libnss_lanyard.so.2 lives in a directory ld.so caches.
printf 'activate-noawait ldconfig\n' > "$root/DEBIAN/triggers"

# Depends: the newest glibc symbol version any shipped binary asks for.
glibc=$(objdump -T "$root/usr/sbin/lanyardd" "$root/usr/sbin/lanyardctl" "$root/usr/lib/$multiarch/libnss_lanyard.so.2" \
	"$root/usr/lib/$multiarch/security/pam_lanyard.so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: lanyard
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: libc6 (>= $glibc), libpam0g (>= 0.99.7.1), libpam-runtime (>= 1.0.1-6), adduser
Section: admin
Priority: optional
Description: directory users and groups for NSS and PAM, with offline logins
 Lanyard lets a Linux machine use an LDAP directory (OpenLDAP, 389 Directory
 Server or Active Directory) for its users, groups and logins, and keeps
 working when the directory is out of reach.
 .
 The package contains lanyardd, the agent that talks to the directory over
 StartTLS or LDAPS and keeps a local cache with offline password verifiers;
 lanyardctl, its administration tool; the NSS module libnss_lanyard.so.2
 (nsswitch word "lanyard"); and the PAM module pam_lanyard.so with a
 pam-auth-update profile. Installing it adds "lanyard" to the passwd and
 group lines of /etc/nsswitch.conf; removing it takes it out again.
EOF
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/triggers"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
