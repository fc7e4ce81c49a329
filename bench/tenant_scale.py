# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directory-scale benchmark: whole tenants through ansible-playbook, against the single-object path.

    .venv/bin/python bench/tenant_scale.py                 full run (10,000 extensions), about 4 minutes
    .venv/bin/python bench/tenant_scale.py --extensions 2000 --tenants 20 --sample 30    a quick one
    options: --json FILE, --keep (keep the temporary tree), --skip-yaml, --skip-many, --skip-baseline

Every figure is the wall time of one real ``ansible-playbook`` run against localhost (the
collection from this checkout), so Ansible's own start-up and per-task cost are included:

1. one ``voxplane.pbx.tenant_config`` task (``src:`` a JSON file) creating a tenant of N extensions,
   each with 2 SIP accounts, a desk phone and a DDI, plus 50 groups, into an empty directory; the
   unchanged re-apply (must report changed=0); a change of one extension's name; and the peak
   resident memory (VmHWM) of the module's process, read from /proc while it runs;
2. the same three runs with the document as YAML (PyYAML's C loader);
3. ``--tenants`` tenants of 100 extensions in one play, one tenant_config run per tenant (a loop);
4. the baseline: today's single-object path, ``voxplane.pbx.extension`` and ``voxplane.pbx.device``
   tasks for ``--sample`` extensions of the same tenant, timed and extrapolated to N extensions.

Targets (issue 9, JSON input, N = 10,000): first apply <= 20 s, unchanged re-apply <= 5 s, one
changed extension <= 5 s. Results: docs/benchmarks.md.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

import lab_path  # noqa: F401  (tests/ on the path: the lab)  pylint: disable=unused-import
from lab import documents as docs  # noqa: E402
from lab.playbook import PlaybookRun  # noqa: E402

BIN = os.path.dirname(sys.executable)
T0 = time.monotonic()
TARGETS = {'first': 20.0, 'again': 5.0, 'one': 5.0}


def log(message):
    sys.stderr.write('[%6.1fs] %s\n' % (time.monotonic() - T0, message))
    sys.stderr.flush()


class PeakMemory(threading.Thread):
    """Polls /proc for processes whose command line names the module and keeps their highest VmHWM."""

    def __init__(self, needle):
        super(PeakMemory, self).__init__(daemon=True)
        self.needle = needle.encode()
        self.peak_kb = 0
        self.cpu = {}           # pid -> user + system seconds, last seen
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        if self.needle not in handle.read():
                            continue
                    with open('/proc/%s/status' % pid) as handle:
                        for line in handle:
                            if line.startswith('VmHWM:'):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                    with open('/proc/%s/stat' % pid) as handle:
                        fields = handle.read().rsplit(')', 1)[1].split()
                        self.cpu[pid] = (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))
                except (IOError, OSError, ValueError):
                    continue
            self.stopped.wait(0.02)

    def stop(self):
        """(peak MiB, CPU seconds of the module processes as last seen)."""
        self.stopped.set()
        self.join()
        return self.peak_kb / 1024.0, sum(self.cpu.values())


def playbook(path, plays):
    with open(path, 'w') as handle:
        json.dump(plays, handle, indent=1)
    return path


def run_playbook(path, extra_vars=None, memory=False):
    """Wall time, the run, and (memory=True) the module process's peak memory in MiB and CPU seconds;
    ``run.cpu`` is the CPU time of ansible-playbook and everything it ran (robust on a busy machine)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'build', 'collections'), ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    cmd = [os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', path,
           '-e', json.dumps(dict(extra_vars or {}, ansible_python_interpreter=sys.executable))]
    watcher = PeakMemory('AnsiballZ_tenant_config') if memory else None
    if watcher:
        watcher.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=3600)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = watcher.stop() if watcher else None
    run = PlaybookRun(proc)
    run.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.rc != 0:
        raise RuntimeError('ansible-playbook %s failed: %r' % (path, run))
    return elapsed, run, peak


def apply_play(directory, src):
    return [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'voxplane.pbx.tenant_config': {'src': src, 'directory': directory, 'state': 'overridden'}}]}]


def fresh(path):
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def whole_tenant(tmp, extensions, fmt, repeat):
    """First apply, unchanged re-apply, one extension changed, ``repeat`` times each on a fresh
    directory: {label: {'seconds': median, 'runs': [...], 'peak_mib': highest}}."""
    doc = docs.big_tenant(extensions)
    src = docs.write(doc, os.path.join(tmp, 'big.%s' % fmt))
    out = {'file_mb': os.path.getsize(src) / 1e6}
    runs = dict((label, []) for label in TARGETS)
    peaks = []
    for attempt in range(repeat):
        docs.write(doc, src)
        directory = fresh(os.path.join(tmp, 'big-%s.db' % fmt))
        book = playbook(os.path.join(tmp, 'apply-%s.yml' % fmt), apply_play(directory, src))
        for label, want in (('first', 1), ('again', 0), ('one', 1)):
            if label == 'one':
                changed_doc = json.loads(json.dumps(doc))
                changed_doc['extensions'][extensions // 2 + attempt]['name'] = 'Renamed in run %d' % attempt
                docs.write(changed_doc, src)
            elapsed, run, (peak, module_cpu) = run_playbook(book, memory=True)
            if run.changed != want:
                raise RuntimeError('%s %s: changed=%s, expected %s' % (fmt, label, run.changed, want))
            runs[label].append((elapsed, run.cpu, module_cpu))
            peaks.append(peak)
            log('%s %s (run %d): %.2f s wall, %.2f s CPU (module %.2f s), changed=%s, module peak %.0f MiB, load %.1f'
                % (fmt, label, attempt + 1, elapsed, run.cpu, module_cpu, run.changed, peak, os.getloadavg()[0]))
    for label, measured in runs.items():
        walls = sorted(m[0] for m in measured)
        out[label] = {'seconds': walls[(len(walls) - 1) // 2], 'min': walls[0], 'runs': measured,
                      'cpu': sorted(m[1] for m in measured)[(len(walls) - 1) // 2],
                      'module_cpu': sorted(m[2] for m in measured)[(len(walls) - 1) // 2]}
    out['peak_mib'] = max(peaks)
    return out


def many_tenants(tmp, tenants, extensions=100):
    """``tenants`` tenants of ``extensions`` extensions, one tenant_config run each, in one play."""
    srcs = []
    for t in range(tenants):
        name = 't%03d' % t
        doc = docs.big_tenant(extensions, groups=5, name=name, t=t, block='+4930%03d%02d' % (700 + t // 100, t % 100))
        srcs.append(docs.write(doc, os.path.join(tmp, '%s.json' % name)))
    directory = fresh(os.path.join(tmp, 'many.db'))
    book = playbook(os.path.join(tmp, 'many.yml'), [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'one tenant_config run per tenant', 'voxplane.pbx.tenant_config': {
            'src': '{{ item }}', 'directory': directory, 'state': 'overridden'}, 'loop': srcs}]}])
    out = {}
    for label in ('first', 'again'):
        elapsed, run = run_playbook(book)[:2]
        out[label] = {'seconds': elapsed, 'changed': run.changed}
        log('%d tenants x %d extensions %s: %.2f s (%.3f s per tenant)' % (tenants, extensions, label, elapsed, elapsed / tenants))
    return out


def baseline(tmp, extensions, sample):
    """Today's path: one extension task and one device task per extension, on a sample; extrapolated."""
    doc = docs.big_tenant(sample, groups=0, name='base')
    directory = fresh(os.path.join(tmp, 'base.db'))
    tenant = dict(doc['tenant'])
    tenant.pop('locations')
    setup = [{'voxplane.pbx.tenant': dict(tenant, locations=doc['tenant']['locations'], directory=directory)},
             {'voxplane.pbx.number': dict(doc['numbers'][0], tenant='base', directory=directory)}]
    run_playbook(playbook(os.path.join(tmp, 'base-setup.yml'), [{'hosts': 'localhost', 'gather_facts': False, 'tasks': setup}]))
    tasks = []
    for ext, device in zip(doc['extensions'], doc['devices']):
        tasks.append({'voxplane.pbx.extension': dict(ext, tenant='base', directory=directory)})
        tasks.append({'voxplane.pbx.device': dict(device, tenant='base', directory=directory)})
    book = playbook(os.path.join(tmp, 'base.yml'), [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}])
    # ansible-playbook's own start-up, paid once per run whatever the number of tasks.
    startup = min(run_playbook(playbook(os.path.join(tmp, 'empty.yml'), [
        {'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'ansible.builtin.meta': 'noop'}]}]))[0] for dummy in range(2))
    out = {'sample': sample, 'tasks': len(tasks), 'startup': startup}
    for label in ('first', 'again'):
        elapsed, run = run_playbook(book)[:2]
        per_task = (elapsed - startup) / len(tasks)
        out[label] = {'seconds': elapsed, 'per_task': per_task, 'extrapolated': startup + per_task * 2 * extensions,
                      'one': startup + per_task, 'changed': run.changed}
        log('baseline %s: %d tasks in %.2f s (start-up %.2f s, %.3f s a task) -> %d extensions: %.0f s'
            % (label, len(tasks), elapsed, startup, per_task, extensions, out[label]['extrapolated']))
    return out


def _seconds(value):
    if value is None:
        return '-'
    return '%.0fs' % value if value >= 100 else '%.2fs' % value


def report(results, extensions):
    title = 'voxplane directory-scale benchmark: %d extensions (2 SIP accounts, a desk phone, a DDI each), 50 groups'
    lines = ['', title % extensions, '(median of %d runs for JSON, %d for YAML; every run a full ansible-playbook)' % (
        results['repeat'], results['yaml_repeat'] if 'yaml' in results else 0), '']
    base = results.get('baseline')
    row = '%-34s %10s %10s %10s %16s %8s'
    lines.append(row % ('run (ansible-playbook, wall time)', 'JSON', 'YAML', 'target', 'single-object', 'ratio'))
    for label, name in (('first', 'first apply'), ('again', 'unchanged re-apply'), ('one', 'one extension changed')):
        json_s = results['json'][label]['seconds']
        yaml_s = results['yaml'][label]['seconds'] if 'yaml' in results else None
        base_s = None
        if base:
            base_s = {'first': base['first']['extrapolated'], 'again': base['again']['extrapolated'],
                      'one': base['first']['one']}[label]
        ratio = '%.1fx' % (base_s / json_s) if base_s else '-'
        lines.append(row % (name, _seconds(json_s), _seconds(yaml_s), '<= %.0fs' % TARGETS[label], _seconds(base_s), ratio))
    yaml_peak = '%.0f MiB' % results['yaml']['peak_mib'] if 'yaml' in results else '-'
    lines.append(row % ('module peak memory (VmHWM)', '%.0f MiB' % results['json']['peak_mib'], yaml_peak, '', '', ''))
    yaml_size = '%.1f MB' % results['yaml']['file_mb'] if 'yaml' in results else '-'
    lines.append(row % ('document size', '%.1f MB' % results['json']['file_mb'], yaml_size, '', '', ''))
    order = ('first', 'again', 'one')
    whole = [_seconds(results['json'][k]['cpu']) for k in order]
    module = [_seconds(results['json'][k]['module_cpu']) for k in order]
    lines.append(row % tuple(['  JSON: CPU of the whole run'] + whole + ['', '']))
    lines.append(row % tuple(['  JSON: CPU of the module process'] + module + ['', '']))
    lines.append('  (the CPU rows list first apply, re-apply, one change left to right)')
    for label in TARGETS:
        lines.append('  JSON %-5s runs (wall s, CPU s, module CPU s): %s' % (
            label, ', '.join('%.2f/%.2f/%.2f' % tuple(m) for m in results['json'][label]['runs'])))
    lines.append('  load average during the run: %s' % ', '.join('%.1f' % x for x in results.get('load', [])))
    if 'many' in results:
        many, count = results['many'], results['tenants']
        lines.append('')
        figures = (count, many['first']['seconds'], many['first']['seconds'] / count, many['again']['seconds'])
        lines.append('%d tenants x 100 extensions, one play, one tenant_config run per tenant (a loop): first %.1f s '
                     '(%.2f s a tenant), unchanged %.1f s' % figures)
    if base:
        first, again = base['first'], base['again']
        figures = (base['tasks'], base['sample'], first['seconds'], first['per_task'], base['startup'], again['per_task'],
                   extensions)
        lines.append('single-object baseline: %d extension + device tasks for %d extensions: %.1f s, %.3f s a task after '
                     '%.2f s start-up; unchanged %.3f s a task; extrapolated to %d extensions x 2 tasks (the one-extension '
                     'row: start-up + one task)' % figures)
    met = all(results['json'][k]['seconds'] <= TARGETS[k] for k in TARGETS)
    lines.append('')
    lines.append('targets (JSON, median): %s' % ('met' if met else 'NOT met'))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--extensions', type=int, default=10000)
    parser.add_argument('--tenants', type=int, default=100)
    parser.add_argument('--sample', type=int, default=100)
    parser.add_argument('--repeat', type=int, default=3, help='runs of each JSON measurement (median reported)')
    parser.add_argument('--yaml-repeat', type=int, default=1, help='runs of each YAML measurement')
    parser.add_argument('--skip-yaml', action='store_true')
    parser.add_argument('--skip-many', action='store_true')
    parser.add_argument('--skip-baseline', action='store_true')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--keep', action='store_true', help='keep the temporary tree')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='voxplane-scale-')
    results = {'extensions': args.extensions, 'tenants': args.tenants, 'repeat': args.repeat, 'yaml_repeat': args.yaml_repeat}
    try:
        results['json'] = whole_tenant(tmp, args.extensions, 'json', args.repeat)
        if not args.skip_yaml:
            results['yaml'] = whole_tenant(tmp, args.extensions, 'yml', args.yaml_repeat)
        if not args.skip_many:
            results['many'] = many_tenants(tmp, args.tenants)
        if not args.skip_baseline:
            results['baseline'] = baseline(tmp, args.extensions, args.sample)
    finally:
        if args.keep:
            log('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results['load'] = list(os.getloadavg())
    print(report(results, args.extensions))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=1)


if __name__ == '__main__':
    main()
