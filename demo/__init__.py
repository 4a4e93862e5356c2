"""The bundled offline demo site and the small HTTP server that serves it (also used by the tests)."""
