"""Training data, one job per module (docs/data.md).

``tables`` (batches and datasets in memory), ``csv_rows`` (reading a CSV batch: the one header
rule), ``layout`` (the data folders), ``inbox`` (ingest and quarantine), ``cache`` (the ``.npy``
copies), ``windowed`` (the window and de-duplication), ``holdout`` (the keyed split), ``synthetic``
(the demo's generated batches).
"""
