# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stage, compile-check and install the voxplane KEMI tree (used by roles/kamailio).

Run with the Python that Kamailio embeds:
    python3.11 voxplane_kemi_sync.py --dest DIR [--owner U --group G --mode 0640
        --dir-mode 0750 --check] < bundle.json
where bundle.json is {"files": {"relative/path.py": "content", ...}}.

1. Every file of the bundle is written into a staging directory next to DEST (same file
   system), so the whole new tree exists at once.
2. Every staged .py is compile-checked with `<this interpreter> -m py_compile`.
3. Only when all of them compile, each added or changed file is renamed into DEST (atomic per
   file), files in DEST matching *.py that the bundle no longer has are removed, and owner and
   modes are enforced. A syntax error exits 1 with DEST untouched.
With --check, steps 1-2 run in a temporary directory and nothing is written.
Prints one JSON object: changed, added, updated, removed (and msg/stderr on failure).
"""

import argparse
import fnmatch
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

MANAGED_PATTERNS = ("*.py",)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _managed_files(dest):
    found = set()
    if not os.path.isdir(dest):
        return found
    for root, dirs, names in os.walk(dest):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if any(fnmatch.fnmatch(name, pattern) for pattern in MANAGED_PATTERNS):
                found.add(os.path.relpath(os.path.join(root, name), dest))
    return found


def _ensure_dir(path, stop, uid, gid, dmode):
    """Create path (and missing parents below stop); enforce owner/mode up to stop."""
    changed = False
    missing = []
    cur = path
    while not os.path.isdir(cur) and cur != stop and cur != os.path.dirname(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    for directory in reversed(missing):
        os.mkdir(directory)
        changed = True
    cur = path
    while True:
        st = os.stat(cur)
        if (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (uid, gid, dmode):
            os.chown(cur, uid, gid)
            os.chmod(cur, dmode)
            changed = True
        if cur == stop or cur == os.path.dirname(cur) or os.path.dirname(cur) == stop:
            break
        cur = os.path.dirname(cur)
    return changed


def _emit(result, rc=0):
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return rc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", required=True)
    parser.add_argument("--owner", default="root")
    parser.add_argument("--group", default="root")
    parser.add_argument("--mode", default="0640")
    parser.add_argument("--dir-mode", default="0750")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--apply", dest="check", action="store_false")
    args = parser.parse_args(argv)

    dest = os.path.abspath(args.dest)
    parent = os.path.dirname(dest)
    fmode, dmode = int(args.mode, 8), int(args.dir_mode, 8)
    uid = pwd.getpwnam(args.owner).pw_uid
    gid = grp.getgrnam(args.group).gr_gid

    bundle = json.load(sys.stdin)
    wanted = {}
    for rel, content in bundle.get("files", {}).items():
        norm = os.path.normpath(rel)
        if os.path.isabs(norm) or norm.startswith(".."):
            return _emit({"failed": True, "msg": "path outside dest: %s" % rel}, 2)
        wanted[norm] = (content or "").encode("utf-8")

    added, updated, unchanged = [], [], []
    for rel in sorted(wanted):
        current = _read(os.path.join(dest, rel))
        if current is None:
            added.append(rel)
        elif current != wanted[rel]:
            updated.append(rel)
        else:
            unchanged.append(rel)
    removed = sorted(_managed_files(dest) - set(wanted))

    stage_parent = parent if (os.path.isdir(parent) and not args.check) else None
    staging = tempfile.mkdtemp(prefix=".kemi-staging-", dir=stage_parent)
    pycache = tempfile.mkdtemp(prefix="voxplane-pycache-")
    try:
        for rel, data in wanted.items():
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)
        to_check = sorted(os.path.join(staging, rel) for rel in wanted if rel.endswith(".py"))
        if to_check:
            env = dict(os.environ, PYTHONPYCACHEPREFIX=pycache)
            proc = subprocess.run([sys.executable, "-m", "py_compile"] + to_check, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                text = proc.stdout.decode("utf-8", "replace").replace(staging + os.sep, "")
                return _emit({"failed": True, "changed": False, "stderr": text,
                              "msg": "KEMI compile check failed with %s; nothing was installed"
                                     % sys.executable}, 1)

        changed = bool(added or updated or removed)
        if args.check:
            changed = changed or not os.path.isdir(dest)
        else:
            changed = _ensure_dir(dest, parent, uid, gid, dmode) or changed
            for rel in added + updated:
                target = os.path.join(dest, rel)
                _ensure_dir(os.path.dirname(target), dest, uid, gid, dmode)
                staged = os.path.join(staging, rel)
                os.chown(staged, uid, gid)
                os.chmod(staged, fmode)
                os.rename(staged, target)
            for rel in unchanged:
                target = os.path.join(dest, rel)
                changed = _ensure_dir(os.path.dirname(target), dest, uid, gid, dmode) or changed
                st = os.stat(target)
                if (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (uid, gid, fmode):
                    os.chown(target, uid, gid)
                    os.chmod(target, fmode)
                    changed = True
            for rel in removed:
                os.unlink(os.path.join(dest, rel))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(pycache, ignore_errors=True)

    return _emit({"changed": changed, "added": added, "updated": updated, "removed": removed})


if __name__ == "__main__":
    sys.exit(main())
