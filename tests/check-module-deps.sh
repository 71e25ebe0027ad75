#!/usr/bin/env bash
# The modules run inside sshd, login and sudo: their dependency tree stays small and free of
# runtimes, TLS, LDAP and databases. Fails naming any crate outside this list.
set -euo pipefail
cd "$(dirname "$0")/.."
allowed='cobs lanyard-proto libc nss_lanyard pam_lanyard postcard proc-macro2 quote serde serde_core serde_derive syn thiserror thiserror-impl unicode-ident zeroize pam-sys'
status=0
for module in nss_lanyard pam_lanyard; do
  for crate in $(cargo tree -p "$module" -e normal --prefix none | awk '{print $1}' | sort -u); do
    if ! grep -qw -- "$crate" <<<"$allowed"; then
      echo "check-module-deps: $module depends on $crate, which is not on the allowed list" >&2
      status=1
    fi
  done
done
[ "$status" = 0 ] && echo "check-module-deps: nss_lanyard and pam_lanyard depend only on allowed crates"
exit "$status"
