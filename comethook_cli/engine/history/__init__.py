"""The history of exchanges (SQLite): `files` (where it lives, private files, damage), `rows` (the table: schema,
shape, Exchange ↔ row), `writer` (HistoryWriter: group commits, checkpoints, retention), `reader` (History).

Nothing is imported here, so `files` (which the tunnel, trust and `trigger` use) comes without the rest.
"""
