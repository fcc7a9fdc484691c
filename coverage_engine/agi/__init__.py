"""FastAGI: the routing decision for dialplans that cannot hand calls to ARI.

`protocol` is the AGI line protocol, `server` a guarded asyncio server,
`route` the `/route` handler that runs the routing core.
"""

from __future__ import annotations
