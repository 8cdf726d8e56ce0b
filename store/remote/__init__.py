"""Other machines' indexes, mirrored here read-only (``artlens remote``).

``config`` names the remotes and how to reach them, ``transport`` runs ``artlens feed`` /
``artlens cat`` there and reads their answer within bounds, ``mirror`` applies a feed to
one SQLite file per remote (the index schema, so ``store.index.query`` reads it unchanged) and
``fetch`` reads byte ranges of remote files.  Everything a remote sends is hostile input.
"""
