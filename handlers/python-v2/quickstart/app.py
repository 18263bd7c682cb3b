# app.py: a strict handler for {"level": ..., "port": ...} (contract 0.2)
import json
import json.scanner
import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import Failure, Plan_InPlace, Plan_Restart, Prepared, RestartReason, SupportLevel

LEVELS = ("trace", "debug", "info", "warn", "error")
DEFAULTS = {"level": "info", "port": 8080}
decoder = json.JSONDecoder()  # pure-Python scanner: deep nesting raises RecursionError, not a trap
decoder.scan_once = json.scanner.py_make_scanner(decoder)

def refuse(message, field=None):
    return Err(Failure(message=message, field=field, transient=False))

def check(text):  # -> the effective configuration (defaults filled in), or raises a refusal
    try:
        given = decoder.decode(text)
    except (ValueError, RecursionError) as e:
        raise refuse(f"invalid JSON: {e}")
    if not isinstance(given, dict):
        raise refuse("configuration must be a JSON object")
    for key in given:
        if key not in DEFAULTS:
            raise refuse(f"unknown field {json.dumps(key)}", "/" + key.replace("~", "~0").replace("/", "~1"))
    config = {**DEFAULTS, **given}
    if config["level"] not in LEVELS:  # refuses null and 42 too
        raise refuse(f"level must be one of {', '.join(LEVELS)}", "/level")
    if type(config["port"]) is not int or not 0 < config["port"] < 65536:
        raise refuse("port must be an integer from 1 to 65535", "/port")
    return config

prepared = None  # (text, effective configuration) of the last prepare: not in force

class WitWorld(wit_world.WitWorld):
    def support_level(self):
        return SupportLevel.PARTIAL  # level changes in place, port needs a restart

    def prepare(self, old_config, new_config):  # no effect: may be a dry run
        global prepared
        new = check(new_config)
        prepared = (new_config, new)
        plan = Plan_InPlace()
        if old_config is not None and check(old_config)["port"] != new["port"]:
            plan = Plan_Restart([RestartReason("/port", "the port is bound at start")])
        return Prepared(plan, json.dumps(new))

    def apply(self, old_config, new_config):  # right after prepare(old_config, new_config)
        new = prepared[1] if prepared and prepared[0] == new_config else check(new_config)
        host.log(host.LogLevel.INFO, f"reconfigured: level={new['level']} port={new['port']}")

    def rollback(self, config):
        self.apply(None, config)
