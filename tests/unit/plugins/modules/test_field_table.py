# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One place per field: the modules' argument specs, the tenant document and the CSV layouts read the
sub-fields of structured fields and the CSV columns from the model's field table, and the modules'
choices are the rules constants."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.voxplane.pbx.plugins.module_utils import model, rules, tenant_csv, tenant_document
from ansible_collections.voxplane.pbx.plugins.module_utils.model import CONFERENCE, EXTENSION, QUEUE, SCHEDULE, TENANT
from ansible_collections.voxplane.pbx.plugins.modules import conference, extension, group, number, queue, schedule, tenant

MODULE_OF = {TENANT: tenant, EXTENSION: extension, QUEUE: queue, SCHEDULE: schedule}


def names(kind, field):
    return [sub.name for sub in model.sub_fields(kind, field)]


@pytest.mark.parametrize('kind, field', [(kind, field) for kind, field in sorted(model.SUB_FIELDS) if kind in MODULE_OF])
def test_a_modules_suboptions_are_the_field_tables(kind, field):
    options = MODULE_OF[kind].ARGUMENT_SPEC[field]['options']
    assert list(options) == names(kind, field)
    for sub in model.sub_fields(kind, field):
        assert bool(options[sub.name].get('no_log')) == sub.secret
        assert bool(options[sub.name].get('required')) == sub.required
        assert options[sub.name].get('choices') == (list(sub.choices) if sub.choices else None)


def test_the_secret_fields_are_the_tables_secret_sub_fields():
    assert tenant_document.SECRET_FIELDS == model.SECRET_FIELDS == (
        'ha1', 'moderator_pin', 'moderator_pin_hash', 'password', 'pin', 'pin_hash')
    secrets = set(name for field in ('sip_accounts', 'voicemail')
                  for name, option in extension.ARGUMENT_SPEC[field]['options'].items() if option.get('no_log'))
    secrets |= set(sub.name for sub in model.SECRET_OPTIONS[CONFERENCE])  # a conference room's PINs
    assert secrets == set(model.SECRET_FIELDS)
    assert set(name for name, option in conference.ARGUMENT_SPEC.items() if option.get('no_log')) == \
        set(sub.name for sub in model.SECRET_OPTIONS[CONFERENCE])


@pytest.mark.parametrize('kind, field', sorted(model.SUB_FIELDS))
def test_the_tenant_document_knows_the_sub_fields_of_the_table(kind, field):
    section = dict((k, s) for s, k in tenant_document.SECTIONS).get(kind)
    item = {'colour': 'blue'}
    obj = {model.KEY_FIELD[kind]: 'acme' if kind == TENANT else '00:15:65:12:34:56' if section == 'devices' else '10',
           field: [item] if isinstance(model.with_defaults(kind, {}).get(field), list) else item}
    data = {'tenant': obj} if kind == TENANT else {'tenant': {'name': 'acme'}, section: [obj]}
    document = tenant_document.parse_document(data)
    unsupported = [v for v in document.violations if v.rule == 'unsupported']
    assert len(unsupported) == 1 and unsupported[0].field.endswith('.colour'), document.violations
    assert unsupported[0].message == 'is not a field of %s (known: %s)' % (field, ', '.join(names(kind, field)))


def test_the_extensions_csv_columns_are_the_tables():
    assert [c[0] for c in tenant_csv.EXTENSION_COLUMNS] == list(model.CSV_COLUMNS[EXTENSION])
    assert dict(tenant_csv.EXTENSION_COLUMNS)['ring_time'] == 'int'
    assert dict(tenant_csv.EXTENSION_COLUMNS)['assign_all_external_numbers'] == 'bool'
    assert dict(tenant_csv.EXTENSION_COLUMNS)['external_numbers'] == 'list'
    assert [c[0] for c in tenant_csv.VOICEMAIL_COLUMNS] == ['voicemail_%s' % n for n in names(EXTENSION, 'voicemail')]
    assert list(tenant_csv.ACCOUNT_FIELDS) == names(EXTENSION, 'sip_accounts')
    for field in names(EXTENSION, 'sip_accounts'):
        assert tenant_csv._ACCOUNT_COLUMN.match('account2_%s' % field)
    assert not tenant_csv._ACCOUNT_COLUMN.match('account2_colour')


@pytest.mark.parametrize('module, option, constant', [
    (extension, 'role', rules.ROLES), (extension, 'seat', rules.SEAT_PACKAGES), (group, 'strategy', rules.GROUP_STRATEGIES),
    (number, 'status', rules.NUMBER_STATUSES), (tenant, 'media_relay', rules.MEDIA_RELAY_MODES),
    (queue, 'strategy', rules.QUEUE_STRATEGIES),
])
def test_module_choices_are_the_rules_constants(module, option, constant):
    assert module.ARGUMENT_SPEC[option]['choices'] == list(constant)
    assert extension.ARGUMENT_SPEC['sip_accounts']['options']['kind']['choices'] == list(rules.SIP_ACCOUNT_KINDS)
