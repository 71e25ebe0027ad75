# Shared by postinst, prerm and postrm (build-deb.sh pastes it in at #NSSWITCH#).
# Adds or removes the word "lanyard" on the passwd, group and initgroups lines of
# /etc/nsswitch.conf: after "files" (or after the first source when there is no "files"),
# one space before it, so removing " lanyard" gives back the line byte for byte. Idempotent.
# The file is rewritten in place (same inode, owner and mode) and only when it changes.
lanyard_nsswitch() {
	nss_file=/etc/nsswitch.conf
	[ -f "$nss_file" ] || return 0
	if [ "$1" = add ]; then
		nss_script='/^(passwd|group|initgroups):/{
/[[:space:]]lanyard([[:space:]]|$)/b
s/^([a-z]+:([[:space:]]+[^[:space:]]+)*[[:space:]]+files)([[:space:]]|$)/\1 lanyard\3/
t
s/^([a-z]+:[[:space:]]+[^[:space:]]+)/\1 lanyard/
}'
	else
		nss_script='/^(passwd|group|initgroups):/s/ lanyard([[:space:]]|$)/\1/'
	fi
	sed -E "$nss_script" "$nss_file" > "$nss_file.lanyard-tmp"
	if cmp -s "$nss_file" "$nss_file.lanyard-tmp"; then
		rm -f "$nss_file.lanyard-tmp"
	else
		cat "$nss_file.lanyard-tmp" > "$nss_file"
		rm -f "$nss_file.lanyard-tmp"
	fi
}
