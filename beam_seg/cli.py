"""Command-line plumbing the stages share: strict flag parsing, Beam's local runner defaults, console logging.

Every ``python -m beam_seg.<stage>`` refuses a flag it does not know with exit code 2 and one line naming it (with
a "did you mean" suggestion), where Beam's ``PipelineOptions`` would drop it with a warning. Beam jobs still accept
every genuine Beam or Dataflow option. Nothing here imports Beam at module level, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

__all__ = [
    "EXIT_USAGE",
    "LOCAL_RUNNER",
    "LOG_LEVELS",
    "StrictArgumentParser",
    "UsageError",
    "add_batch_size_flags",
    "add_logging_flags",
    "add_shared_argument",
    "apply_local_runner_defaults",
    "batch_sizes",
    "configure_logging",
    "exit_now",
    "find_error",
    "first_line",
    "is_local_runner",
    "logging_flags",
    "native_stderr_quieted",
    "parse_pipeline_options",
    "usage_exit_code",
    "wants_help",
]

EXIT_USAGE = 2
# Without --runner, Beam jobs run on FnApiRunner, the engine the DirectRunner itself uses for batch pipelines,
# chosen directly: Beam's DirectRunner first tries the Prism runner, which downloads a binary at run time.
LOCAL_RUNNER = "FnApiRunner"
# Beam's StandardOptions.LOCAL_RUNNERS (spelled out: importing Beam takes seconds), plus the "direct" alias.
_LOCAL_RUNNERS = (
    "BundleBasedDirectRunner",
    "DirectRunner",
    "SwitchingDirectRunner",
    "FnApiRunner",
    "PrismRunner",
    "TestDirectRunner",
    "direct",
)


class UsageError(ValueError):
    """A command line that cannot run: an unknown flag, a bad value, a contradiction. Exit code 2, one line."""


def _suggestion(flag: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(flag.split("=", 1)[0], list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_flag_error(leftovers: Sequence[str], known: Iterable[str]) -> UsageError:
    """The error for arguments no parser took: the first unknown flag, or the first stray value."""
    flags = [arg for arg in leftovers if arg.startswith("-")]
    if flags:
        return UsageError(f"unknown flag {flags[0].split('=', 1)[0]}{_suggestion(flags[0], known)}")
    return UsageError(f"unexpected argument {leftovers[0]!r} (flags take the form --name value)")


class StrictArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one-line :class:`UsageError` s, with "did you mean" for typos.

    Abbreviations are off: ``--epoch`` is not taken for ``--epochs``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def known_flags(self) -> list[str]:
        """Every option string of this parser."""
        return [flag for action in self._actions for flag in action.option_strings]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """Parses ``args``, raising :class:`UsageError` for anything left over (argparse would print and exit)."""
        parsed, leftovers = self.parse_known_args(args, namespace)
        if leftovers:
            raise unknown_flag_error(leftovers, self.known_flags())
        return parsed

    def error(self, message: str) -> NoReturn:
        """Raises ``message`` as a :class:`UsageError` (argparse prints the usage and exits)."""
        raise UsageError(message)


def add_shared_argument(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
    """Adds a flag that another job's ``PipelineOptions`` class may define too (``--output_dir``, ``--input``).

    Beam parses every imported ``PipelineOptions`` subclass with one parser, where a second definition of a flag is a
    conflict; the first definition then serves both jobs (same destination, each job reads and checks it itself).
    Give such flags no default for that reason.
    """
    if kwargs.get("default") is not None:
        raise ValueError(f"shared flag {args[0]} must not have a default (the other job's definition may win)")
    with contextlib.suppress(argparse.ArgumentError):  # Already defined by another job's options class.
        parser.add_argument(*args, **kwargs)


def add_batch_size_flags(parser: argparse.ArgumentParser, min_default: int, max_default: int) -> None:
    """Adds ``--min_batch_size`` and ``--max_batch_size``, ``RunInference``'s batches (defaults: :func:`batch_sizes`).

    Shared flags: several jobs have them, so they have no argparse default.
    """
    add_shared_argument(
        parser,
        "--min_batch_size",
        type=int,
        help=f"Smallest batch of images RunInference gives a model (default: {min_default}).",
    )
    add_shared_argument(
        parser,
        "--max_batch_size",
        type=int,
        help=f"Largest batch of images RunInference gives a model (default: {max_default}).",
    )


def batch_sizes(opts: argparse.Namespace, min_default: int, max_default: int) -> tuple[int, int]:
    """``(min, max)`` batch sizes of :func:`add_batch_size_flags`' flags, defaults applied and checked.

    Raises:
        UsageError: one line quoting the bad value.
    """
    low = min_default if opts.min_batch_size is None else opts.min_batch_size
    high = max(max_default, low) if opts.max_batch_size is None else opts.max_batch_size
    if low < 1:
        raise UsageError(f"--min_batch_size {low} must be >= 1")
    if high < low:
        raise UsageError(f"--max_batch_size {high} is below --min_batch_size {low}; use at least {low}")
    return low, high


def wants_help(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``-h``/``--help`` (answered before anything heavy is imported)."""
    return any(arg in ("-h", "--help") for arg in argv)


def parse_pipeline_options(argv: Sequence[str]) -> PipelineOptions:
    """Beam ``PipelineOptions`` of ``argv``, refusing anything that neither the job nor Beam knows.

    The job's ``PipelineOptions`` subclass must be imported (Beam finds its flags through ``__subclasses__``).

    Raises:
        UsageError: an unknown flag (naming it, with a suggestion), a stray value or a bad flag value.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    argv = list(argv)
    leftovers: list[str] = []
    known: list[str] = []

    def check(parser: argparse.ArgumentParser) -> None:
        # Beam's own parser of every registered options class: errors raise instead of printing its huge usage.
        parser.exit_on_error = False
        try:
            _, rest = parser.parse_known_args(argv)
        except argparse.ArgumentError as e:
            raise UsageError(str(e)) from None
        leftovers.extend(rest)
        known.extend(flag for action in parser._actions for flag in action.option_strings)  # As Beam's own warning.

    options = PipelineOptions(argv)
    options.get_all_options(add_extra_args_fn=check, retain_unknown_options=True)
    if leftovers:
        raise unknown_flag_error(leftovers, known)
    return options


def apply_local_runner_defaults(
    options: PipelineOptions, argv: Sequence[str], *, running_mode: str, num_workers: int | None = None
) -> None:
    """Without ``--runner``: :data:`LOCAL_RUNNER`, with ``running_mode`` and ``num_workers`` unless given.

    Args:
        options: The job's parsed options (changed in place).
        argv: The command line, to tell given flags from defaults.
        running_mode: ``--direct_running_mode`` unless given.
        num_workers: ``--direct_num_workers`` unless given (default: the number of cores).
    """
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    standard = options.view_as(StandardOptions)
    direct = options.view_as(DirectOptions)
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    if standard.runner is None:
        standard.runner = LOCAL_RUNNER
    if is_local_runner(standard.runner):
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = running_mode
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = num_workers or os.cpu_count() or 1


def is_local_runner(runner: object) -> bool:
    """Whether ``--runner`` names one of Beam's in-process runners."""
    return str(runner).rsplit(".", 1)[-1] in _LOCAL_RUNNERS


LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    """Adds ``-v/--verbose`` and ``--log_level`` (read by :func:`configure_logging` before the other flags)."""
    add_shared_argument(
        parser,
        "-v",
        "--verbose",
        action="store_true",
        help="Also show the libraries' INFO logs (Beam, TensorFlow, HTTP) and their native stderr lines. Default: "
        "progress, warnings and the summary only.",
    )
    add_shared_argument(
        parser,
        "--log_level",
        choices=LOG_LEVELS,
        help="Log level of every logger, libraries included (overrides -v).",
    )


def logging_flags(argv: Sequence[str]) -> tuple[bool, str | None]:
    """``(verbose, log_level)`` as ``argv`` gives them, read before the job's own parsing (which may log)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--log_level", choices=LOG_LEVELS)
    try:
        known, _ = parser.parse_known_args(list(argv))
    except SystemExit:  # A bad --log_level value: the job's strict parser reports it in one line.
        return False, None
    return bool(known.verbose), known.log_level


class _WorkerLogFilter(logging.Filter):
    """Keeps the multi-process DirectRunner's relayed worker logs to warnings and beam_seg's own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "beam_seg" in record.getMessage()


class _ReportedErrorFilter(logging.Filter):
    """Drops a runner's traceback records of errors the stage reports itself, as one line."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or find_error(exc, self._kinds) is None


class _ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS message``, with the level named from WARNING up: a console of progress lines, not a log file."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            stamp, _, message = text.partition(" ")
            text = f"{stamp} {record.levelname}: {message}"
        return text


# Where Beam logs a failed bundle's traceback (in-process runners and SDK workers).
_BEAM_ERROR_LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker")
# Where the multi-process local runner relays its workers' log lines.
_WORKER_RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"


def configure_logging(
    argv: Sequence[str] = (), *, reported: tuple[type[BaseException], ...] = ()
) -> tuple[bool, str | None]:
    """Console logging for a stage's command line: by default beam_seg's progress and everyone's warnings.

    Libraries log at INFO only with ``-v``/``--verbose`` (and in the detailed ``time level logger: message`` format);
    ``--log_level`` sets every logger's level.

    Args:
        argv: The command line, for ``-v``/``--log_level`` (see :func:`add_logging_flags`).
        reported: Errors the stage reports itself as one line: Beam's tracebacks of them are not logged.

    Returns:
        ``(verbose, log_level)`` as given.
    """
    verbose, level = logging_flags(argv)
    detailed = verbose or level is not None
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s") if detailed else _ConsoleFormatter()
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_beam_seg_console", False):
            root.removeHandler(old)
    handler._beam_seg_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    own_level = getattr(logging, level) if level else logging.INFO
    root.setLevel(own_level if detailed else logging.WARNING)
    logging.getLogger("beam_seg").setLevel(own_level)
    relay = logging.getLogger(_WORKER_RELAY_LOGGER)
    for old in [f for f in relay.filters if isinstance(f, _WorkerLogFilter)]:
        relay.removeFilter(old)
    if not detailed:  # Worker processes' own progress lines still come through.
        relay.setLevel(logging.INFO)
        relay.addFilter(_WorkerLogFilter())
    if reported:
        for name in _BEAM_ERROR_LOGGERS:
            logger = logging.getLogger(name)
            for old in [f for f in logger.filters if isinstance(f, _ReportedErrorFilter)]:
                logger.removeFilter(old)
            logger.addFilter(_ReportedErrorFilter(reported))
    return verbose, level


@contextlib.contextmanager
def native_stderr_quieted(enabled: bool = True) -> Iterator[None]:
    """Holds back what native code writes straight to file descriptor 2 (e.g. TensorFlow's CUDA probe at import).

    Such lines bypass Python's logging. They are written out after all if the block raises, so an import failure is
    never hidden.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]\s*$")


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, without the ``[while running 'Step']`` a runner appends."""
    lines = str(exc).strip().splitlines()
    return _BEAM_SUFFIX.sub("", lines[0]) if lines else type(exc).__name__


def find_error(exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]) -> str | None:
    """The one-line message of the first ``kind`` error behind ``exc``, as a runner re-raised it; else ``None``.

    In-process runners chain the original exception; a worker in another process sends back only its text
    (``...Kind: message [while running 'Step']``), which is searched too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind):
            return first_line(current)
        current = current.__cause__ or current.__context__
    for k in kind if isinstance(kind, tuple) else (kind,):
        marker = f"{k.__name__}: "
        for line in reversed(str(exc).splitlines()):
            if marker in line:
                return _BEAM_SUFFIX.sub("", line.split(marker, 1)[1]).strip()
    return None


def exit_now(code: int) -> NoReturn:
    """Ends a finished command line at once: flushes logs and output, then skips the interpreter's teardown.

    Tearing down a process that imported Apache Beam takes ~0.6 s (its modules and objects are finalised one by
    one; bench/README.md, "Stage 1: whole process"), time the user waits for and nothing is saved in. Only for
    ``__main__`` entry points, after the job's own cleanup.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def usage_exit_code(prog: str, error: UsageError) -> int:
    """Prints ``prog: error`` on one line to stderr and returns :data:`EXIT_USAGE`."""
    print(f"{prog}: {error}", file=sys.stderr)  # CLI error line, as argparse prints it.
    return EXIT_USAGE
