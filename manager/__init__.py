"""The manager slice: reports from the event log, staffing advice (Erlang C) and the hall
dashboard, on top of the ``hall/`` kernel (see manager/feature.py)."""
