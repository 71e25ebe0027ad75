#!/usr/bin/env bash
# Compares Lanyard with SSSD (Debian's sssd-ldap) and nss-pam-ldapd (nslcd, libnss-ldapd,
# libpam-ldapd) against one throwaway slapd: NSS calls, enumeration, PAM logins, the directory
# hung and down, and each daemon's memory. Prints one table and writes an SVG chart.
#
#   bash tests/compare.sh [--users N] [--groups-per-user M] [--chart PATH] [--skip-sssd-enumeration]
#                         [--install-only]
#
# As root. Not part of the test run: it prints figures and asserts nothing about them.
# The packages are installed without starting their daemons (a policy-rc.d that exits 101 for
# the duration of the install only) and without changing /etc/nsswitch.conf or /etc/pam.d:
# libnss-sss and libpam-sss/libpam-ldapd edit both in their postinst whatever debconf says, so
# the script saves both first, turns the PAM profiles back off with pam-auth-update, restores
# nsswitch.conf, and fails if anything still differs. Every daemon then runs in its own private
# mount namespace with its own configuration (see tests/src/bin/compare/).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${LANYARD_SHARED_TOOLS:-../shared/tools}
install_only=no
args=()
for arg in "$@"; do
  if [ "$arg" = --install-only ]; then install_only=yes; else args+=("$arg"); fi
done
if [ "$(id -u)" != 0 ]; then
  echo "tests/compare.sh: run as root (packages, mount namespaces)" >&2
  exit 1
fi
if [ ! -f "$tools/nssbench.c" ]; then
  echo "tests/compare.sh: $tools/nssbench.c not found; set LANYARD_SHARED_TOOLS to the folder holding it" >&2
  exit 1
fi

packages=(sssd-ldap libnss-sss libpam-sss nslcd libnss-ldapd libpam-ldapd)

install_packages() {
  local missing=() package
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" = 0 ]; then
    return 0
  fi
  echo "compare: installing ${missing[*]}"
  local saved
  saved=$(mktemp -d)
  cp -a /etc/nsswitch.conf "$saved/nsswitch.conf"
  cp -a /etc/pam.d "$saved/pam.d"
  ls /usr/share/pam-configs >"$saved/profiles"
  local policy=/usr/sbin/policy-rc.d created_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary, from lanyard tests/compare.sh: start no daemon during the install.\nexit 101\n' \
      >"$policy"
    chmod +x "$policy"
    created_policy=yes
  fi
  # Empty nsswitch selection: libnss-ldapd's postinst then leaves nsswitch.conf alone. The
  # nslcd answers only fill the packaged /etc/nslcd.conf, which the benchmark never uses
  # (it bind-mounts its own over it).
  debconf-set-selections <<'EOF'
libnss-ldapd libnss-ldapd/nsswitch multiselect
libnss-ldapd libnss-ldapd/clean_nsswitch boolean false
nslcd nslcd/ldap-uris string ldap://127.0.0.1/
nslcd nslcd/ldap-base string dc=example,dc=org
nslcd nslcd/ldap-auth-type select none
nslcd nslcd/ldap-starttls boolean true
nslcd nslcd/ldap-reqcert select demand
EOF
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || status=$?
  if [ "$created_policy" = yes ]; then rm -f "$policy"; fi
  # libpam-sss, libpam-ldapd and libpam-pwquality (pulled in by sssd-common) run
  # `pam-auth-update --package`, which enables their profiles in /etc/pam.d/common-*. --disable
  # regenerates those files without them and remembers the choice, so a later upgrade does not
  # enable them again.
  local new_profiles
  new_profiles=$(ls /usr/share/pam-configs | grep -vxF -f "$saved/profiles" || true)
  if [ -n "$new_profiles" ] && ! diff -r "$saved/pam.d" /etc/pam.d >/dev/null; then
    echo "compare: the packages enabled PAM profiles; turning them off again: pam-auth-update --disable" $new_profiles
    # shellcheck disable=SC2086 # one word per profile name
    pam-auth-update --disable $new_profiles
  fi
  # sssd-common also ships /etc/pam.d/sssd-shadowutils, a service nothing on the host uses.
  if ! diff -r "$saved/pam.d" /etc/pam.d >/dev/null; then
    echo "compare: /etc/pam.d still differs; restoring the saved copy"
    diff -r "$saved/pam.d" /etc/pam.d >&2 || true
    rm -rf /etc/pam.d && cp -a "$saved/pam.d" /etc/pam.d
  fi
  if ! cmp -s "$saved/nsswitch.conf" /etc/nsswitch.conf; then
    echo "compare: the packages edited /etc/nsswitch.conf (libnss-sss always does); restoring the saved copy"
    diff "$saved/nsswitch.conf" /etc/nsswitch.conf || true
    cp -a "$saved/nsswitch.conf" /etc/nsswitch.conf
  fi
  cmp -s "$saved/nsswitch.conf" /etc/nsswitch.conf && diff -r "$saved/pam.d" /etc/pam.d >/dev/null \
    || { echo "compare: could not restore /etc/nsswitch.conf or /etc/pam.d" >&2; exit 1; }
  rm -rf "$saved"
  [ "$status" = 0 ] || { echo "compare: apt-get install failed ($status)" >&2; exit "$status"; }
  echo "compare: installed; /etc/nsswitch.conf and /etc/pam.d are as before"
}

bash tests/install-deps.sh
install_packages
[ "$install_only" = yes ] && exit 0

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/nssbench" "$tools/nssbench.c"
cargo build --release --workspace --locked --quiet
LANYARD_PROFILE=release cargo run --release -p lanyard-tests --bin lanyard-compare --locked --quiet -- \
  --nssbench "$scratch/nssbench" "${args[@]}"
