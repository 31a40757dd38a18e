"""Options every command spells and means the same way (README, "Command-line conventions").

* ``--json [PATH|-]``: write the command's machine-readable result to PATH; ``-`` (or no value) prints it on
  stdout, and then nothing else goes to stdout;
* ``--data-dir DIR``: root of on-disk data sets, default ``$SNN_DEPLOY_DATA``, else ``./data``;
* ``--time-steps N``: time steps (``--steps`` and ``--T`` still work, hidden); every idea has one name (README,
  "Option names"), and the names an option had before are hidden aliases (:class:`AliasOption`);
* ``-q/--quiet``, ``-v/--verbose`` on every command that does work (not the listings);
* ``--config FILE.toml|yaml`` and ``--print-config`` on ``train`` and ``pretrain``: options from a file (the
  command line wins), and the effective settings printed in the same format instead of running.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from snn_deploy import console

STDOUT = "-"


def json_option(help: str) -> Callable:
    return click.option("--json", "json_path", metavar="PATH|-", type=click.Path(path_type=Path, allow_dash=True),
                        is_flag=False, flag_value=STDOUT, default=None,
                        help=f"{help} to PATH; '-' or no value: print it on stdout (instead of the text output).")


def to_stdout(json_path: Path | None) -> bool:
    return json_path is not None and str(json_path) == STDOUT


def json_file(json_path: Path | None) -> Path | None:
    """The file ``--json`` writes (None when it was not given or prints on stdout), for the output checks."""
    return None if json_path is None or to_stdout(json_path) else json_path


def force_json_option() -> Callable:
    """``--force`` of a command whose only file output is ``--json``."""
    return click.option("--force", is_flag=True, help="Replace an existing --json file.")


def claim_stdout(json_path: Path | None) -> None:
    """With ``--json -`` the JSON owns stdout: silence the command's text output for the rest of the command."""
    if to_stdout(json_path):
        click.get_current_context().with_resource(console.silenced_stdout())


def emit_json(json_path: Path | None, data: Any) -> None:
    """Write ``data`` as JSON where ``--json`` says (nothing when it was not given)."""
    if json_path is None:
        return
    if to_stdout(json_path):
        console.stdout().write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    from snn_deploy.io import write_json_atomic

    write_json_atomic(json_path, data)


def data_dir_option() -> Callable:
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        show_default="$SNN_DEPLOY_DATA, else ./data", help="Root of on-disk data sets.")


class AliasOption(click.Option):
    """An option whose names after the first are hidden aliases (kept so old scripts keep working)."""

    def get_help_record(self, ctx: click.Context):
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


def time_steps_option(help: str, kind: Any = int, dest: str = "T") -> Callable:
    return click.option("--time-steps", "--steps", "--T", dest, cls=AliasOption, type=kind, metavar="N", help=help)


class PerDatasetOption(click.Option):
    """An option whose default depends on the data set: ``--help`` lists the defaults (read only then)."""

    def __init__(self, *args: Any, setting: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting, self.base_help = setting, self.help

    def get_help_record(self, ctx: click.Context):
        from snn_deploy.data import info, names

        groups: dict[Any, list[str]] = {}
        for name in names():
            groups.setdefault(getattr(info(name).defaults, self.setting), []).append(name)
        listed = ", ".join(f"{'/'.join(n)} {v:g}" for v, n in groups.items())
        self.help = f"{self.base_help} [default per data set: {listed}]"
        return super().get_help_record(ctx)


def per_dataset_option(name: str, setting: str, kind: type, help: str) -> Callable:
    return click.option(name, setting, cls=PerDatasetOption, setting=setting, type=kind, help=help)


# --- verbosity --------------------------------------------------------------------------------------------------

def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        console.set_verbosity(-1)
        ctx.with_resource(console.silenced_stdout())


def _set_verbose(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        console.set_verbosity(value)


def verbosity_options() -> list[click.Option]:
    """``-q/--quiet`` and ``-v/--verbose`` (added to every command that does work)."""
    return [
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, is_eager=True, callback=_set_quiet,
                     help="Print nothing but errors (and what --json - asks for); no progress bars."),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, is_eager=True, callback=_set_verbose,
                     help="Print more: per-layer detail where a command has it, the cause of an error."),
    ]


# --- config files -----------------------------------------------------------------------------------------------

MAX_CONFIG_BYTES = 1 << 20
"""A config file holds a few option = value pairs: anything larger is refused before it is parsed."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_config(path: Path) -> dict[str, Any]:
    """The option = value pairs of a TOML or YAML file; any problem is a :class:`click.BadParameter` (exit 2), one
    line. YAML aliases are refused before anything is built (a "billion laughs" file expands them exponentially),
    and so is a file over :data:`MAX_CONFIG_BYTES` or not in UTF-8."""
    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(_one_line(f"{path}: {why}"), param_hint="--config")

    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise bad("use a .toml, .yaml or .yml file")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise bad(exc.strerror or str(exc)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise bad(f"larger than {MAX_CONFIG_BYTES} bytes; a config file holds option = value pairs")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            import yaml

            if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text, Loader=yaml.SafeLoader)):
                raise bad("YAML aliases (*name) are not accepted in a config file; write each value out")
            data = yaml.safe_load(text) or {}
    except click.BadParameter:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError: the file's own error says where
        mark = getattr(exc, "problem_mark", None)
        detail = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}" if mark else exc
        raise bad(f"not valid {path.suffix[1:].upper()}: {detail}; fix the file") from None
    if not isinstance(data, dict):
        raise bad("expected option = value pairs at the top level")
    return data


def _typed(param: click.Parameter, key: str, value: Any, path: Path) -> Any:
    """``value`` if its type is the option's (integers are integers, booleans are not numbers, no lists or
    tables where one value is expected), else a one-line :class:`click.BadParameter`."""
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        want, ok = "true or false", isinstance(value, bool)
    elif isinstance(kind, (click.types.IntParamType, click.IntRange)):
        want, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        want, ok = "a number", isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        want, ok = "a string", isinstance(value, str)
    if not ok:
        shown = json.dumps(value, default=str)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise click.BadParameter(f"{path}: {key} = {shown} is not {want}; fix the file", param_hint="--config")
    return value


def config_keys(command: click.Command) -> dict[str, str]:
    """Accepted config keys (every long option name, with - or _) -> the parameter they set."""
    keys = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value and param.name not in ("config", "print_config"):
            for opt in param.opts:
                if opt.startswith("--"):
                    keys[opt[2:]] = keys[opt[2:].replace("-", "_")] = param.name
    return keys


def _load_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """Options from the file become the command's defaults: the command line still wins."""
    if value is None:
        return
    keys = config_keys(ctx.command)
    data = _read_config(value)
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise click.BadParameter(f"{value}: unknown option(s) {', '.join(unknown)}; valid: "
                                 f"{', '.join(sorted(k for k in keys if '_' not in k))}", ctx=ctx, param_hint="--config")
    params = {p.name: p for p in ctx.command.params}
    typed = {keys[k]: _typed(params[keys[k]], k, v, value) for k, v in data.items()}
    ctx.default_map = {**(ctx.default_map or {}), **typed}


def config_options(command: Callable) -> Callable:
    command = click.option("--print-config", is_flag=True, help="Print the effective settings (defaults, config "
                           "file and command line merged) as TOML, a valid --config file, and exit.")(command)
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), is_eager=True,
                        expose_value=False, callback=_load_config, metavar="FILE",
                        help="Read options from a .toml or .yaml file (keys: the long option names); the command "
                             "line overrides it.")(command)


def toml_text(settings: dict[str, Any]) -> str:
    """Flat ``key = value`` TOML of ``settings`` (None values as comments: the option is unset)."""
    lines = []
    for key, value in settings.items():
        key = key.replace("_", "-")
        if value is None:
            lines.append(f"# {key} =  (unset)")
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f"{key} = {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"
