"""Health, readiness and metrics of the components that serve no HTTP API.

:mod:`.server` is the tiny asyncio HTTP server (``/health/live``, ``/health/ready``,
``/metrics``); :mod:`.probes` builds its :class:`~engine.health.server.Probe` from each
component's public attributes.
"""
