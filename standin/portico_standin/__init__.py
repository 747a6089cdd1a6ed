"""A stand-in for the backing CRM, speaking the instance API (docs/runtime-contract.md).

For tests and demos only: state in memory, one process. Each capability of the API is
one module exposing `routes(state, guard)`; `app.create_app` assembles them.
"""
