"""Portico's default portal runtime (docs/runtime-contract.md).

One image, five commands: `serve` (the start page and `/healthz`), `provision`
and `import-translations` (the Jobs), `pages` (the "Getting set up" backend) and
`instance` (a small stand-in for the backing CRM, for tests and demos).
"""

__version__ = "0.1.0"
