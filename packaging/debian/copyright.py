#!/usr/bin/env python3
"""Writes the DEP-5 copyright file for the .deb from `cargo metadata` on stdin.

Lists every crate linked into the shipped binaries: the normal (not dev, not build) dependency
closure of lanyard-agent, nss_lanyard and pam_lanyard on x86_64 Linux. Proc-macro crates run
in the compiler only and are not linked, so neither they nor their dependencies are listed.
Usage: cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu |
       copyright.py > copyright
"""

import json
import re
import sys

ROOTS = {"lanyard-agent", "nss_lanyard", "pam_lanyard"}
# Licences Debian ships the text of; the others get their text from the crate's own files.
COMMON = {"Apache-2.0": "Apache-2.0", "GPL-2.0": "GPL-2", "LGPL-2.1": "LGPL-2.1",
          "MPL-2.0": "MPL-2.0", "CC0-1.0": "CC0-1.0"}


def dep5_licence(spdx):
    """SPDX expression -> DEP-5 License field (lowercase `or`/`and`, old `/` means `or`)."""
    text = spdx.replace("/", " OR ")
    text = re.sub(r"\s+OR\s+", " or ", text)
    text = re.sub(r"\s+AND\s+", " and ", text)
    text = re.sub(r"\s+WITH\s+", " with ", text)
    return re.sub(r"\s+", " ", text).strip()


def ids(dep5):
    return sorted({t for t in re.split(r"[()\s]+| or | and ", dep5) if t and t not in ("or", "and", "with")})


def main():
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    roots = [p["id"] for p in meta["packages"] if p["name"] in ROOTS]
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if not any(k["kind"] is None for k in dep["dep_kinds"]):
                continue
            target = packages[dep["pkg"]]
            if any("proc-macro" in t["kind"] for t in target["targets"]):
                continue
            stack.append(dep["pkg"])
    workspace = set(meta["workspace_members"])
    crates = sorted((packages[i] for i in seen if i not in workspace), key=lambda p: (p["name"], p["version"]))

    out = ["Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
           "Upstream-Name: lanyard",
           "Comment: lanyardd, lanyardctl, libnss_lanyard.so.2 and pam_lanyard.so are Rust programs",
           " linked statically against the crates listed below (from crates.io, the versions in",
           " Cargo.lock). Each Files: paragraph names one crate's source as crates.io publishes it.",
           "",
           "Files: *",
           "Copyright: the Lanyard contributors",
           "License: MIT or Apache-2.0",
           ""]
    used = {"MIT", "Apache-2.0"}
    manifests = {}
    for p in crates:
        licence = dep5_licence(p.get("license") or "")
        if not licence:
            sys.exit(f"copyright.py: crate {p['name']} {p['version']} declares no licence; list it by hand")
        authors = [re.sub(r"\s*<[^>]*>", "", a).strip() for a in p.get("authors") or []]
        holder = ", ".join(a for a in authors if a) or f"the {p['name']} authors"
        out += [f"Files: cargo-registry/{p['name']}-{p['version']}/*",
                f"Copyright: {holder}",
                f"License: {licence}",
                ""]
        for licence_id in ids(licence):
            used.add(licence_id)
            manifests.setdefault(licence_id, p["manifest_path"])
    for licence_id in sorted(used):
        out.append(f"License: {licence_id}")
        if licence_id in COMMON:
            out.append(f" On Debian systems the full text of this licence is in")
            out.append(f" /usr/share/common-licenses/{COMMON[licence_id]}.")
        else:
            out += [" " + (line if line.strip() else ".") for line in licence_text(licence_id, manifests)]
        out.append("")
    sys.stdout.write("\n".join(out).rstrip("\n") + "\n")


def licence_text(licence_id, manifests):
    """The licence's text from the first crate that uses it and ships a matching file."""
    import glob
    import os
    manifest = manifests.get(licence_id)
    candidates = []
    if manifest:
        root = os.path.dirname(manifest)
        for pattern in (f"LICENSE-{licence_id}*", f"LICENCE-{licence_id}*", f"LICENSE-{licence_id.split('-')[0]}*",
                        "LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"):
            candidates += glob.glob(os.path.join(root, pattern))
    if licence_id == "MIT":
        # The MIT text of this workspace (the same wording every MIT crate uses).
        return MIT.splitlines()
    for path in candidates:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip() for line in f.read().strip("\n").splitlines()]
    return [f"The text of {licence_id} is at https://spdx.org/licenses/{licence_id}.html",
            "and in the source of every crate above that uses it."]


MIT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""

if __name__ == "__main__":
    main()
