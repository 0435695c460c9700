"""The HTTP service: FastAPI app (``app``), its schemas, auth, routes and the web page."""
