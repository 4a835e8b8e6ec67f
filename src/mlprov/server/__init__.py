"""`mlprov serve`: the ledger as a service for teams (FastAPI), with tokens and roles.

Thin over the library: each route parses, calls one library function and renders JSON.
"""
