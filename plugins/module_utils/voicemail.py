# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An administrator's view of voicemail: the mailboxes' counts.

The media service writes the messages (docs/media.md): their metadata in the directory
(``store.Transaction.add_voicemail`` and the rest), their audio as WAV files below its storage
folder. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils import model


def mailboxes(txn, state, keys=None):
    """Each mailbox of the tenant (of the extensions ``keys``): the extensions whose voicemail is enabled
    or that hold messages, with their counts of new and saved messages and whether the box is locked
    (after wrong PINs); never a message's audio. Sorted by internal number."""
    counts = txn.mailbox_counts(state.name)
    extensions = state.objects(model.EXTENSION)
    wanted = sorted(k for k in (extensions if keys is None else keys)
                    if k in extensions and (extensions[k]['voicemail']['enabled'] or k in counts))
    return [dict(internal_number=k, new=counts.get(k, {}).get('new', 0), saved=counts.get(k, {}).get('saved', 0),
                 locked=extensions[k]['voicemail']['locked']) for k in wanted]
