# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flame graphs of ``perf script`` output, with the standard library only.

    perf script -F comm,tid,ip,sym,dso -i perf.data | python3 bench/flamegraph.py --title T > out.svg

Stacks are folded root first (one line per distinct stack, as Brendan Gregg's stackcollapse does)
and drawn as an SVG flame graph: the width of a frame is its share of the samples. Frames are
coloured by where the code lives: the kernel, libpython (the interpreter), Kamailio's core
binary, Kamailio's modules (app_python3's KSR boundary among them), libc and other libraries.
``shares`` gives the same split as numbers (self samples per category).
"""

import argparse
import collections
import html
import re
import sys

CATEGORIES = (
    ('kernel', '#e8a33d'),
    ('libpython', '#6cbf4f'),
    ('app_python3 (KSR boundary)', '#2fa9a1'),
    ('Kamailio modules', '#5b8bd9'),
    ('Kamailio core', '#d9534f'),
    ('libc', '#b07cc6'),
    ('other', '#9e9e9e'),
)
COLOURS = dict(CATEGORIES)
_FRAME = re.compile(r'^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$')


def category(dso):
    if dso.startswith('[kernel') or dso in ('[vdso]',):
        return 'kernel'
    if 'libpython' in dso:
        return 'libpython'
    if dso.endswith('app_python3.so'):
        return 'app_python3 (KSR boundary)'
    if '/kamailio/modules/' in dso:
        return 'Kamailio modules'
    if dso.endswith('/kamailio') or dso == 'kamailio':
        return 'Kamailio core'
    if 'libc.so' in dso or 'libc-' in dso or 'ld-linux' in dso:
        return 'libc'
    return 'other'


def fold(lines):
    """{(frame, ...) root first: samples}; a frame is (symbol, category)."""
    stacks = collections.Counter()
    frames = []
    in_sample = False
    for line in lines:
        line = line.rstrip('\n')
        if not line.strip():
            if frames:
                stacks[tuple(reversed(frames))] += 1
            frames, in_sample = [], False
            continue
        if not line.startswith((' ', '\t')):
            in_sample = True
            frames = []
            continue
        match = _FRAME.match(line)
        if in_sample and match:
            symbol, dso = match.group(2), match.group(3)
            symbol = re.sub(r'\+0x[0-9a-f]+$', '', symbol)
            if symbol == '[unknown]':
                symbol = '[%s]' % dso.rsplit('/', 1)[-1]
            frames.append((symbol, category(dso)))
    if frames:
        stacks[tuple(reversed(frames))] += 1
    return stacks


def shares(stacks):
    """Self samples per category, as fractions of all samples."""
    total = float(sum(stacks.values())) or 1.0
    own = collections.Counter()
    for stack, count in stacks.items():
        own[stack[-1][1]] += count
    return dict((name, own[name] / total) for name, _colour in CATEGORIES)


def _tree(stacks):
    root = {'children': {}, 'count': 0, 'frame': ('all', 'other')}
    for stack, count in stacks.items():
        node = root
        node['count'] += count
        for frame in stack:
            node = node['children'].setdefault(frame, {'children': {}, 'count': 0, 'frame': frame})
            node['count'] += count
    return root


def svg(stacks, title, width=1200, height_per_frame=16, min_width=0.3):
    """The flame graph as SVG text (root at the bottom)."""
    root = _tree(stacks)
    total = float(root['count']) or 1.0
    boxes = []

    def walk(node, x, depth):
        boxes.append((x, depth, node))
        child_x = x
        for child in sorted(node['children'].values(), key=lambda n: n['frame'][0]):
            w = child['count'] / total * (width - 20)
            if w >= min_width:
                walk(child, child_x, depth + 1)
            child_x += w

    walk(root, 10.0, 0)
    depth = max(d for _x, d, _n in boxes) + 1
    legend_h = 20
    height = depth * height_per_frame + 60 + legend_h
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg version="1.1" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" '
           'font-family="Verdana, sans-serif" font-size="11">' % (width, height),
           '<rect x="0" y="0" width="%d" height="%d" fill="#fbfbf6"/>' % (width, height),
           '<text x="%d" y="22" text-anchor="middle" font-size="15">%s</text>' % (width // 2, html.escape(title))]
    x = 10
    for name, colour in CATEGORIES:
        out.append('<rect x="%d" y="32" width="12" height="12" fill="%s"/><text x="%d" y="42">%s</text>'
                   % (x, colour, x + 16, html.escape(name)))
        x += 30 + 7 * len(name)
    base = height - 10
    for x, d, node in boxes:
        w = node['count'] / total * (width - 20)
        y = base - (d + 1) * height_per_frame
        symbol, cat = node['frame']
        label = '%s (%s): %d samples, %.2f%%' % (symbol, cat, node['count'], node['count'] / total * 100)
        text = symbol if w > 7 * 3 else ''
        if text and len(text) * 6.5 > w - 4:
            text = text[:max(0, int((w - 4) / 6.5) - 2)] + '..'
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/>'
                   '<text x="%.1f" y="%d">%s</text></g>'
                   % (html.escape(label), x, y, max(w - 0.5, 0.1), height_per_frame - 1, COLOURS.get(cat, '#9e9e9e'),
                      x + 3, y + height_per_frame - 4, html.escape(text if len(text) > 2 else '')))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--title', default='perf')
    parser.add_argument('--shares', action='store_true', help='print the self-sample shares instead of the SVG')
    args = parser.parse_args(argv)
    stacks = fold(sys.stdin)
    if args.shares:
        for name, value in shares(stacks).items():
            print('%-28s %5.1f %%' % (name, value * 100))
    else:
        sys.stdout.write(svg(stacks, args.title))
    return 0


if __name__ == '__main__':
    sys.exit(main())
