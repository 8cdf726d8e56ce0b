"""The index: the one owner of SQLite.

``db`` holds the connection settings, schema and migrations; ``query`` and ``views`` are the
read side; ``write`` is the only module that changes index rows; ``events`` names the change
feed's event kinds and folds a batch of them into what a reader must reload.  Importing this
package imports none of them (the CLI's start time depends on that).
"""
