# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call-flow pictures as a reviewer sees them: an SVG's texts, and the SVG rendered by a headless
Chromium (Debian's chromium) into a PNG whose drawn pixels are counted (``render``, ``ink``)."""

import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

SVG = '{http://www.w3.org/2000/svg}'
RENDER_TIMEOUT = 90


def svg_texts(path):
    """The texts an SVG draws, each a line as Graphviz writes them (parses it: a broken SVG raises)."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + 'svg', root.tag
    return [''.join(node.itertext()) for node in root.iter(SVG + 'text')]


def chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name):
            return shutil.which(name)
    raise RuntimeError('no Chromium on PATH (make deps installs Debian\'s chromium)')


def render(svg_path, png_path, size=(1200, 1600)):
    """Render ``svg_path`` with a headless Chromium into ``png_path`` (a screenshot of ``size``)."""
    profile = png_path + '.profile'
    cmd = [chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
           '--disable-background-networking', '--disable-extensions', '--no-first-run', '--hide-scrollbars',
           '--user-data-dir=' + profile, '--window-size=%d,%d' % size, '--screenshot=' + png_path,
           'file://' + os.path.abspath(svg_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0 and os.path.exists(png_path), proc.stderr[-2000:]


def _pixels(path):
    """(width, height, channels, rows of bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    with open(path, 'rb') as handle:
        data = handle.read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, header = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, header
    channels = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # the five PNG filters
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xff
            elif kind == 2:
                line[i] = (line[i] + up) & 0xff
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xff
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xff
        rows.append(line)
        previous = line
    return width, height, channels, rows


def ink(png_path):
    """How many pixels of the PNG are not the page's background (its first pixel's colour)."""
    _width, _height, channels, rows = _pixels(png_path)
    background = bytes(rows[0][:3])
    return sum(1 for row in rows for i in range(0, len(row), channels) if bytes(row[i:i + 3]) != background)
