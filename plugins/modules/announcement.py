#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: announcement
short_description: Manage an announcement (a recording callers hear) of a voxplane tenant
version_added: 0.2.0
description:
  - Creates, updates or removes one announcement, identified by its name within its tenant.
  - An announcement is a call destination like an extension. The PBX's media service answers the
    call, plays the recording, and then hangs up, or, with O(then), passes the call on (for example
    "we are closed" and then a voicemail box). Name it as V(announcement:<name>) wherever a
    destination is taken, a number's O(voxplane.pbx.number#module:target), an extension's
    O(voxplane.pbx.extension#module:forwarding), a group's O(voxplane.pbx.group#module:fallback),
    another announcement's O(then).
  - The recording is a WAV file on the controller (O(src)). It is checked (RIFF/WAVE of 8- or 16-bit
    PCM, A-law or µ-law, mono or stereo, 8000 to 48000 Hz, at most 300 seconds long) and converted to
    what the media service plays (16-bit PCM, mono, 8000 Hz) on the host that holds the directory,
    then kept in the directory with the announcement, in the same transaction. The announcement
    refers to it by the SHA-256 of the converted file (O(audio)), so the same sound given again is no
    change, and the diff shows the SHA-256 and the length, never the sound itself.
  - Audio that no announcement and no mailbox greeting uses any more is removed with the change that
    stopped using it.
  - Options left out keep their stored value; on creation they take the default named in their description.
author:
  - voxplane developers (@voxplane)
extends_documentation_fragment:
  - voxplane.pbx.directory
  - voxplane.pbx.directory.state
options:
  tenant:
    description: The tenant the announcement belongs to.
    type: str
    required: true
  name:
    description:
      - The announcement's name, unique within the tenant; 1 to 32 lowercase letters, digits, C(-) and
        C(_), a letter or digit first and last (it stands in destinations as V(announcement:<name>)).
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the announcement, C(absent) removes it.
      - An announcement that a number, an extension's forwarding or speed dial, a group's fallback or another
        announcement's O(then) still names cannot be removed (rule C(still_referenced)); change those first.
    type: str
    choices: [present, absent]
    default: present
  src:
    description:
      - The WAV file to play. A path on the controller; a relative path is looked up the way Ansible looks up
        files, in the C(files/) folder of the role, then beside the playbook (C(files/) first).
      - With O(remote_src=true), a path on the host that holds the directory.
      - A file that is not a WAV file the PBX can play fails the task naming the rule, C(audio_format) (not
        RIFF/WAVE, or another encoding such as MP3 or 24-bit PCM), C(audio_channels), C(audio_sample_rate),
        C(audio_length) (longer than 300 seconds) or C(audio_empty); C(file) when it cannot be read.
      - Required on creation, unless O(content) or O(audio) is given.
    type: path
  remote_src:
    description:
      - Whether O(src) is on the host that holds the directory (where the module runs) instead of the controller.
    type: bool
    default: false
  content:
    description:
      - The WAV file's bytes as base64 text, instead of O(src) (audio from a vault or a lookup). Whitespace
        and line breaks in it are ignored.
      - Logged and echoed in the task's result by its size only.
    type: str
  audio:
    description:
      - The SHA-256 of audio that is already in the directory, the way M(voxplane.pbx.announcement_info)
        returns it (so that its output fed back changes nothing). Give O(src) or O(content) to bring new audio.
      - Another announcement's audio may be named here; with it give its O(duration_ms) as well.
      - Refused when the tenant has no audio with that SHA-256 (rule C(audio_missing)).
    type: str
  duration_ms:
    description:
      - The length of the audio in milliseconds, as M(voxplane.pbx.announcement_info) returns it. Taken from
        the audio when O(src) or O(content) is given; when given, it must be the audio's length (rule
        C(audio_duration)).
    type: int
  description:
    description: Free text, for example what the recording says. An empty string clears it.
    type: str
  then:
    description:
      - Where the call goes after the announcement. An internal number (extension or group),
        V(voicemail:<internal number>) (that extension's box, which must be enabled), V(voicemail-menu),
        V(announcement:<name>) (another announcement, not this one) or an outside number (E.164 or national
        form).
      - Unset (on creation) or an empty string, the caller hears the announcement and the call ends.
    type: str
notes:
  - The WAV file travels to the host in the module's arguments (base64). A file larger than a WAV file of
    300 seconds can be is refused on the controller before it is sent.
  - Converting takes about a second per 30 seconds of 44.1 or 48 kHz audio on the host that holds the
    directory, on every run (the SHA-256 of the converted file decides whether anything changed). A file
    that is already 16-bit PCM, mono, 8000 Hz is taken as it is.
'''

EXAMPLES = r'''
- name: The tenant and the extension these examples work with (see voxplane.pbx.tenant_config)
  voxplane.pbx.tenant_config:
    config:
      tenant: {name: acme, sip_domain: acme.pbx.example.com, licences: {seats: {smart: 10, best: 2}}}
      extensions: [{internal_number: "210", name: Anna Schmidt, voicemail: {enabled: true}}]

- name: A WAV file on the controller beside the playbook (here a 20 ms tone; use your recording)
  ansible.builtin.copy:
    dest: "{{ playbook_dir }}/closed.wav"
    mode: "0644"
    content: >-
      {{ 'UklGRsQAAABXQVZFZm10IBAAAAAHAAEAQB8AAEAfAAABAAgAZGF0YaAAAAB/pZmUlZujsMPwSDMmHBYUFyFKqpqVlZ
      mhrb/gTTcoHRcUFh47rpyVlJifq7zXUzoqHhgUFhwxtp2WlJeeqbnPWz0sIBkVFRsswJ+XlJacp7XLZ0EuIhoVFBkn
      2KOYlJabpLHGf0YxJBsWFBgjWKeZlJWaoq7B50s1JxwWFBcfQKyblZWZoKy92085KR4XFBYdNrGclpSYnqq601c8Kx
      8Y' | b64decode }}
  delegate_to: localhost

- name: What callers hear outside business hours, then Anna's voicemail box
  voxplane.pbx.announcement:
    tenant: acme
    name: closed
    description: We are closed; please leave a message
    src: closed.wav
    then: voicemail:210

- name: The head number plays it
  voxplane.pbx.number:
    tenant: acme
    number: "+49301234567"
    target: announcement:closed

- name: Play it and hang up instead
  voxplane.pbx.announcement:
    tenant: acme
    name: closed
    then: ""

- name: The same recording again (changes nothing)
  voxplane.pbx.announcement:
    tenant: acme
    name: closed
    src: closed.wav

- name: A second announcement; the same sound is kept once
  voxplane.pbx.announcement:
    tenant: acme
    name: holiday
    src: closed.wav

- name: Remove it (refused while a number, forward, group or announcement names it)
  voxplane.pbx.announcement:
    tenant: acme
    name: holiday
    state: absent
'''

RETURN = r'''
announcement:
  description: The announcement as stored after the task, in the shape this module takes; empty when absent.
  returned: always
  type: dict
  sample:
    tenant: acme
    name: closed
    description: We are closed; please leave a message
    audio: 7987172fa1373bc1a73631cfba236ceafe624f3485db1ade8602957d45517ad7
    duration_ms: 4200
    then: voicemail:210
changes:
  description: One line per object the task created, updated or deleted.
  returned: always
  type: list
  elements: str
  sample: [create announcement closed (tenant acme)]
violations:
  description: Every broken rule, when the task failed on bad input.
  returned: failure
  type: list
  elements: dict
  sample: [{object: announcement closed (tenant acme), field: src, rule: audio_sample_rate,
            message: "/srv/play/files/closed.wav has a sample rate of 96000 Hz; give 8000 to 48000 Hz"}]
'''

import base64
import binascii
import os

from ansible_collections.voxplane.pbx.plugins.module_utils import audio
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import RuleError
from ansible_collections.voxplane.pbx.plugins.module_utils.runner import run_object_module

ARGUMENT_SPEC = dict(
    tenant=dict(type='str', required=True),
    name=dict(type='str', required=True),
    src=dict(type='path'),
    remote_src=dict(type='bool', default=False),
    content=dict(type='str'),
    audio=dict(type='str'),
    duration_ms=dict(type='int'),
    description=dict(type='str'),
    then=dict(type='str'),
)

# Options that bring the recording; they are not fields of the announcement.
SOURCE_OPTIONS = ('src', 'remote_src', 'content')


def wav_bytes(src, content):
    """The WAV file's bytes: ``content`` (base64; the action plugin sends the controller's file so) or the
    file ``src`` on this host. RuleError when neither can be read."""
    if content is not None:
        try:
            return base64.b64decode(''.join(content.split()), validate=True)
        except (binascii.Error, ValueError) as e:
            raise RuleError('src' if src else 'content', 'base64', 'the WAV file\'s bytes are not base64 text (%s)' % e)
    try:
        error = audio.too_large(os.path.getsize(src), 'src', src)
        if error is not None:
            raise error
        with open(src, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as e:
        raise RuleError('src', 'file', 'cannot read %s on %s (%s)' % (src, os.uname()[1], e.strerror or e))


def recording(params, request):
    """The announcement's audio from its WAV file (run_object_module's ``audio``): converted, and named in
    the request by its SHA-256 and length."""
    src, content = request.get('src'), request.get('content')
    for option in SOURCE_OPTIONS:
        request.pop(option, None)
    if src is None and content is None:
        return {}
    converted = audio.convert(wav_bytes(src, content), 'src' if src else 'content', src or 'the content')
    if request.get('audio') not in (None, converted.sha256):
        raise RuleError('audio', 'audio_mismatch', 'the WAV file converts to audio %s..., not %s; give the file or '
                        'the SHA-256, not both' % (converted.sha256[:12], request['audio']))
    request['audio'] = converted.sha256
    if request.get('duration_ms') is None:
        request['duration_ms'] = converted.duration_ms
    return {converted.sha256: (converted.wav, converted.duration_ms)}


def main():
    run_object_module('announcement', ARGUMENT_SPEC, audio=recording, summarised=('content',))


if __name__ == '__main__':
    main()
