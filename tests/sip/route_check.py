# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What route_info predicts, held against what the real Kamailio did in the same call.

Each call-feature test of test_call_features.py and test_router.py hands its call to
``assert_predicted`` right after placing it: the same directory file (kamailio.directory_path),
the same caller and dialled digits, and as circumstances the phones of the scene (registered,
and whether each answered, rang, was busy or declined). The prediction comes from the module's
own core function (plugins/modules/route_info.py ``route_info``); test_route_info.py runs the
module once more through a real ansible-playbook.

Compared, from the sipp traces: who received an INVITE (each phone by its SIP account, the
trunk stand-in by the number in its Request-URI, the media server stand-in as 'voicemail') and
nobody else of the scene; each one's Diversion, P-Asserted-Identity, From and Privacy headers
(where the prediction names them); the order of the steps and the ring time between them; and
the caller's final answer to the INVITE.
"""

from ansible_collections.voxplane.pbx.plugins.module_utils.routing import from_header
from ansible_collections.voxplane.pbx.plugins.modules.route_info import route_info

from lab.calls import OUTSIDE_CALLER, first_invite
from lab.sipp import parse_messages
from lab.wire import header

# A step that follows a ring which ran out starts ring_time later, give or take the time sipp
# and Kamailio take (the SIP tests of the ring times allow the same).
_EARLY, _LATE = 1.0, 1.6


def predict(kamailio, dialled, caller=None, trunk=False, tenant='acme', registered=(), answer=(), busy=(),
            decline=(), dnd=None, calling_number=OUTSIDE_CALLER):
    """route_info over the Kamailio's directory; ``caller`` a SIP account, ``trunk`` an inbound call
    presenting ``calling_number``."""
    who = {'trunk': True, 'calling_number': calling_number} if trunk else {'account': caller}
    return route_info({'directory': kamailio.directory_path, 'tenant': tenant, 'caller': who, 'dialled': dialled,
                       'at': None, 'registered': list(registered), 'dnd': dnd, 'answer': list(answer),
                       'busy': list(busy), 'decline': list(decline)})


def final_answer(result):
    """The caller's final answer to its INVITE ('486 Do Not Disturb'), challenges left out."""
    for message in parse_messages(result.messages):
        if message.direction != 'received' or not message.first_line.startswith('SIP/2.0'):
            continue
        code = message.first_line.split()[1]
        if code[0] != '1' and code not in ('401', '407') and 'INVITE' in (header(message, 'CSeq') or [''])[0]:
            return message.first_line.split(' ', 1)[1]
    return None


def _expected(flow):
    """receiver -> (step index, Diversion, P-Asserted-Identity or None, From or None, privacy,
    extra headers) as route_info predicts them; None: not compared (the caller's own, as it came)."""
    expected = {}
    for index, step in enumerate(flow['steps']):
        if step['action'] == 'ring':
            for name in step['ringing']:
                if name == step.get('mobile'):
                    expected.setdefault(name, (index, step['mobile_diversion'], step['mobile_identity'],
                                               step['mobile_from_identity'], step['mobile_privacy'], {}))
                else:
                    expected.setdefault(name, (index, step['diversion_history'], step['identity'],
                                               step['from_identity'], step['privacy'], {}))
        elif step['action'] in ('trunk', 'voicemail'):
            name = 'voicemail' if step['action'] == 'voicemail' else step['number']
            expected.setdefault(name, (index, step['diversion_history'], step['identity'], step['from_identity'],
                                       step['privacy'], step['headers']))
    return expected


def from_of(invite):
    """(display name, URI) of an INVITE's From header, its parameters (the tag) left out."""
    value = header(invite, 'From')[0]
    display, bracket, rest = value.partition('<')
    return display.strip(), rest.split('>', 1)[0].strip()


def _observed(callees):
    """receiver -> its first INVITE, for everyone of the scene that received one."""
    observed = {}
    for key, result in callees.items():
        invite = first_invite(result) if result is not None else None
        if invite is None:
            continue
        if key == 'media':
            name = 'voicemail'
        elif key == 'trunk':
            name = invite.first_line.split()[1].split(':', 1)[1].split('@', 1)[0]
        else:
            name = key
        observed[name] = invite
    return observed


def assert_predicted(kamailio, caller_result, callees, dialled, caller=None, trunk=False, answer=None, ring=(),
                     busy=(), decline=(), far_end=None, tenant='acme', dnd=None, calling_number=OUTSIDE_CALLER):
    """Hold route_info's prediction against the call the test just placed. ``answer``, ``ring``,
    ``busy``, ``decline``: the Phones as given to scene(); ``far_end``: what the trunk or media
    server stand-in did ('answer', or None when there was none); ``calling_number``: what a call
    from the trunk presented. Returns the prediction."""
    phones = ([answer] if answer else []) + list(ring) + list(busy) + list(decline)
    answering = [answer.username] if answer else []
    if far_end == 'answer':
        answering += ['trunk', 'voicemail']
    flow = predict(kamailio, dialled, caller, trunk, tenant, registered=[p.username for p in phones],
                   answer=answering, busy=[p.username for p in busy], decline=[p.username for p in decline], dnd=dnd,
                   calling_number=calling_number)
    explain = 'route_info predicted:\n  %s' % '\n  '.join(flow['summary'])
    expected, observed = _expected(flow), _observed(callees)
    assert sorted(observed) == sorted(expected), 'received an INVITE: %s\n%s' % (sorted(observed), explain)
    for name, (dummy, diversion, identity, from_identity, privacy, headers) in expected.items():
        invite = observed[name]
        assert header(invite, 'Diversion') == diversion, '%s: Diversion %s\n%s' % (
            name, header(invite, 'Diversion'), explain)
        if identity is not None:
            assert header(invite, 'P-Asserted-Identity') == [identity], '%s: P-Asserted-Identity %s\n%s' % (
                name, header(invite, 'P-Asserted-Identity'), explain)
        if from_identity is not None:
            assert from_of(invite) == from_header(from_identity), '%s: From %s\n%s' % (
                name, header(invite, 'From'), explain)
        if privacy is not None:
            assert header(invite, 'Privacy') == (['id'] if privacy else []), '%s: Privacy %s\n%s' % (
                name, header(invite, 'Privacy'), explain)
        for field, value in headers.items():
            assert header(invite, field) == [value], '%s: %s %s\n%s' % (name, field, header(invite, field), explain)
    # The steps in order, each after the ring time of a ring before it that ran out.
    starts = {}
    for name, entry in expected.items():
        index = entry[0]
        starts[index] = min(starts.get(index, observed[name].time), observed[name].time)
    indexes = sorted(starts)
    for earlier, later in zip(indexes, indexes[1:]):
        gap = starts[later] - starts[earlier]
        wait = flow['steps'][later]['at'] - flow['steps'][earlier]['at']
        assert wait - _EARLY <= gap <= wait + _LATE, 'step %d started %.2f s after step %d, predicted %d s\n%s' % (
            later, gap, earlier, wait, explain)
    final = flow['final']
    predicted = '%s %s' % (final['code'], final['reason']) if final['code'] is not None else None
    actual = final_answer(caller_result)
    if predicted is None:
        # A trunk or voicemail leg's far end decides: the stand-in's answer, if there was one.
        assert far_end is None, explain
    else:
        assert actual is not None and actual.split(' ', 1)[0] == str(final['code']), 'final answer %r\n%s' % (
            actual, explain)
        if final['code'] != 200:
            assert actual == predicted, 'final answer %r\n%s' % (actual, explain)
    return flow


def predicted_answer(kamailio, caller, dialled, trunk=False, registered=(), tenant='acme'):
    """The final answer route_info predicts as the status line a caller receives
    ('SIP/2.0 486 Do Not Disturb'), for a call nobody answers; None where a far end decides."""
    final = predict(kamailio, dialled, caller, trunk, tenant, registered=registered)['final']
    return 'SIP/2.0 %d %s' % (final['code'], final['reason']) if final['code'] is not None else None
