"""The SQL plugin's machinery (``io.kestra.plugin.jdbc.*``): one implementation for every engine.

- :mod:`executors.sql.splitter` — Kestra's statement splitter and named-parameter binding;
- :mod:`executors.sql.urls` — JDBC URLs to driver connection arguments;
- :mod:`executors.sql.dialects` — one DB-API 2.0 driver per engine (psycopg, PyMySQL, sqlite3,
  duckdb): connect, transactions, cancel, and the cell conversion of Kestra's cell converters;
- :mod:`executors.sql.values` — results as Kestra's outputs show them;
- :mod:`executors.sql.engine` — Query / Queries / Batch in a worker thread, with cancellation;
- :mod:`executors.sql.files` — internal storage and working-directory files;
- :mod:`executors.sql.copy` — PostgreSQL's COPY (CopyIn / CopyOut).

The task types are declared in :mod:`executors.plugins.jdbc`, which documents what Kestra does.
"""
