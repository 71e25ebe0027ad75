#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, if any is missing.
# Non-interactive, and without letting the slapd or openssh-server packages start the system's
# own slapd or sshd: the tests and the demo run their own, on 127.0.0.1, in private namespaces.
set -euo pipefail
# libfaketime: the offline tests run the agent with its wall clock moved ahead (verifier ages).
# gdb: the secrets tests take a core dump of the running agent with gcore.
# man-db, groff-base: the docs tests render every man page with `man -l` and `groff -ww`.
# g++: libFuzzer (the fuzz smoke, tests/fuzz.sh) is C++, built by the libfuzzer-sys crate.
# 389-ds-base, libnss3-tools: the 389 Directory Server harness (tests/src/ds389.rs) creates a
# throwaway instance in a private mount namespace; its TLS tools (dsctl tls) need certutil.
# samba, samba-ad-dc, samba-ad-provision, winbind, krb5-user, ldb-tools, iproute2: the Samba AD
# DC harness (tests/src/samba_ad/) provisions a throwaway domain in private mount and network
# namespaces (`ip` brings their lo up) and loads it with ldb-tools' ldbmodify before the first
# start. --no-install-recommends keeps krb5-config out (it would write /etc/krb5.conf);
# samba-ad-provision is only a Recommends of samba, so it is named here.
# dnsmasq-base: the discovery tests (tests/src/dns.rs) serve SRV records from dnsmasq on the
# loopback of a private network namespace; dnsmasq-base is the program alone (the `dnsmasq`
# package would also install and start a system service).
packages=(slapd ldap-utils libpam0g-dev libclang-dev pamtester util-linux ca-certificates
  openssh-server openssh-client sshpass libfaketime
  python3-prometheus-client man-db groff-base file gdb g++ 389-ds-base libnss3-tools
  samba samba-ad-dc samba-ad-provision winbind krb5-user ldb-tools iproute2 dnsmasq-base)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ "${#missing[@]}" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=yes
fi
trap 'if [ "$created_policy" = yes ]; then rm -f "$policy"; fi' EXIT
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
