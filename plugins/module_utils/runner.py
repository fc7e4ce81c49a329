# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side of every module: options -> request -> one transaction -> result.

The only file of module_utils that imports Ansible. A module declares its
options and says which object it manages; everything else (check mode that
runs the same code and rolls back, the diff, error reporting, the result
shape) happens here, once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.voxplane.pbx.plugins.module_utils import model
from ansible_collections.voxplane.pbx.plugins.module_utils.errors import DirectoryError, RuleError, ValidationFailed, Violation
from ansible_collections.voxplane.pbx.plugins.module_utils.kamailio_rpc import DEFAULT_RPC_FIFO, DEFAULT_TIMEOUT, FifoRpc
from ansible_collections.voxplane.pbx.plugins.module_utils.reconcile import ABSENT, field_violations, reconcile
from ansible_collections.voxplane.pbx.plugins.module_utils.store import DEFAULT_LOCATION, Directory, dialect_for

DIRECTORY_ARGS = dict(
    directory=dict(type='str', default=DEFAULT_LOCATION, fallback=(env_fallback, ['VOXPLANE_DIRECTORY'])),
    directory_password=dict(type='str', no_log=True, fallback=(env_fallback, ['VOXPLANE_DIRECTORY_PASSWORD'])),
    create_parents=dict(type='bool', default=False),
)

# Where the running Kamailio answers RPC (registration status, remote actions).
KAMAILIO_RPC_ARGS = dict(
    kamailio_rpc=dict(type='str', default=DEFAULT_RPC_FIFO, fallback=(env_fallback, ['VOXPLANE_KAMAILIO_RPC'])),
    kamailio_rpc_timeout=dict(type='float', default=DEFAULT_TIMEOUT),
)

# Options that steer the module rather than describe the object.
_CONTROL_OPTIONS = ('directory', 'directory_password', 'create_parents', 'state', 'tenant')

# Ansible's argument errors -> the rule they broke.
_ARGUMENT_RULES = {
    'ArgumentTypeError': 'type', 'ElementError': 'type', 'SubParameterTypeError': 'type',
    'ArgumentValueError': 'choices', 'RequiredError': 'required', 'UnsupportedError': 'unsupported',
    'MutuallyExclusiveError': 'mutually_exclusive', 'AliasError': 'alias', 'NoLogError': 'no_log',
}
# Where Ansible's messages name the option, and the options around it ('a -> b').
_ARGUMENT_FIELD = (
    re.compile(r"^argument '(?P<name>[^']+)' is of type .*?(?: found in '(?P<context>[^']+)'\.)? and we were unable"),
    re.compile(r"^Elements value for option '(?P<name>[^']+)'(?: found in '(?P<context>[^']+)')? is of type"),
    re.compile(r"^value of (?P<name>\S+) must be one (?:or more )?of: .*?(?: found in (?P<context>[^,]+))?$"),
    re.compile(r"^missing required arguments: (?P<name>.+?)(?: found in (?P<context>.+))?$"),
    re.compile(r"^value of '(?P<name>[^']+)' must be of type dict or list of dicts"),
    re.compile(r"^(?P<name>.+?)\. Supported parameters include"),
)


def suboptions(kind, field):
    """The Ansible options of a structured field (``sip_accounts``, ``voicemail``, ...): its sub-fields as
    model.SUB_FIELDS spells them, secrets no_log."""
    options = {}
    for sub in model.sub_fields(kind, field):
        option = dict(type=sub.type)
        if sub.type == 'list':
            option['elements'] = 'str'
        if sub.required:
            option['required'] = True
        if sub.secret:
            option['no_log'] = True
        if sub.choices:
            option['choices'] = list(sub.choices)
        if sub.default is not None:
            option['default'] = sub.default
        options[sub.name] = option
    return options


def request_from_params(params, key_field):
    """The object request: every option the user gave, left-out ones dropped."""
    return dict((k, v) for k, v in params.items()
                if k not in _CONTROL_OPTIONS and k != key_field and v is not None)


def _option_value(params, spec, option):
    """The raw text of an option (or of one of its aliases), None if it is not a plain value."""
    for name in [option] + list(spec.get(option, {}).get('aliases', [])):
        value = params.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _subject(spec, params, kind, key_option):
    """How an argument error names its object, as model.describe names it in a rule violation."""
    if kind is None:
        return 'directory %s' % params.get('directory')
    key = _option_value(params, spec, key_option) if key_option else None
    tenant = _option_value(params, spec, 'tenant') if kind != model.TENANT else None
    if key is None:
        return '%s (tenant %s)' % (kind, tenant) if tenant else kind
    return model.describe(kind, key, tenant)


def argument_violations(subject, errors):
    """Ansible's argument errors as Violations of ``subject``: object, field, rule, message."""
    violations = []
    for error in errors:
        message = error.error_message
        rule = _ARGUMENT_RULES.get(type(error).__name__, 'argument')
        fields = ['options']
        for pattern in _ARGUMENT_FIELD:
            match = pattern.match(message)
            if match:
                context = [c.strip() for c in (match.groupdict().get('context') or '').split('->') if c.strip()]
                fields = ['.'.join(context + [name.strip()]) for name in match.group('name').split(',')]
                break
        violations.extend(Violation(subject, field, rule, message) for field in fields)
    return violations


class _Module(AnsibleModule):
    """AnsibleModule whose argument errors (a type that does not convert, a value outside the
    choices, a missing required option) name the object like every rule violation:
    ``extension 10 (tenant acme): ring_time: argument 'ring_time' is of type ... [type]``."""

    def __init__(self, argument_spec, kind, key_option, secrets_of=None, judge=None, summarised=(), **kwargs):
        self._subject_of = lambda params: _subject(argument_spec, params, kind, key_option)
        self._secrets_of = secrets_of
        self._judge = judge
        self._summarised = summarised
        self._validating = True
        super(_Module, self).__init__(argument_spec=argument_spec, **kwargs)
        self._validating = False

    def _log_invocation(self):
        # Secrets inside free-form options (a tenant document's passwords) are masked like no_log options,
        # before the invocation is logged and in everything the module returns.
        self._unmask_short_secrets()
        if self._secrets_of is not None:
            self.no_log_values.update(self._secrets_of(self.params))
        kept = self.params
        self.params = self._invocation_args()  # a WAV file's bytes are logged by their size only
        try:
            super(_Module, self)._log_invocation()
        finally:
            self.params = kept

    def _invocation_args(self):
        """The options as logged and echoed: those in ``summarised`` by their size only."""
        if not self._summarised:
            return self.params
        return dict((k, summary(v) if k in self._summarised and v is not None else v) for k, v in self.params.items())

    def exit_json(self, **kwargs):
        if self._summarised and 'invocation' not in kwargs:
            kwargs['invocation'] = {'module_args': self._invocation_args()}
        super(_Module, self).exit_json(**kwargs)

    def _unmask_short_secrets(self):
        """A no_log value too short for its rule (model.too_short_to_mask) is taken out of Ansible's masking,
        which would garble every message, and replaced by the stand-in '*', which its rule refuses just the
        same: the task fails naming the field, and neither the value nor its length appears anywhere."""
        def walk(spec, params):
            for name, option in spec.items():
                value = params.get(name) if isinstance(params, dict) else None
                if option.get('no_log') and model.too_short_to_mask(name, value):
                    self.no_log_values.discard(value)
                    params[name] = '*'
                elif option.get('options') and isinstance(value, dict):
                    walk(option['options'], value)
                elif option.get('options') and isinstance(value, list):
                    for item in value:
                        walk(option['options'], item)
        walk(self.argument_spec, self.params)

    def fail_json(self, msg, **kwargs):  # pylint: disable=arguments-differ
        result = getattr(self, 'validation_result', None)
        if getattr(self, '_validating', False) and result is not None and result.errors.errors:
            # AnsibleModule.__init__ refuses the arguments: report every error, naming the object.
            self._validating = False
            self._unmask_short_secrets()
            errors = [e for e in result.errors.errors
                      if not (type(e).__name__ == 'UnsupportedError' and self._ignore_unknown_opts)]
            if errors:
                violations = argument_violations(self._subject_of(self.params), errors)
                bad = set(re.split(r'[.\[]', v.field)[0] for v in violations)
                if self._judge is not None and 'state' not in bad:
                    # The rules on every option Ansible did accept, so that one answer holds all of it.
                    accepted = dict((k, v) for k, v in self.params.items() if k in self.argument_spec and k not in bad)
                    violations += [v for v in self._judge(self, accepted) if re.split(r'[.\[]', v.field)[0] not in bad]
                fail(self, ValidationFailed(violations))
        if self._summarised and 'invocation' not in kwargs and isinstance(getattr(self, 'params', None), dict):
            kwargs['invocation'] = {'module_args': self._invocation_args()}
        super(_Module, self).fail_json(msg, **kwargs)


def summary(value):
    """How a bulky option (a WAV file's bytes in base64) is logged and echoed: its size, not its text."""
    return '(%d characters, not shown)' % len(value) if isinstance(value, str) else '(not shown)'


def new_module(argument_spec, kind=None, key_option=None, secrets_of=None, judge=None, summarised=()):
    """The AnsibleModule of every module of the collection. ``kind`` and ``key_option`` say which
    object the options describe (none: the directory itself), for argument error messages;
    ``secrets_of(params)`` returns secret values inside free-form options, masked in logs and results;
    ``judge(module, params)``, when Ansible refuses some options, returns the rule violations of the
    options it accepted, reported with its own; ``summarised`` names options that are logged and echoed
    by their size only (a WAV file's bytes). A Python that cannot hold the directory (no sqlite3 for a
    file, no PostgreSQL driver for a database) fails here, named as such.

    ``directory_password`` is handed to libpq as ``PGPASSWORD`` for the task's process (every
    transaction of the task connects with it; a password in the location itself comes first)."""
    module = _Module(argument_spec, kind, key_option, secrets_of=secrets_of, judge=judge, summarised=summarised,
                     supports_check_mode=True)
    if module.params.get('directory_password'):
        os.environ['PGPASSWORD'] = module.params['directory_password']
    try:
        dialect_for(module.params.get('directory') or DEFAULT_LOCATION).require_driver()
    except DirectoryError as e:
        fail(module, e)
    return module


def open_directory(module, for_write):
    """The directory of the task. A check-mode run against a directory that
    does not exist yet works on an empty in-memory one, so no file appears;
    it fails where the real run would (a missing folder without create_parents)."""
    directory = Directory(module.params['directory'])
    if not directory.exists():
        if not for_write:
            return None
        if module.check_mode:
            try:
                directory.check_location(module.params['create_parents'])
            except DirectoryError as e:
                fail(module, e)
            return Directory(':memory:')
    return directory


def fail(module, error, **extra):
    if isinstance(error, ValidationFailed):
        module.fail_json(msg=error.summary(), violations=[v.as_dict() for v in error.violations], **extra)
    if isinstance(error, RuleError):
        module.fail_json(msg='%s: %s [%s]' % (error.field, error.message, error.rule), **extra)
    module.fail_json(msg=str(error), **extra)


def in_transaction(module, work):
    """``work(txn)`` in one write transaction; returns what it returns. In check mode the same
    code runs and the transaction is rolled back; a DirectoryError fails the task."""
    directory = open_directory(module, for_write=True)
    try:
        with directory.transaction(write=True, create_parents=module.params['create_parents']) as txn:
            result = work(txn)
            if module.check_mode:
                txn.rollback_at_exit()
        return result
    except DirectoryError as e:
        fail(module, e)


def apply(module, tenant_name, tenant_request=None, children=None, purge=(), audio=None):
    """Run one reconcile in one transaction; returns the reconcile Result."""
    return in_transaction(module, lambda txn: reconcile(txn, tenant_name, tenant_request, children, purge, audio=audio))


def run_object_module(kind, argument_spec, prepare=None, audio=None, summarised=()):
    """main() of a single-object module (tenant, number, extension, device, group, announcement).
    ``prepare(module, request)``, when given, may add fields to the request that the module makes
    itself (a new activation code's hash) and returns extra result values.
    ``audio(params, request)``, when given, turns the options an object's audio comes from (an
    announcement's WAV file) into its fields: it sets them in the request, takes those options out of
    it, and returns the audio to keep, {SHA-256: (WAV bytes, duration in ms)}, kept in the task's
    transaction (reconcile's ``audio``); a RuleError it raises is reported together with every other
    violation of the options. ``summarised`` options are logged and echoed by their size only."""
    spec = dict(argument_spec)
    spec.update(DIRECTORY_ARGS)
    spec['state'] = dict(type='str', default='present', choices=['present', 'absent'])
    key_field = model.KEY_FIELD[kind]
    module = new_module(spec, kind, key_field, judge=lambda _module, params: _rule_violations(kind, params, audio),
                        summarised=summarised)
    params = module.params
    request = ABSENT if params['state'] == 'absent' else request_from_params(params, key_field)
    extra = prepare(module, request) if prepare is not None and request is not ABSENT else {}
    kept = {}
    if audio is not None and request is not ABSENT:
        try:
            kept = audio(params, request)
        except RuleError:
            fail(module, ValidationFailed(_rule_violations(kind, params, audio)))
    if request is ABSENT and not Directory(params['directory']).exists():
        module.exit_json(changed=False, diff=[], changes=[], **{kind: {}})
    if kind == model.TENANT:
        tenant_name = normalised(module, model.TENANT, params['name'], request=request)
        result = apply(module, tenant_name, tenant_request=request)
        key = tenant_name
    else:
        tenant_name = normalised(module, model.TENANT, params['tenant'], field='tenant')
        result = apply(module, tenant_name, children={kind: {params[key_field]: request}}, audio=kept)
        key = next((c.key for c in result.changes), None)
        if key is None:
            try:
                key = model.normalise_key(kind, params[key_field], result.state.tenant)
            except RuleError:
                key = params[key_field]  # absent from a tenant that does not exist
    for warning in result.warnings:  # accepted, but the user should know (a number to create next)
        module.warn(str(warning))
    obj = result.state.get(kind, key)
    module.exit_json(
        changed=result.changed,
        diff=result.diffs()[0] if len(result.changes) == 1 else result.diffs(),
        changes=[c.summary(tenant_name) for c in result.changes],
        **dict(extra, **{kind: model.public(kind, obj) or {}})
    )


# What judges the other options of a task whose recording was refused takes as its audio.
_STAND_IN_AUDIO = '0' * 64


def _rule_violations(kind, params, audio=None):
    """The rule and integrity violations of an object module's options (those Ansible accepted), found by
    the same reconcile in a transaction that is rolled back; [] when they cannot be judged (no tenant or
    key, a removal, a storage problem). ``audio``: run_object_module's; what it refuses comes first, and
    the audio it could not make is then not reported missing."""
    key_field = model.KEY_FIELD[kind]
    tenant_option = 'name' if kind == model.TENANT else 'tenant'
    if params.get('state', 'present') != 'present' or not params.get(tenant_option) or not params.get(key_field):
        return []
    request = request_from_params(params, key_field)
    violations, kept = [], {}
    if audio is not None:
        try:
            kept = audio(params, request)
        except RuleError as e:
            violations.append(e.at(_subject({}, params, kind, key_field)))
            # The rest is judged with a stand-in for the audio that could not be made.
            request.update(audio=_STAND_IN_AUDIO, duration_ms=request.get('duration_ms') or 1)
            kept = {_STAND_IN_AUDIO: (b'', request['duration_ms'])}
    try:
        tenant_name = model.normalise_key(model.TENANT, params[tenant_option])
    except RuleError as e:  # as normalised() says it
        name = params[tenant_option]
        return [RuleError(tenant_option, e.rule, e.message).at(model.describe(model.TENANT, name))] + violations + (
            field_violations(kind, name, name, request, None) if kind == model.TENANT else [])
    try:
        directory = Directory(params.get('directory') or DEFAULT_LOCATION)
        if not directory.exists():
            directory = Directory(':memory:')
        with directory.transaction(write=True) as txn:
            txn.rollback_at_exit()
            if kind == model.TENANT:
                reconcile(txn, tenant_name, tenant_request=request)
            else:
                reconcile(txn, tenant_name, children={kind: {params[key_field]: request}}, audio=kept)
    except ValidationFailed as e:
        return violations + [v for v in e.violations if not (violations and v.field in ('audio', 'duration_ms'))]
    except (DirectoryError, RuleError):
        pass
    return violations


def normalised(module, kind, key, field=None, tenant=None, request=None):
    """The canonical key, or the task fails naming it (and, given the ``request`` of a tenant, every
    field rule the request breaks as well)."""
    try:
        return model.normalise_key(kind, key, tenant)
    except RuleError as e:
        if field:
            e = RuleError(field, e.rule, e.message)
        more = field_violations(kind, key, key, request, None) if kind == model.TENANT else []
        fail(module, ValidationFailed([e.at(model.describe(kind, key))] + more))


def read_tenant(module, tenant_name, also=None):
    """The tenant's state for an *_info module, or None when the directory
    or the tenant does not exist. Never creates or migrates anything.
    ``also(txn, state)``, when given, reads more in the same transaction (when the tenant exists);
    what it returns comes third."""
    directory = open_directory(module, for_write=False)
    if directory is None:
        return (None, None, None) if also is not None else (None, None)
    try:
        with directory.transaction(write=False, create=False) as txn:
            state = txn.load_tenant(tenant_name)
            if also is None:
                return state, txn.generation()
            return state, txn.generation(), also(txn, state) if state.tenant is not None else None
    except DirectoryError as e:
        fail(module, e)


def info_argument_spec(**extra):
    spec = dict(tenant=dict(type='str', required=True))
    spec.update(extra)
    spec.update(DIRECTORY_ARGS)
    return spec


def kamailio_rpc(module):
    """The RPC client of the running Kamailio the task names (kamailio_rpc, kamailio_rpc_timeout)."""
    return FifoRpc(module.params['kamailio_rpc'], module.params['kamailio_rpc_timeout'])


def run_child_info_module(kind, registrations=None, also=None):
    """main() of number_info, extension_info, device_info, group_info and announcement_info:
    one object by its key, or all of the tenant's objects of that kind. With ``registrations``
    (a function (state, keys, rpc) -> list) the module takes the option ``registration`` and,
    when it is true, also returns the registration status read from the running Kamailio.
    ``also`` ({result key: function (txn, state, keys) -> value}) adds what is read beside the objects
    in the same transaction (extension_info's mailbox counts); each key is [] when nothing matched."""
    key_field = model.KEY_FIELD[kind]
    extra = {key_field: dict(type='str')}
    if registrations is not None:
        extra['registration'] = dict(type='bool', default=False)
        extra.update(KAMAILIO_RPC_ARGS)
    module = new_module(info_argument_spec(**extra), kind, key_field)
    tenant_name = normalised(module, model.TENANT, module.params['tenant'], field='tenant')
    key = module.params[key_field]

    def read_also(txn, state):
        keys = [normalised(module, kind, key, tenant=state.tenant)] if key is not None else None
        return dict((name, read(txn, state, keys)) for name, read in (also or {}).items())
    state, _generation, besides = read_tenant(module, tenant_name, also=read_also)
    plural = model.PLURAL[kind]
    wanted = registrations is not None and module.params['registration']
    extra = {'registrations': []} if wanted else {}
    extra.update(besides or dict((name, []) for name in also or {}))
    if state is None or state.tenant is None:
        module.exit_json(changed=False, exists=False, **dict(extra, **{plural: []}))
    objects = state.objects(kind)
    if key is not None:
        key = normalised(module, kind, key, tenant=state.tenant)
        objects = dict((k, v) for k, v in objects.items() if k == key)
    if wanted:
        try:
            extra['registrations'] = registrations(state, sorted(objects), kamailio_rpc(module))
        except DirectoryError as e:
            fail(module, e)
    module.exit_json(changed=False, exists=bool(objects),
                     **dict(extra, **{plural: [model.public(kind, objects[k]) for k in sorted(objects)]}))
