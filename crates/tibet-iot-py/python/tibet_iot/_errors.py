"""The package's exceptions: everything it raises on purpose derives from
:class:`TibetIotError`; each also derives from the builtin a caller would
expect (``ValueError`` for bad input, ``OSError`` for sockets and files)."""

from __future__ import annotations


class TibetIotError(Exception):
    """Base class of every error this package raises."""


class InvalidDidError(TibetIotError, ValueError):
    """A DID that is not ``jis:`` followed by non-empty segments."""


class ConfigError(TibetIotError, ValueError):
    """A TransportConfig field, pin or argument that cannot be used."""


class BindError(TibetIotError, OSError):
    """The transport socket could not be bound (port in use, bad address)."""


class KeyFileError(TibetIotError, OSError):
    """A key file that cannot be used (missing, readable by others, not a key)."""


class NotRunningError(TibetIotError, RuntimeError):
    """The node is not running (``await node.start()`` first)."""


class SendError(TibetIotError):
    """A ping could not be sent (too many outstanding, encoding failed)."""


class CodecError(TibetIotError, ValueError):
    """A datagram or dict that is not a valid frame, packet or response."""


class VouchError(TibetIotError):
    """A vouch that was refused (registry full, too many DIDs)."""


class InternalError(TibetIotError):
    """A bug in the engine (a Rust panic), caught before it reached Python."""
