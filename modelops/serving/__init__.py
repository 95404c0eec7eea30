"""TF Serving: the REST client and the project's TF-Serving-compatible local server."""
