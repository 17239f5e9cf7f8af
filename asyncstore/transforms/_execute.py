"""Calling a transform: resolve it, check the call, run it, and say how it failed.

A call is checked before any I/O, run inline or in a worker process, and its failures are
turned into the errors callers see.

The rule for errors: what the transform raises becomes a `TransformError` naming it (the
original chained); what an input or an output raised on its own (a failing source, a full
store) is raised unchanged. Either way every output is failed, so nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from asyncstore.errors import ConfigError, TransformError
from asyncstore.transforms._contract import Transform, TransformContext, default_name
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT",
    "Isolation",
    "check_call",
    "execute",
    "params_from_config",
    "resolve",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds a worker process may stay silent before it is deemed hung."""
DEFAULT_MEMORY_LIMIT = 1 << 30
"""The address-space limit of a worker process, in bytes."""


@dataclass(frozen=True)
class Isolation:
    """Where a transform runs, and the limits of a worker process.

    Raises:
        ConfigError: If ``mode`` is not ``"inline"`` or ``"process"``, or a limit is not
            positive.
    """

    mode: str = "inline"
    """``"inline"`` (in this process, the default) or ``"process"`` (a worker process)."""
    timeout: float = DEFAULT_TIMEOUT
    """Process only: seconds the worker may go without asking for input or sending output,
    a log record or its result before it is killed as hung."""
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    """Process only: the worker's address-space limit in bytes (``RLIMIT_AS``); None for
    no limit."""

    def __post_init__(self) -> None:
        if self.mode not in ("inline", "process"):
            raise ConfigError(f"isolation must be 'inline' or 'process', not {self.mode!r}")
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise ConfigError(f"timeout must be a number of seconds > 0, not {self.timeout!r}")
        if self.memory_limit is not None and (
            not isinstance(self.memory_limit, int) or self.memory_limit < (32 << 20)
        ):
            raise ConfigError(
                f"memory_limit must be None or an int of at least 32 MiB, not {self.memory_limit!r}"
            )


def resolve(transform: str | Transform | type[Transform]) -> Transform:
    """Return the transform instance a caller named.

    Args:
        transform: An installed transform's name (created once per process), an instance,
            or a `Transform` subclass (created with a context named after the class).

    Raises:
        PluginError: If no transform has the name, or it fails to load.
        TypeError: If ``transform`` is none of these.
    """
    if isinstance(transform, str):
        from asyncstore.transforms._registry import default_transforms

        return default_transforms().create(transform)
    if isinstance(transform, Transform):
        return transform
    if isinstance(transform, type) and issubclass(transform, Transform):
        return transform(TransformContext.for_name(default_name(transform)))
    raise TypeError(
        f"expected a transform name, a Transform or a Transform subclass, not "
        f"{type(transform).__name__}"
    )


def params_from_config(value: Mapping[str, str] | str | None, option: str) -> dict[str, str]:
    """Return parameters given in a config file (a table) or a URL (``a=1&b=2``) as a dict.

    Raises:
        ConfigError: If they are neither.
    """
    if value is None:
        return {}
    if isinstance(value, str):  # from a URL: "mode=decompress&level=9"
        try:
            return dict(parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value)))
        except ValueError:
            raise ConfigError(f"{option} must be name=value&..., not {value!r}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{option} must be a table of names to values, not {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def check_call(
    transform: Transform, inputs: int, outputs: int, params: Mapping[str, str] | None
) -> dict[str, str]:
    """Check a call's shape and parameters before any I/O; return the parameters as a dict.

    Raises:
        TransformError: If the numbers of inputs or outputs do not fit the transform, a
            parameter is not a str, or the transform's `Transform.check_params` refuses them.
    """
    name = transform.name
    expected_in = transform.INPUTS
    if (expected_in is None and inputs < 1) or (expected_in is not None and inputs != expected_in):
        wanted = "one or more" if expected_in is None else str(expected_in)
        raise TransformError(
            f"transform {name!r} takes {wanted} input(s), not {inputs}", transform=name
        )
    if outputs != transform.OUTPUTS:
        raise TransformError(
            f"transform {name!r} writes {transform.OUTPUTS} output(s), not {outputs}",
            transform=name,
        )
    given = dict(params or {})
    for key, value in given.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TransformError(
                f"parameters of transform {name!r} must map str to str, not {key!r}: {value!r}",
                transform=name,
            )
    try:
        transform.check_params(given)
    except ValueError as exc:
        raise TransformError(
            f"transform {name!r} refused its parameters: {exc}", transform=name
        ) from exc
    return given


def translate(
    error: Exception,
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
) -> BaseException:
    """Return the error a caller sees for a failed call (see the module docstring)."""
    for output in outputs:
        failure: BaseException | None = getattr(output, "failure", None)
        if failure is not None:
            return failure  # the store write failed on its own: say so, not the transform
    for stream in inputs:
        if stream.failure is not None and stream.failure is error:
            return error
    if isinstance(error, TransformError) and error.transform == transform.name:
        return error
    name = transform.name
    message = f"transform {name!r} failed: {type(error).__name__}"
    if str(error):
        message += f": {error}"
    wrapped = TransformError(message, transform=name)
    wrapped.__cause__ = error
    return wrapped


async def execute(
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
    params: Mapping[str, str],
    *,
    isolation: Isolation | None = None,
) -> None:
    """Run one call and close its outputs; on failure, fail every output and raise.

    Raises:
        TransformError: If the transform (or its worker process) failed.
        Exception: An input's or an output's own error, unchanged.
    """
    isolation = isolation or Isolation()
    try:
        if isolation.mode == "process":
            from asyncstore.transforms._process import run_in_worker

            await run_in_worker(transform, inputs, outputs, params, isolation)
        else:
            await transform(inputs, outputs, params)
        for output in outputs:
            await output.aclose()
    except Exception as exc:
        error = translate(exc, transform, inputs, outputs)
        for output in outputs:
            output._fail(error)
        if error is exc:
            raise
        raise error  # noqa: B904 - the cause is chained where it belongs (translate)
    except BaseException as exc:  # cancelled: nothing may be stored either
        for output in outputs:
            output._fail(exc)
        raise
