"""The routes of the API, one module per kind of work: reading, recording, access."""
