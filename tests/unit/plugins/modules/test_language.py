# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The language of the prompts: the tenant's (de by default) and an extension's own (none: the tenant's),
through the modules, tenant documents and the CSV layout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from module_helpers import Pbx

TENANT = dict(name='acme', sip_domain='acme.pbx.example.com', licences=dict(seats=dict(smart=10)))


@pytest.fixture
def pbx(tmp_path):
    pbx = Pbx(tmp_path / 'directory.db')
    pbx.ok('tenant', **TENANT)
    pbx.ok('extension', tenant='acme', internal_number='210', name='Anna Schmidt')
    return pbx


def test_the_tenant_speaks_german_and_an_extension_its_tenants_language_by_default(pbx):
    assert pbx.ok('tenant_info', tenant='acme')['tenant']['language'] == 'de'
    assert pbx.ok('extension_info', tenant='acme', internal_number='210')['extensions'][0]['language'] is None


def test_set_kept_when_left_out_and_cleared(pbx):
    assert pbx.ok('tenant', name='acme', language='en')['tenant']['language'] == 'en'
    assert pbx.ok('tenant', name='acme', display_name='ACME')['tenant']['language'] == 'en'
    assert pbx.ok('extension', tenant='acme', internal_number='210', language='de')['extension']['language'] == 'de'
    result = pbx.ok('extension', tenant='acme', internal_number='210', ring_time=25)
    assert result['extension']['language'] == 'de'
    result = pbx.ok('extension', tenant='acme', internal_number='210', language='')
    assert result['changed'] and result['extension']['language'] is None


def test_a_language_nobody_speaks_is_refused_naming_object_field_and_rule(pbx):
    snapshot = pbx.snapshot()
    result = pbx.run('extension', tenant='acme', internal_number='210', language='fr')
    assert result['msg'] == "extension 210 (tenant acme): language: 'fr' is not one of de, en [choice]"
    result = pbx.run('tenant', name='acme', language='fr')
    assert result['violations'][0]['field'] == 'language' and result['violations'][0]['rule'] == 'choices'
    assert pbx.snapshot() == snapshot


def test_check_mode_and_the_diff(pbx):
    snapshot = pbx.snapshot()
    result = pbx.ok('extension', tenant='acme', internal_number='210', language='en', check=True, diff=True)
    assert result['changed'] and result['diff']['before']['language'] is None and result['diff']['after']['language'] == 'en'
    assert pbx.snapshot() == snapshot
    result = pbx.ok('tenant_config', config={'tenant': {'name': 'acme', 'language': 'en'}}, check=True, diff=True)
    assert '~ tenant acme\n    language: "de" -> "en"\n' in result['diff']['prepared']
    assert pbx.snapshot() == snapshot


def test_tenant_documents_and_the_csv_layout_carry_it(pbx, tmp_path):
    pbx.ok('extension', tenant='acme', internal_number='210', language='en')
    document = tmp_path / 'acme.yml'
    pbx.ok('tenant_info', tenant='acme', format='yaml', dest=str(document))
    assert 'language: en' in document.read_text() and 'language: de' in document.read_text()
    assert pbx.ok('tenant_config', src=str(document), state='overridden')['changed'] is False
    assert pbx.ok('tenant_config', src=str(document), state='validated')['changed'] is False
    folder = tmp_path / 'csv'
    pbx.ok('tenant_info', tenant='acme', format='csv', dest=str(folder))
    rows = (folder / 'extensions.csv').read_text(encoding='utf-8').splitlines()
    header = rows[0].split(';')
    assert 'language' in header and rows[1].split(';')[header.index('language')] == 'en'
    assert pbx.ok('tenant_config', tenant='acme', src=str(folder / 'extensions.csv'))['changed'] is False
    csv = tmp_path / 'language.csv'
    csv.write_text('internal_number;language\n210;\n', encoding='utf-8')     # an empty cell: the tenant's again
    result = pbx.ok('tenant_config', tenant='acme', src=str(csv))
    assert result['changed'] and pbx.ok('extension_info', tenant='acme')['extensions'][0]['language'] is None
    csv.write_text('internal_number;language\n210;fr\n', encoding='utf-8')
    result = pbx.run('tenant_config', tenant='acme', src=str(csv))
    assert result['msg'] == "language.csv row 2 (extension 210 (tenant acme)): language: 'fr' is not one of de, en [choice]"
