#!/usr/bin/env bash
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Mirror the collection into DEST (a path ending in ansible_collections/voxplane/pbx) for
# ansible-test, which needs that layout and tests the files git knows about. The copy holds
# the tracked files that still exist plus the untracked files that are not ignored: what
# `git add -A` would commit. DEST gets its own `git init` so that ansible-test lists files
# from it, not from the enclosing repository (where build/ is ignored).
set -euo pipefail

dest=${1:?usage: sanity-tree.sh DEST}
src=$(git rev-parse --show-toplevel)
cd "$src"

case "$dest" in
  */ansible_collections/*/*) ;;
  *) echo "sanity-tree.sh: $dest is not .../ansible_collections/NAMESPACE/NAME" >&2; exit 2 ;;
esac

rm -rf "$dest"
mkdir -p "$dest"

git ls-files -z --cached --others --exclude-standard --deduplicate |
  while IFS= read -r -d '' path; do
    if [[ -e "$path" || -L "$path" ]]; then printf '%s\0' "$path"; fi
  done |
  tar --null --no-recursion -T - -cf - | tar -xf - -C "$dest"

git -C "$dest" init -q
echo "sanity tree: $(git -C "$dest" ls-files --others --exclude-standard | wc -l) files in $dest"
