"""payday: the weekly payday of a tipping platform, run by PostgreSQL functions.

The database does the work (schema ``payday``); this package migrates it and talks to
the payment processors.
"""

__version__ = "0.1.0"
