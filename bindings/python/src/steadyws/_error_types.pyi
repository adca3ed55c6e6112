# Type-checker view of the generated exception classes (stub only; never imported at runtime).
#
# UniFFI's Python generator defines `SteadyError` twice (a plain base class, then a namespace
# class carrying the variants, marked `# type: ignore`), so type checkers only see the first and
# reject `except SteadyError.InvalidUrl`. These declarations describe what the runtime has:
# each variant is a nested class that subclasses its error class.
# tests/test_packaging.py checks that the variants here match the generated module.

class SteadyError(Exception):
    """Why a call was refused. The message says what is wrong and what to do.

    Flat: the variants carry no fields; ``str(err)`` is the core's message.
    """

    class InvalidUrl(SteadyError):
        """The URL is not a usable ws:// or wss:// URL."""

    class InvalidConfig(SteadyError):
        """A setting is out of range."""

    class NotJson(SteadyError):
        """The payload is not JSON (envelope mode)."""

    class WrongMode(SteadyError):
        """The payload kind needs the other mode."""

    class MessageTooLarge(SteadyError):
        """The message alone is larger than the outbox holds."""

    class OutboxFull(SteadyError):
        """The outbox is full (policy: reject new)."""

    class StoreInUse(SteadyError):
        """Another socket or process has this store open."""

    class StoreNewerFormat(SteadyError):
        """The store was written by a newer steadyws; nothing was changed."""

    class StoreFailed(SteadyError):
        """The store could not be opened or written."""

class ListenerError(Exception):
    """What a listener may report back."""

    class Failed(ListenerError):
        """The host's listener threw."""

        reason: str
        def __init__(self, reason: str) -> None: ...
