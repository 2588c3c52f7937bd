"""Finance read side: projections rebuilt from the event log, a read-only HTTP API with CSV,
bearer-token roles, read-only SQL views and a dashboard (issue 6).

Pure pieces (tokens, cursors, aging, money, privacy, projection_rules) hold the logic; the
projector, queries and api modules are the thin I/O around them.
"""
