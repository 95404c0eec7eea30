"""Old name of :mod:`modelops.localserving`, kept so ``python -m modelops.serving`` still starts it."""
