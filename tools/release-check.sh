#!/usr/bin/env bash
# make release-check: the collection as its users get it (docs/releasing.md).
#
#  1. builds the tarball (ansible-galaxy collection build) and checks what is in it: no
#     development file, everything a release needs;
#  2. runs galaxy-importer on it (from PyPI, in build/importer-venv, settings in
#     tools/galaxy-importer.cfg): no error, no warning but those of
#     tools/galaxy-importer-warnings.txt (each with its reason);
#  3. installs it into a collections path outside the checkout and, from a separate user
#     project, runs a playbook with the modules and both roles against the installed copy
#     (Kamailio started in daemon mode on 127.0.0.62, asked for OPTIONS, stopped), twice: the
#     second run changes nothing;
#  4. runs ansible-lint in that user project with the collection vendored into its
#     ./collections (as users who commit their dependencies do);
#  5. runs ansible-builder introspect on the installed collections and pip install --dry-run
#     of the Python requirements it finds;
#  6. checks the changelog fragments (antsibull-changelog lint) and that CHANGELOG.rst is what
#     changelogs/changelog.yaml generates.
# Environment: PYTHON (python3), RELEASE_KEEP=1 keeps the temporary user project.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.venv/bin
BUILD=$ROOT/build
IMPORTER_VENV=$BUILD/importer-venv
PYTHON=${PYTHON:-python3}
export PATH=$BIN:$PATH ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PIP_DISABLE_PIP_VERSION_CHECK=1
# The user's project must not see this repository's ansible.cfg.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

step() { printf '\n==> release-check: %s\n' "$*"; }
fail() { printf 'release-check: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/voxplane-release-XXXXXX)
chmod 0755 "$WORK"  # Kamailio drops to the kamailio user, which must reach the deployment below
KAMAILIO_CONTROL=$WORK/project/pbx/etc/voxplane-kamailio
cleanup() {
	if [ -x "$KAMAILIO_CONTROL" ]; then "$KAMAILIO_CONTROL" stop >/dev/null 2>&1 || true; fi
	if [ "${RELEASE_KEEP:-}" = 1 ]; then echo "release-check: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------------------ 1. tarball
step "build the tarball"
version=$("$BIN/python" -c 'import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$ROOT/galaxy.yml")
rm -rf "$BUILD/release"
(cd "$ROOT" && ansible-galaxy collection build --output-path "$BUILD/release" >/dev/null)
TARBALL=$BUILD/release/voxplane-pbx-$version.tar.gz
[ -f "$TARBALL" ] || fail "no $TARBALL"
tar tzf "$TARBALL" | sed 's#/$##' | sort > "$WORK/contents.txt"
echo "$(wc -l < "$WORK/contents.txt") entries in $(basename "$TARBALL")"

# Development files: none of these may ship (galaxy.yml build_ignore keeps them out).
development='^(\.[^/]*|Makefile|ansible\.cfg|pytest\.ini|requirements|tools|tests|bench|build|inventories|collections|playbooks/demo[^/]*|changelogs/fragments|roles/[^/]+/molecule)(/|$)|\.tar\.gz$|__pycache__|\.pyc$'
if grep -E "$development" "$WORK/contents.txt"; then
	fail "the tarball contains the development files above"
fi
for required in COPYING README.md CHANGELOG.rst changelogs/changelog.yaml requirements.txt \
	meta/runtime.yml meta/execution-environment.yml roles/directory/README.md roles/kamailio/README.md \
	kemi/voxplane_kemi.py; do
	grep -qx "$required" "$WORK/contents.txt" || fail "the tarball lacks $required"
done
echo "no development files; licence, changelog, role READMEs and EE metadata present"

# ------------------------------------------------------------------------------ 2. galaxy-importer
step "galaxy-importer"
stamp=$IMPORTER_VENV/.voxplane-requirements.stamp
if [ ! -f "$stamp" ] || [ "$ROOT/requirements/release.txt" -nt "$stamp" ] || [ "$ROOT/requirements/release-constraints.txt" -nt "$stamp" ]; then
	rm -rf "$IMPORTER_VENV"
	"$PYTHON" -m venv "$IMPORTER_VENV"
	"$IMPORTER_VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements/release.txt" 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	touch "$stamp"
fi
importer_log=$BUILD/release/galaxy-importer.log
rc=0
(cd "$WORK" && PATH=$IMPORTER_VENV/bin:$PATH GALAXY_IMPORTER_CONFIG=$ROOT/tools/galaxy-importer.cfg \
	"$IMPORTER_VENV/bin/python" -m galaxy_importer.main "$TARBALL") > "$importer_log" 2>&1 || rc=$?
grep -E '^(ERROR|WARNING)' "$importer_log" > "$WORK/importer-findings.txt" || true
grep -v -x -F -f <(grep -v -E '^(#|$)' "$ROOT/tools/galaxy-importer-warnings.txt") "$WORK/importer-findings.txt" \
	> "$WORK/importer-unexpected.txt" || true
if [ "$rc" != 0 ] || [ -s "$WORK/importer-unexpected.txt" ] || ! grep -q 'Importer processing completed successfully' "$importer_log"; then
	cat "$importer_log"
	fail "galaxy-importer (exit $rc); findings without a written reason in tools/galaxy-importer-warnings.txt:
$(cat "$WORK/importer-unexpected.txt")"
fi
echo "accepted; $(wc -l < "$WORK/importer-findings.txt") finding(s), each listed with its reason in tools/galaxy-importer-warnings.txt (log: $importer_log)"

# ------------------------------------------------------------------------------ 3. installed copy
step "install into a collections path outside the checkout, run a user playbook against it"
# From here on, nothing runs in the checkout: its ansible.cfg would point at the checkout.
cd "$WORK"
# Galaxy is not reachable here: the dependencies (galaxy.yml) are put in place first, from
# build/collections (make collection), and the tarball is installed offline next to them.
install_tarball() {
	mkdir -p "$1/ansible_collections"
	cp -r "$BUILD/collections/ansible_collections/community" "$1/ansible_collections/"
	ansible-galaxy collection install --offline "$TARBALL" -p "$1" >/dev/null 2>&1
}
install_tarball "$WORK/collections" || fail "install into $WORK/collections"
installed=$WORK/collections/ansible_collections/voxplane/pbx
[ -f "$installed/MANIFEST.json" ] || fail "not installed at $installed"

mkdir -p "$WORK/project"
cp "$ROOT/tools/release-check/site.yml" "$WORK/project/site.yml"
cat > "$WORK/project/ansible.cfg" <<CFG
[defaults]
collections_path = $WORK/collections
interpreter_python = {{ ansible_playbook_python }}
CFG
port=$(( 36000 + $(printf '%s' "$ROOT" | cksum | cut -d' ' -f1) % 4000 ))
run_user_playbook() {
	(cd "$WORK/project" && ansible-playbook -i localhost, -c local site.yml \
		-e "release_root=$WORK/project/pbx release_address=127.0.0.62 release_port=$port" \
		-e "release_sip_request=$ROOT/roles/kamailio/molecule/default/files/sip_request.py")
}
run_user_playbook > "$WORK/first-run.log" 2>&1 || { cat "$WORK/first-run.log"; fail "the user playbook failed"; }
grep -q "voxplane.pbx.kamailio : " "$WORK/first-run.log" || fail "the kamailio role did not run"
echo "first run: Kamailio from the installed copy answered OPTIONS with: $(grep -o -m1 'SIP/2.0 200 [A-Za-z ]*' "$WORK/first-run.log")"
run_user_playbook > "$WORK/second-run.log" 2>&1 || { cat "$WORK/second-run.log"; fail "the second run failed"; }
recap=$(grep -E '^localhost +: ' "$WORK/second-run.log")
echo "second run: $recap"
echo "$recap" | grep -q ' changed=0 ' || { cat "$WORK/second-run.log"; fail "the second run changed something"; }
"$KAMAILIO_CONTROL" stop >/dev/null

# ------------------------------------------------------------------------------ 4. ansible-lint
step "ansible-lint in a user project that vendors the collection into ./collections"
mkdir -p "$WORK/vendored"
cp "$ROOT/tools/release-check/site.yml" "$WORK/vendored/site.yml"
install_tarball "$WORK/vendored/collections" || fail "install into the user project"
printf '[defaults]\ncollections_path = ./collections\n' > "$WORK/vendored/ansible.cfg"
# The dependencies installed beside it (community.postgresql) are their maintainers' to lint.
printf 'exclude_paths:\n  - collections/ansible_collections/community/\n' > "$WORK/vendored/.ansible-lint"
(cd "$WORK/vendored" && git init -q && git add -A \
	&& ansible-lint --offline --profile production > "$WORK/lint.log" 2>&1) \
	|| { cat "$WORK/lint.log"; fail "ansible-lint in the user project"; }
tail -1 "$WORK/lint.log"

# ------------------------------------------------------------------------------ 5. execution environment
step "ansible-builder introspect, pip install --dry-run of its Python requirements"
ansible-builder introspect --sanitize --write-pip "$WORK/ee-python.txt" --write-bindep "$WORK/ee-bindep.txt" \
	"$WORK/collections" > "$WORK/introspect.log" 2>&1 || { cat "$WORK/introspect.log"; fail "ansible-builder introspect"; }
cat "$WORK/introspect.log"
grep -q '^tzdata' "$WORK/ee-python.txt" || fail "introspect did not find the collection's requirements.txt"
"$BIN/python" -m pip install --dry-run --ignore-installed --quiet --report "$WORK/pip-report.json" \
	-r "$WORK/ee-python.txt" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
"$BIN/python" -c 'import json, sys; print("pip would install:", ", ".join("%s %s" % (i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(open(sys.argv[1]))["install"]))' "$WORK/pip-report.json"

# ------------------------------------------------------------------------------ 6. changelog
step "changelog"
(cd "$ROOT" && antsibull-changelog lint)
mkdir -p "$WORK/changelog"
cp -r "$ROOT/changelogs" "$ROOT/galaxy.yml" "$ROOT/CHANGELOG.rst" "$WORK/changelog/"
(cd "$WORK/changelog" && antsibull-changelog generate >/dev/null)
diff -u "$ROOT/CHANGELOG.rst" "$WORK/changelog/CHANGELOG.rst" \
	|| fail "CHANGELOG.rst is not what changelogs/changelog.yaml generates: run antsibull-changelog generate"
echo "fragments valid; CHANGELOG.rst up to date"

step "passed ($(basename "$TARBALL"))"
