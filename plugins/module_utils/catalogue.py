# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Catalogue of desk phone models a device may be: vendor, model and how many
SIP accounts (lines) the phone can register at once, and the vendor family whose
provisioning and remote-control conventions it follows."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DEVICE_MODELS = {
    'yealink-t31p': {'vendor': 'Yealink', 'model': 'T31P', 'lines': 2},
    'yealink-t33g': {'vendor': 'Yealink', 'model': 'T33G', 'lines': 4},
    'yealink-t46u': {'vendor': 'Yealink', 'model': 'T46U', 'lines': 16},
    'yealink-t54w': {'vendor': 'Yealink', 'model': 'T54W', 'lines': 16},
    'yealink-t57w': {'vendor': 'Yealink', 'model': 'T57W', 'lines': 16},
    'yealink-w73p': {'vendor': 'Yealink', 'model': 'W73P (DECT)', 'lines': 10},
    'snom-d735': {'vendor': 'Snom', 'model': 'D735', 'lines': 12},
    'snom-d785': {'vendor': 'Snom', 'model': 'D785', 'lines': 12},
    'snom-d865': {'vendor': 'Snom', 'model': 'D865', 'lines': 12},
    'gigaset-n670': {'vendor': 'Gigaset', 'model': 'N670 IP PRO (DECT)', 'lines': 20},
    'fanvil-x4u': {'vendor': 'Fanvil', 'model': 'X4U', 'lines': 12},
    'grandstream-grp2614': {'vendor': 'Grandstream', 'model': 'GRP2614', 'lines': 4},
    'poly-vvx450': {'vendor': 'Poly', 'model': 'VVX 450', 'lines': 12},
    'cisco-8841': {'vendor': 'Cisco', 'model': 'IP Phone 8841', 'lines': 5},
    'avm-fritzfon-c6': {'vendor': 'AVM', 'model': 'FRITZ!Fon C6 (via FRITZ!Box)', 'lines': 1},
}


# What a vendor's firmware does on an unsolicited NOTIFY (remote actions, docs/devices.md):
# the Event header that makes it fetch its configuration again (resync) and the one that makes
# it restart. A vendor missing here cannot be controlled remotely.
REMOTE_EVENTS = {
    'Yealink': {'resync': 'check-sync;reboot=false', 'restart': 'check-sync;reboot=true'},
    'Snom': {'resync': 'check-sync;reboot=false', 'restart': 'check-sync;reboot=true'},
    'Poly': {'resync': 'check-sync', 'restart': 'check-sync;reboot=true'},
    'Cisco': {'resync': 'resync', 'restart': 'reboot'},
    'Fanvil': {'resync': 'check-sync;reboot=false', 'restart': 'check-sync;reboot=true'},
    'Grandstream': {'resync': 'check-sync', 'restart': 'check-sync;reboot=true'},
    'Gigaset': {'resync': 'check-sync', 'restart': 'check-sync;reboot=true'},
}
REMOTE_ACTIONS = ('resync', 'restart')

# How a vendor family's provisioned file asks for the message-waiting lamp (docs/devices.md):
# 'subscribe', the phone SUBSCRIBEs to message-summary of its account or mailbox; 'unsolicited',
# the phone subscribes to nothing and the server NOTIFYs every registered contact of its lines
# when the box changes (message_summary.unsolicited_accounts). A vendor missing here is sent
# nothing unless it subscribes.
MWI_SUBSCRIBE = 'subscribe'
MWI_UNSOLICITED = 'unsolicited'
MWI = {
    'Yealink': MWI_SUBSCRIBE,
    'Snom': MWI_SUBSCRIBE,
    'Poly': MWI_SUBSCRIBE,
    'Cisco': MWI_UNSOLICITED,
    'Fanvil': MWI_SUBSCRIBE,
    'Grandstream': MWI_SUBSCRIBE,
    'Gigaset': MWI_UNSOLICITED,
}
