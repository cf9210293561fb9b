"""A small dbt project the dbt tests write: a seed, a view model, two data tests, a source."""

from __future__ import annotations

from pathlib import Path

DUCKDB_PROFILES = """shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: shop.duckdb
"""
SEED = "id,amount,loaded_at\n1,10,2024-01-01 00:00:00\n2,20,2024-01-02 00:00:00\n"
SEED += "3,30,2024-01-03 00:00:00\n"
MODEL = "select id, amount from {{ ref('orders') }} where amount > 15\n"
SCHEMA = """version: 2
models:
  - name: big_orders
    columns:
      - name: id
        tests:
          - unique:
              config:
                severity: {severity}
          - not_null
sources:
  - name: raw
    schema: {schema}
    tables:
      - name: orders
        loaded_at_field: loaded_at
        freshness:
          warn_after: {{count: 100000, period: day}}
"""


def write_project(
    root: Path, *, seed: str = SEED, severity: str = "error", schema: str = "main"
) -> Path:
    """A small dbt project: a seed, a view model on it, two data tests, a source."""
    files = {
        "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
        "seeds/orders.csv": seed,
        "models/big_orders.sql": MODEL,
        "models/schema.yml": SCHEMA.format(severity=severity, schema=schema),
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def node(unique_id: str) -> str:
    """A node id without the hash dbt appends to data tests' ids."""
    return unique_id.rsplit(".", 1)[0] if unique_id.startswith("test.") else unique_id
