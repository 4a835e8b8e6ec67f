"""Open formats written from the ledger, each judged by its own library.

Each format is a module here that reads the core ledger and the answers (never the
store directly) and returns bytes; the command line (`mlprov export FORMAT TARGET`) and
the server only choose a target and write what it returns.
"""
