# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A call flow as a picture: every way a call can go, as the routing core decides it.

``explore()`` asks the routing core what the KEMI adapter asks it (the first decision, then
``routing.after_reply`` for each way a ring can end: busy, no answer, nobody registered, and for
an announcement that leads somewhere) and keeps each decision once, as a node, with the way the
call got there as an edge. A schedule is drawn with both of its ways (open and closed:
``routing.schedule_choice``); an IVR menu with an arrow per key and a queue with its overflow,
each to what the media service's call there leads to (``routing.route_from_media``). ``mermaid()`` writes the graph as Mermaid text (it renders in GitHub
and GitLab merge requests); ``dot()`` as Graphviz DOT, which ``svg()`` renders with Graphviz's
``dot`` command. Pure Python but for that command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import subprocess

from ansible_collections.voxplane.pbx.plugins.module_utils import callflow, routing, rules
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import EnvironmentProblem
from ansible_collections.voxplane.pbx.plugins.module_utils.model import (
    CONFERENCE, EXTENSION, GROUP, IVR, KIND_WORDS, NUMBER, QUEUE, SCHEDULE,
)

# A flow with more decisions than this is drawn up to here (the core bounds every chain far below).
MAX_NODES = 80
# How a ring can end without an answer, in the order the picture shows them, and the words for it.
RING_ENDS = (('busy', 'busy'), ('no_answer', 'no answer after %ss'), ('unregistered', 'nobody registered'))
DOT_TIMEOUT = 30


class Node(object):
    __slots__ = ('id', 'kind', 'label')

    def __init__(self, node_id, kind, label):
        self.id = node_id
        # start, ring, voicemail, mailbox, announcement, trunk, feature, end; ivr, queue, conference, schedule
        self.kind = kind
        self.label = label


class Graph(object):
    """Nodes (each decision once) and edges (from, to, label), in the order they were found."""

    def __init__(self):
        self.nodes = []
        self.edges = []
        self._by_key = {}
        self.truncated = False

    def node(self, key, kind, label):
        """The node of ``key`` and whether it is new."""
        if key in self._by_key:
            return self._by_key[key], False
        node = Node('n%d' % len(self.nodes), kind, label)
        self.nodes.append(node)
        self._by_key[key] = node
        return node, True

    def edge(self, source, target, label=''):
        """One arrow per pair of nodes: the ways that lead the same way share it ('busy, no answer')."""
        for i, (a, b, known) in enumerate(self.edges):
            if a is source and b is target:
                if label and label not in known.split(' / '):
                    self.edges[i] = (a, b, '%s / %s' % (known, label) if known else label)
                return
        self.edges.append((source, target, label))

    def as_data(self):
        by_id = dict((n.id, n) for n in self.nodes)
        return {'nodes': [{'id': n.id, 'kind': n.kind, 'label': n.label} for n in self.nodes],
                'edges': [{'from': a.id, 'to': b.id, 'label': label} for a, b, label in self.edges
                          if a.id in by_id and b.id in by_id],
                'truncated': self.truncated}


def _reason(plan):
    """The Diversion reason a leg adds (its newest), or None."""
    diversion = getattr(plan, 'diversion', ())
    return diversion[0].rsplit('reason=', 1)[-1] if diversion else None


def _ring_label(snap, plan):
    ctx = routing.Context.decode(plan.context)
    tenant = snap.tenants.get(ctx.tenant)
    target = tenant.targets.get(ctx.target) if tenant else None
    what = '%s %s' % ('group' if getattr(target, 'kind', None) == GROUP else 'extension', ctx.target)
    if getattr(target, 'name', None):
        what += ' %s' % target.name
    if getattr(target, 'kind', None) == GROUP:
        what += ' (%s)' % ', '.join(target.members)
    phones = [aor.split('@', 1)[0] for aor in plan.aors]
    label = 'ring %s: %s, %ss' % (what, ', '.join(phones) or 'no phone', plan.ring_time)
    if plan.mobile is not None:
        label += ' + mobile %s' % plan.mobile.uri.split(':', 1)[1].split('@', 1)[0]
    return label


def _relay_node(graph, snap, plan):
    media = routing.media_request(plan)
    user = plan.uri.split(':', 1)[1].split('@', 1)[0]
    if media is None:
        return graph.node(('trunk', plan.uri), 'trunk', 'out through the trunk to %s' % user)
    service, params = media
    if service in (IVR, QUEUE, CONFERENCE):  # one node per menu, queue or room, however the call got there
        tenant = snap.by_domain.get(plan.uri.split('@', 1)[-1])
        target = tenant.targets.get(params.get('number')) if tenant else None
        label = '%s %s%s' % (KIND_WORDS.get(service, service), params.get('number'),
                             ' %s' % target.name if getattr(target, 'name', None) else '')
        if service == QUEUE and target is not None:
            label += ': %s %s, %ss each' % (target.strategy, ', '.join(m[0] for m in target.members) or 'no members',
                                            target.member_ring_time)
        return graph.node(('media', tenant.name if tenant else None, service, params.get('number')), service, label)
    # One node per mailbox or announcement: why the call got there is on the arrow, not a node of its own.
    key = ('media', plan.uri, service, tuple(sorted((k, v) for k, v in params.items() if k != 'reason')), plan.context)
    if service == 'voicemail':
        return graph.node(key, 'voicemail', 'voicemail of %s' % params.get('mailbox', user))
    if service == 'mailbox':
        return graph.node(key, 'mailbox', 'mailbox menu of %s' % params['mailbox'] if params.get('mailbox')
                          else 'voicemail menu: mailbox, then PIN')
    return graph.node(key, 'announcement', 'announcement %s' % params.get('name', user))


def _end(graph, code, reason):
    return graph.node(('end', code, reason), 'end', '%s %s' % (code, reason) if code else reason)


def _hours_words(schedule):
    """A schedule's opening hours, short: 'mon-fri 08:00-18:00, sat 09:00-12:00'."""
    groups = []
    for day, spans in zip(rules.WEEKDAYS, schedule.days):
        if not spans:
            continue
        text = ' '.join('%s-%s' % (rules.clock_text(start), rules.clock_text(end)) for start, end in spans)
        if groups and groups[-1][2] == text and rules.WEEKDAYS.index(groups[-1][1]) + 1 == rules.WEEKDAYS.index(day):
            groups[-1][1] = day
        else:
            groups.append([day, day, text])
    return ', '.join('%s %s' % (first if first == last else '%s-%s' % (first, last), text)
                     for first, last, text in groups) or 'never open'


def _schedule_node(graph, snap, note):
    tenant = snap.tenants.get(note.tenant)
    schedule = tenant.schedules.get(note.name) if tenant else None
    label = 'schedule %s' % note.name
    if schedule is not None:
        holidays = len(schedule.holidays)
        label += ': %s (%s)%s' % (_hours_words(schedule), schedule.timezone, ', closed on %d holiday%s' % (
            holidays, 's' if holidays > 1 else '') if holidays else '')
    return graph.node((SCHEDULE, note.tenant, note.name, note.context), SCHEDULE, label)


def _placed(snap, plan, service, number, dest, now):
    """The plan of the call the media service places for a menu or queue to ``dest`` (route_from_media), or
    None when there is no destination."""
    if dest is None:
        return None
    to, user = routing.origin_request(dest)
    return routing.route_from_media(snap, plan.uri.split('@', 1)[-1], user, routing.origin_header(service, number, to),
                                    None, now)


def _media_ways(graph, snap, node, plan, now, todo):
    """The ways on from a menu (a key each, wrong keys, no key) or a queue (a member answers, the overflow, no
    member logged in), or a room (answered)."""
    service, params = routing.media_request(plan)
    number = params.get('number')
    tenant = snap.by_domain.get(plan.uri.split('@', 1)[-1])
    target = tenant.targets.get(number) if tenant else None

    def way(dest, label):
        nxt = _placed(snap, plan, service, number, dest, now)
        if nxt is None:
            graph.edge(node, _end(graph, 200, 'goodbye, the call ends')[0], label)
        else:
            todo.append((node, nxt, label, 0))
    if service == CONFERENCE or target is None:
        graph.edge(node, _end(graph, 200, 'answered by the media service')[0])
        return
    if service == IVR:
        for key, dest in target.keys.items():
            if dest == number:
                graph.edge(node, node, 'key %s: again' % key)
            else:
                way(dest, 'key %s' % key)
        if target.direct_dial:
            graph.edge(node, _end(graph, None, 'the extension dialled')[0], 'an extension\'s number')
        way(target.invalid, 'wrong key, %d tries' % target.max_tries)
        way(target.no_input, 'no key, %d tries of %ds' % (target.max_tries, target.timeout))
        return
    graph.edge(node, _end(graph, 200, 'answered by a member')[0], 'a member answers')
    way(target.overflow, 'nobody answers within %ds, or %d callers wait' % (target.max_wait, target.max_callers))
    if target.no_members:
        way(target.no_members, 'no member logged in')


def explore(snap, caller, dialled, now):
    """The Graph of every way a call of ``caller`` (callflow.Caller) to ``dialled`` can go."""
    graph = Graph()
    start, _new = graph.node(('start',), 'start', 'call to %s %s' % (
        dialled, 'from the trunk' if caller.from_trunk else 'from %s' % caller.username))
    if caller.from_trunk:
        plan = routing.route_inbound(snap, dialled, caller.source, now)
    else:
        plan = routing.route_from_account(snap, snap.tenants[caller.tenant].domain, caller.username, dialled, now)
    todo = [(start, plan, '', 0)]
    while todo:
        parent, plan, how, drawn_notes = todo.pop(0)
        if len(graph.nodes) >= MAX_NODES:
            graph.truncated = True
            break
        if plan is None:
            graph.edge(parent, _end(graph, None, "the callee's own answer")[0], how)
            continue
        if isinstance(plan, routing.Reject):
            graph.edge(parent, _end(graph, plan.code, plan.reason)[0], how)
            continue
        if isinstance(plan, routing.PhoneSetting):
            node, _new = graph.node(('feature', plan.tenant, plan.extension, repr(sorted(plan.request.items()))),
                                    'feature', 'feature code: %s' % plan.done)
            graph.edge(parent, node, how)
            continue
        notes = getattr(plan, 'notes', ())
        if len(notes) > drawn_notes:  # a schedule on the way: both of its ways
            note = notes[drawn_notes]
            node, new = _schedule_node(graph, snap, note)
            graph.edge(parent, node, how)
            if new:
                todo.append((node, plan, 'open' if note.open else 'closed', drawn_notes + 1))
                todo.append((node, routing.schedule_choice(snap, note, not note.open, now),
                             'closed' if note.open else 'open', 0))
            continue
        reason = _reason(plan)
        label = how + (' (Diversion %s)' % reason if reason and how else '')
        if isinstance(plan, routing.Relay):
            node, new = _relay_node(graph, snap, plan)
            graph.edge(parent, node, label)
            if not new:
                continue
            if node.kind in (IVR, QUEUE, CONFERENCE):
                _media_ways(graph, snap, node, plan, now, todo)
            elif node.kind == 'trunk':
                graph.edge(node, _end(graph, None, 'the far end answers')[0])
            elif plan.context:  # an announcement that leads somewhere
                todo.append((node, routing.after_reply(snap, plan.context, 'no_answer', now), 'played', 0))
            elif node.kind in ('voicemail', 'mailbox') and plan.destination == snap.media_service:
                graph.edge(node, _end(graph, 200, 'answered by the media service')[0])
            elif node.kind == 'announcement':
                graph.edge(node, _end(graph, 200, 'played, then the call ends')[0])
            else:
                graph.edge(node, _end(graph, None, 'the media server answers')[0])
            continue
        node, new = graph.node(('ring', plan.context), 'ring', _ring_label(snap, plan))
        graph.edge(parent, node, label)
        if not new:
            continue
        graph.edge(node, _end(graph, 200, 'answered')[0], 'answered')
        for outcome, words in RING_ENDS:
            words = words % plan.ring_time if '%s' in words else words
            todo.append((node, routing.after_reply(snap, plan.context, outcome, now), words, 0))
    return graph


def _internal_caller(tenant, target):
    """The SIP account an internal call to ``target`` is drawn from: one of another extension (a
    call to oneself is no flow anyone reviews), else the target's own, else None (no account)."""
    own = None
    for number in sorted(tenant.targets):
        other = tenant.targets[number]
        if other.kind == EXTENSION and other.accounts:
            if number != target:
                return callflow.Caller(tenant.name, username=other.accounts[0])
            own = own or callflow.Caller(tenant.name, username=other.accounts[0])
    return own


def tenant_flows(snap, state, now):
    """[(kind, key, title, Graph)] of a tenant: each of its numbers as a call from its trunk
    (anonymous), each group, IVR menu, queue, conference room and extension as a call from another
    extension; sorted by kind, then key.
    A number is drawn only when the tenant has a trunk to call from, an internal flow only when the
    tenant has a SIP account to call from."""
    tenant = snap.tenants[state.name]
    flows = []
    addresses = tenant.trunk['addresses'] if tenant.trunk else tenant.trunk_addresses
    if addresses:
        trunk = callflow.Caller(tenant.name, source=addresses[0])
        for key in sorted(state.objects(NUMBER)):
            flows.append((NUMBER, key, 'number %s from the trunk' % key, explore(snap, trunk, key, now)))
    for kind in (GROUP, IVR, QUEUE, CONFERENCE, EXTENSION):
        for key in sorted(state.objects(kind), key=lambda n: (len(n), n)):
            caller = _internal_caller(tenant, key)
            if caller is not None:
                title = '%s %s from %s' % (kind, key, caller.username)
                flows.append((kind, key, title, explore(snap, caller, key, now)))
    return flows


def file_name(kind, key):
    """The file name of a flow's picture (``number-+4930123456.svg``, ``group-200.svg``)."""
    return '%s-%s.svg' % (kind, ''.join(c if c.isalnum() or c in '+-_' else '_' for c in key))


def review_page(tenant_name, flows, pictures=False):
    """A Markdown page of a tenant's flows for review (a merge request renders its Mermaid blocks):
    [(kind, key, title, mermaid text)]; ``pictures`` links each flow's SVG (file_name) in the
    folder named after the tenant beside the page."""
    lines = ['# Call flows of %s' % tenant_name, '',
             'Every way a call can go, as the router decides it: rings with their ring times, forwards with '
             'their Diversion reasons, groups, voicemail and the final answer.', '']
    for kind, key, title, text in flows:
        lines += ['## %s' % title, '']
        if pictures:
            lines += ['![%s](%s/%s)' % (title, tenant_name, file_name(kind, key)), '']
        lines += ['```mermaid', text.rstrip('\n'), '```', '']
    return '\n'.join(lines)


def tenant_pictures(states, generation, tenant_name, form, now):
    """What tenant_info's call_flows returns: {'flows': [{kind, key, title, file, graph, mermaid, svg}],
    'markdown': the review page} of the forms ``form`` asks for (the page needs Mermaid). Drawn on
    the whole directory (``states``, txn.load_all()), so that a forward to another tenant's number
    is drawn on-net as the router routes it; with the PBX's media service deployed."""
    snap = callflow.build_snapshot(states, generation)
    flows, page = [], []
    for kind, key, title, graph in tenant_flows(snap, states[tenant_name], now):
        flow = dict(kind=kind, key=key, title=title, file=file_name(kind, key))
        flow.update(drawn(graph, form, '%s: %s' % (tenant_name, title)))
        flows.append(flow)
        if 'mermaid' in flow:
            page.append((kind, key, title, flow['mermaid']))
    result = {'flows': flows}
    if form in ('mermaid', 'both'):
        result['markdown'] = review_page(tenant_name, page, pictures=form == 'both')
    return result


# ------------------------------------------------------------------------------ Mermaid
_MERMAID_SHAPES = {'start': '(["%s"])', 'end': '(["%s"])', 'ring': '["%s"]', 'voicemail': '[/"%s"/]',
                   'mailbox': '[/"%s"/]', 'announcement': '[/"%s"/]', 'trunk': '[["%s"]]', 'feature': '{{"%s"}}',
                   IVR: '[/"%s"\\]', QUEUE: '[("%s")]', CONFERENCE: '(("%s"))', SCHEDULE: '{"%s"}'}


def _mermaid_text(text):
    return text.replace('"', '#quot;').replace('\n', ' ')


DIAGRAM_FORMATS = ('none', 'mermaid', 'svg', 'both')


def drawn(graph, form, title=None):
    """{'mermaid': text, 'svg': text} of the forms ``form`` (DIAGRAM_FORMATS) asks for, and the graph as data."""
    out = {'graph': graph.as_data()}
    if form in ('mermaid', 'both'):
        out['mermaid'] = mermaid(graph, title)
    if form in ('svg', 'both'):
        out['svg'] = svg(graph, title)
    return out


def mermaid(graph, title=None):
    """The graph as a Mermaid flowchart (top to bottom)."""
    lines = ['flowchart TD']
    if title:
        lines.insert(0, '---\ntitle: "%s"\n---' % _mermaid_text(title).replace('\\', '\\\\'))  # YAML front matter
    for node in graph.nodes:
        lines.append('    %s%s' % (node.id, _MERMAID_SHAPES[node.kind] % _mermaid_text(node.label)))
    for source, target, label in graph.edges:
        arrow = ' -->|"%s"| ' % _mermaid_text(label) if label else ' --> '
        lines.append('    %s%s%s' % (source.id, arrow, target.id))
    if graph.truncated:
        lines.append('    %%%% drawn up to %d decisions' % MAX_NODES)
    return '\n'.join(lines) + '\n'


# ------------------------------------------------------------------------------ Graphviz
_DOT_SHAPES = {'start': 'oval', 'end': 'oval', 'ring': 'box', 'voicemail': 'note', 'mailbox': 'note',
               'announcement': 'note', 'trunk': 'box3d', 'feature': 'hexagon', IVR: 'trapezium', QUEUE: 'cylinder',
               CONFERENCE: 'tab', SCHEDULE: 'diamond'}


def _dot_text(text):
    return text.replace('\\', '\\\\').replace('"', '\\"')


def dot(graph, title=None):
    """The graph as Graphviz DOT."""
    lines = ['digraph callflow {', '  rankdir=TB;', '  graph [fontname="Helvetica" fontsize=13];',
             '  node [fontname="Helvetica" fontsize=11];',
             '  edge [fontname="Helvetica" fontsize=10];']
    if title:
        lines.append('  labelloc="t"; label="%s";' % _dot_text(title))
    for node in graph.nodes:  # what rings on a line of its own
        text = _dot_text(node.label).replace(': ', ':\\n', 1) if node.kind == 'ring' else _dot_text(node.label)
        lines.append('  %s [shape=%s label="%s"];' % (node.id, _DOT_SHAPES[node.kind], text))
    for source, target, label in graph.edges:  # each way that leads there on a line of its own
        text = ' [label="%s"]' % _dot_text(label).replace(' / ', '\\n') if label else ''
        lines.append('  %s -> %s%s;' % (source.id, target.id, text))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def svg(graph, title=None):
    """The graph as SVG, drawn by Graphviz's ``dot`` (Debian package graphviz); EnvironmentProblem
    when it is not installed."""
    command = shutil.which('dot')
    if command is None:
        raise EnvironmentProblem('the dot command', 'call-flow pictures as SVG are drawn by Graphviz, which is not '
                                 'installed on this host', 'Install the package graphviz (apt-get install graphviz, '
                                 'dnf install graphviz), or ask for the Mermaid text only.')
    proc = subprocess.run([command, '-Tsvg'], input=dot(graph, title).encode('utf-8'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=DOT_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem('a working Graphviz', 'dot failed to draw the call flow: %s' % proc.stderr.decode('utf-8', 'replace'),
                                 'Check the graphviz installation.')
    return proc.stdout.decode('utf-8')
