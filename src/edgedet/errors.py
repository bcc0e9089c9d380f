"""Errors a user can act on. Every message says what went wrong, why, and how to fix it, in one line."""

from __future__ import annotations

#: `edgedet run`'s exit code when the run itself finished but at least one output lost frames (disk full, device
#: gone): the files listed as written are complete, the others are not. 74 is sysexits' EX_IOERR.
OUTPUTS_INCOMPLETE_EXIT_CODE = 74


class EdgedetError(Exception):
    """Base class. The CLI prints str(error) as one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(EdgedetError):
    """Conflicting or invalid options."""

    exit_code = 2


class ModelError(EdgedetError):
    """A model file that is missing, corrupt, or whose inputs/outputs edgedet cannot interpret."""


class SourceError(EdgedetError):
    """A video source that cannot be opened, or a live source that gave up after reconnecting."""


class SinkError(EdgedetError):
    """An output that cannot be written."""


class DataError(EdgedetError):
    """A data file (det.txt, gt.txt, seqinfo.ini, labels, sidecar) that cannot be parsed."""


class MissingDependencyError(EdgedetError):
    """An optional package is needed for this feature and is not installed."""


class BackendError(EdgedetError):
    """An inference backend failed to load or run a model."""
