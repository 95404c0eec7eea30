"""The project's TF-Serving-compatible local server (``python -m modelops.localserving``).

It stands in for the stock ``tensorflow/serving`` image where no container engine runs; the
contract is shared/reference/tfserving.md and docs/compatibility.md.
"""
