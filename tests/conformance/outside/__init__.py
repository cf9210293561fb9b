"""Kestra's conformance corpus as an outside user runs it: the public REST API only.

Nothing here imports Headwater (``engine``, ``executors``, ``triggers``, ``schemas``): the
client speaks HTTP with httpx to a server started as a separate process (``headwater dev``,
see :mod:`.devserver`) or already running, exactly as a Kestra user's script would, and
checks the manifest's expectations against the JSON the API answers (Kestra's shapes:
``taskRunList``, ``state.current``, ``trigger.variables``...). ``test_outside_imports`` in
``tests/conformance/test_kestra_http.py`` keeps it that way.

- :mod:`.api`: the HTTP calls (deploy, create with JSON or multipart, follow, resume...).
- :mod:`.scenarios`: each scenario's run and action (restart, resume, kill, webhooks...).
- :mod:`.checks`: the manifest's assertions on execution JSON.
- ``python -m tests.conformance.outside [--url URL] [--only NAME]``: run it by hand.
"""
