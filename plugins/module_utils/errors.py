# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the directory core.

Pure Python (no Ansible import): the KEMI router imports this package too.
Every message names the object, the field and the rule, so that a failed
task or a rejected request says exactly what to fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys


class DirectoryError(Exception):
    """Base class for every error the directory core raises."""


class RuleError(DirectoryError):
    """One value broke one rule. Raised by the field rules in rules.py.

    The caller adds the object it was validating (see Violation).
    """

    def __init__(self, field, rule, message):
        super(RuleError, self).__init__(message)
        self.field = field
        self.rule = rule
        self.message = message

    def at(self, obj):
        return Violation(obj, self.field, self.rule, self.message)


class Violation(object):
    """A broken rule on a named object: ``extension 100 (tenant acme): seat: ...``."""

    __slots__ = ('obj', 'field', 'rule', 'message')

    def __init__(self, obj, field, rule, message):
        self.obj = obj
        self.field = field
        self.rule = rule
        self.message = message

    def __str__(self):
        return '%s: %s: %s [%s]' % (self.obj, self.field, self.message, self.rule)

    def as_dict(self):
        return {'object': self.obj, 'field': self.field, 'rule': self.rule, 'message': self.message}

    def __repr__(self):
        return 'Violation(%r)' % str(self)


class ValidationFailed(DirectoryError):
    """The requested state breaks one or more rules; nothing was written."""

    def __init__(self, violations):
        self.violations = list(violations)
        super(ValidationFailed, self).__init__(self.summary())

    def summary(self):
        lines = [str(v) for v in self.violations]
        if len(lines) == 1:
            return lines[0]
        return '%d rule violations:\n- %s' % (len(lines), '\n- '.join(lines))


class StorageError(DirectoryError):
    """The directory's storage failed or is not a directory at all.

    The message names the location and says why, with the operating system's
    reason where there is one: ``directory /x/y.db: cannot write: the folder /x
    is read-only (Permission denied)``. ``reason`` is the part after the location.
    """

    def __init__(self, location, reason):
        self.location = location
        self.reason = reason
        super(StorageError, self).__init__('directory %s: %s' % (location, reason))


class EnvironmentProblem(DirectoryError):
    """The host's Python lacks something the directory core needs (a module, data files).

    Not a fault of the input: the message names what is missing, where it was looked for,
    and what to install, so that nobody hunts for a typo in a value that is fine.
    """

    def __init__(self, missing, reason, remedy):
        self.missing = missing
        self.reason = reason
        self.remedy = remedy
        super(EnvironmentProblem, self).__init__('%s is missing on this host: %s. %s' % (missing, reason, remedy))


def this_python():
    """The Python that runs this code, as an EnvironmentProblem names it."""
    return 'Python %d.%d (%s)' % (sys.version_info[0], sys.version_info[1], sys.executable)


class SchemaError(StorageError):
    """The directory database has a schema this code cannot work with: a storage error like
    the others, naming the location (``directory /x/y.db: schema version 9 is newer ...``)."""
