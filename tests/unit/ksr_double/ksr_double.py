# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A faithful test double of Kamailio's ``KSR`` Python module (app_python3, Kamailio 5.6).

The double is built from api_list.json, the output of ``kamcmd app_python.api_list`` of a
real Kamailio rendered by roles/kamailio (see regenerate.py). It exposes exactly those
submodules and functions; anything else raises AttributeError with the real interpreter's
message (``module 'KSR.tm' has no attribute 'x'``). Every call is recorded; tests script
return values.

Argument checking follows what Kamailio 5.6.3 does (measured inside app_python3): a function
with parameters called with a wrong type or the wrong number of arguments raises
``SystemError("<built-in function NAME> returned a result with an exception set")`` whose
``__cause__`` is the TypeError; ``int`` parameters accept bool; functions without
parameters ignore extra arguments. (``KSR.x.modf`` is left out on purpose: see regenerate.py.)

    double = KSRDouble()
    double.pv["$rm"] = "INVITE"                  # what KSR.pv.get("$rm") returns
    double.returns["registrar.lookup"] = -1      # a value ...
    double.returns["tm.t_relay"] = lambda: -1    # ... or a callable taking the call's args
    with double.installed():                     # sys.modules["KSR"] = double.module
        router = load_the_kemi_script()
        router.ksr_request_route(None)
    assert double.called("sl.sl_send_reply") == [(404, "Not Found")]

Default return values when nothing is scripted: ``int`` functions return 1 (success),
``bool`` functions False, ``xval``/``none`` functions None. Built-in behaviour: the pv
functions read and write ``double.pv`` like the real ones (``get`` of an unset variable is
None, ``gete`` gives "", ``getw`` gives "<null>", ``getvn``/``getvs`` the default);
``KSR.is_<METHOD>()`` and ``KSR.is_method(m)`` compare with ``double.pv["$rm"]``; log
functions (``KSR.info`` ...) append (level, message) to ``double.logs``.
"""

import collections
import contextlib
import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_API_LIST = os.path.join(HERE, "api_list.json")
# The NAT lab's Kamailio (tests/sip/test_nat_media.py checks it against the live server): the
# defaults plus rtpengine, tls, websocket and xhttp, for tests of kemi/voxplane_media.py.
MEDIA_API_LIST = os.path.join(HERE, "api_list_media.json")

Call = collections.namedtuple("Call", "name args")

_LOG_FUNCTIONS = frozenset(("dbg", "err", "info", "warn", "notice", "crit"))
_DEFAULT_BY_RET = {"int": 1, "bool": False, "xval": None, "none": None}


class KSRDouble(object):
    """Builds the fake ``KSR`` module and keeps the calls, scripted returns and pv store."""

    def __init__(self, api_list=DEFAULT_API_LIST):
        with open(api_list) as handle:
            self.api = json.load(handle)
        self.calls = []
        self.returns = {}
        self.pv = {}
        self.logs = []
        self.module = self._build()

    # ------------------------------------------------------------------ test helpers
    def called(self, name):
        """Argument tuples of every call to ``name`` ("tm.t_relay", "info", ...), in order."""
        return [call.args for call in self.calls if call.name == name]

    def call_names(self):
        return [call.name for call in self.calls]

    def reset(self):
        self.calls[:] = []
        self.logs[:] = []

    @contextlib.contextmanager
    def installed(self):
        """Make ``import KSR`` return the double for the duration of the block."""
        previous = sys.modules.get("KSR")
        sys.modules["KSR"] = self.module
        try:
            yield self.module
        finally:
            if previous is None:
                sys.modules.pop("KSR", None)
            else:
                sys.modules["KSR"] = previous

    def functions(self):
        """Qualified names of every exported function ("tm.t_relay", "info", "x.modf")."""
        return sorted(_qualname(f["module"], f["name"]) for f in self.api["functions"])

    # ------------------------------------------------------------------ construction
    def _build(self):
        ksr = types.ModuleType("KSR")
        ksr.__version__ = 1  # as the real module: an int
        submodules = {}
        for spec in self.api["functions"]:
            module_name, name, params, ret = spec["module"], spec["name"], spec["params"], spec["ret"]
            if module_name:
                if module_name not in submodules:
                    submodules[module_name] = types.ModuleType("KSR." + module_name)
                    setattr(ksr, module_name, submodules[module_name])
                target = submodules[module_name]
            else:
                target = ksr
            setattr(target, name, self._function(module_name, name, params, ret))
        return ksr

    def _function(self, module_name, name, params, ret):
        qualname = _qualname(module_name, name)
        double = self

        def function(*args):
            if params:
                _check_args(name, params, args)
            else:
                args = ()  # the real functions without parameters ignore extra arguments
            double.calls.append(Call(qualname, args))
            if qualname in double.returns:
                scripted = double.returns[qualname]
                return scripted(*args) if callable(scripted) else scripted
            return double._builtin(module_name, name, ret, args)

        function.__name__ = name
        function.__qualname__ = qualname
        function.__doc__ = "KSR.%s(%s) -> %s" % (qualname, ", ".join(params), ret)
        return function

    def _builtin(self, module_name, name, ret, args):
        if module_name == "" and name in _LOG_FUNCTIONS:
            self.logs.append((name, args[0]))
            return None
        if module_name == "" and name == "log":
            self.logs.append((args[0], args[1]))
            return None
        if module_name == "" and name == "is_method":
            return self.pv.get("$rm") == args[0]
        if module_name == "" and name.startswith("is_") and name[3:].isupper():
            return self.pv.get("$rm") == name[3:]
        if module_name == "pv":
            return self._pv(name, args)
        return _DEFAULT_BY_RET.get(ret)

    def _pv(self, name, args):
        value = self.pv.get(args[0])
        if name == "get":
            return value
        if name == "gete":
            return "" if value is None else value
        if name == "getw":
            return "<null>" if value is None else value
        if name in ("getvn", "getvs"):
            return args[1] if value is None else value
        if name == "is_null":
            return value is None
        if name in ("sets", "seti"):
            self.pv[args[0]] = args[1]
            return 1
        if name == "unset":
            self.pv.pop(args[0], None)
            return 1
        return None


def _qualname(module_name, name):
    return "%s.%s" % (module_name, name) if module_name else name


def _check_args(name, params, args):
    """Raise what app_python3 raises: SystemError caused by PyArg_ParseTuple's TypeError."""
    fmt = "kemi-param-" + "".join("s" if kind == "str" else "n" for kind in params)
    error = None
    if len(args) != len(params):
        error = TypeError("%s() takes exactly %d argument%s (%d given)"
                          % (fmt, len(params), "" if len(params) == 1 else "s", len(args)))
    else:
        for index, (kind, value) in enumerate(zip(params, args)):
            if kind == "str" and not isinstance(value, str):
                error = TypeError("%s() argument %d must be str, not %s" % (fmt, index + 1, type(value).__name__))
            elif kind == "int" and not isinstance(value, int):
                error = TypeError("'%s' object cannot be interpreted as an integer" % type(value).__name__)
            if error is not None:
                break
    if error is not None:
        raise SystemError("<built-in function %s> returned a result with an exception set" % name) from error
