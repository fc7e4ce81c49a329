#!/usr/bin/env bash
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The collections voxplane.pbx depends on (galaxy.yml dependencies), next to it in
# build/collections, for the tests, the lint and the demo. Galaxy is not reachable from the
# machines that build this collection: the collections come from the `ansible` package on PyPI,
# which ships them (pip download, no install), pinned by the Makefile.
#
#   tools/collection-deps.sh PIP ANSIBLE_PACKAGE COLLECTIONS_DIR NAMESPACE.NAME ...
set -euo pipefail

pip=${1:?usage: collection-deps.sh PIP ANSIBLE_PACKAGE COLLECTIONS_DIR NAMESPACE.NAME ...}
package=${2:?}
dest=${3:?}
shift 3

missing=""
for collection in "$@"; do
  [ -f "$dest/ansible_collections/${collection/.//}/MANIFEST.json" ] || missing="$missing $collection"
done
[ -n "$missing" ] || exit 0

wheels="$dest/../wheels"
mkdir -p "$wheels"
echo "collection-deps:$missing from $package"
"$pip" download --quiet --no-deps --dest "$wheels" "$package" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
wheel=$(find "$wheels" -maxdepth 1 -name "ansible-${package#*==}-*.whl" | head -n 1)
for collection in $missing; do
  path="ansible_collections/${collection/.//}"
  rm -rf "${dest:?}/$path"
  "$(dirname "$pip")/python" - "$wheel" "$path/" "$dest" <<'PY'
import sys
import zipfile
wheel, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.startswith(prefix)]
    if not names:
        sys.exit('collection-deps: %s is not in %s' % (prefix, wheel))
    archive.extractall(dest, names)
PY
  echo "collection-deps: $collection $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$dest/$path/MANIFEST.json")"
done
