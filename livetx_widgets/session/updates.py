"""Live reconfiguration: the protocol message for ``update()`` and the options it changes.

``keyterms`` is the one provider-neutral name (Deepgram ``keyterm`` on the query and
``keyterms`` in Configure, AssemblyAI ``keyterms_prompt``); everything else is passed in the
provider's own words and checked by its codec.
"""

from __future__ import annotations

from typing import Any


def update_message(
    codec: Any, keyterms: Any, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The protocol's live-update message and the connection options it changes."""
    if codec.name == "assemblyai":
        params = dict(options)
        if keyterms is not None:
            params["keyterms_prompt"] = list(keyterms)
        return codec.update_configuration(**params), params
    message = codec.configure(keyterms=None if keyterms is None else list(keyterms), **options)
    changed: dict[str, Any] = dict(options)
    if keyterms is not None:
        changed["keyterm"] = list(keyterms)
    return message, changed
