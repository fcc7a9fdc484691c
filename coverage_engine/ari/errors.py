"""What can go wrong when talking to Asterisk over ARI, as a small typed tree.

    AriError                      anything the ARI client raises
    ├── AriUnavailable            no usable answer from Asterisk: refused, reset, DNS, ...
    │   └── AriTimeout            the request's deadline passed before Asterisk answered
    └── AriHttpError              Asterisk answered with an HTTP error; `.status`, `.message`
        ├── AriAuthError          401/403: wrong ARI user or password (an admin must fix it)
        ├── ResourceGone          the channel, bridge or playback no longer exists (normal!)
        └── ResourceConflict      it exists but cannot do that now: not in our Stasis
                                  application (409), wrong state (412), or in use (422)

`ResourceGone` is the everyday case on a phone system: the caller hung up a
millisecond before we tried to stop their music on hold. Callers of the client
catch it and carry on; it is never logged as an error.

Asterisk's own error message (the `message` field of its JSON error body) is
kept on every `AriHttpError`, because "Channel not in Stasis application" says
far more than "409".
"""

from __future__ import annotations


class AriError(Exception):
    """Base of everything the ARI client raises."""


class AriUnavailable(AriError):
    """Asterisk could not be reached, or the connection broke mid-request."""


class AriTimeout(AriUnavailable):
    """Asterisk did not answer within the request's deadline."""


class AriHttpError(AriError):
    """Asterisk answered a REST request with an HTTP error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        # The path only (no host, no query string): safe to log, no credentials in it.
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{method} {path}: HTTP {status}: {message}")


class AriAuthError(AriHttpError):
    """Asterisk refused the ARI user name or password (check ari.conf and the password file)."""


class ResourceGone(AriHttpError):
    """The channel, bridge or playback is already gone: normal when someone hangs up."""


class ResourceConflict(AriHttpError):
    """The resource exists but cannot do this now (not in Stasis, wrong state, in use)."""


# Asterisk says "not found" with other statuses in a few places: `POST
# /bridges/{id}/addChannel` answers 400 "Channel not found" when the channel
# hung up (404 there means the *bridge* is missing). Both mean "gone".
_GONE_MESSAGES = ("not found", "no such channel", "does not exist")


def error_for_status(method: str, path: str, status: int, message: str) -> AriHttpError:
    """Build the most specific `AriHttpError` subclass for an HTTP error answer."""
    if status in (401, 403):
        return AriAuthError(method, path, status, message)
    if status == 404:
        return ResourceGone(method, path, status, message)
    if status == 400 and any(text in message.lower() for text in _GONE_MESSAGES):
        return ResourceGone(method, path, status, message)
    if status in (409, 412, 422):
        return ResourceConflict(method, path, status, message)
    return AriHttpError(method, path, status, message)
