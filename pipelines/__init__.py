"""Item pipeline stages, in order: extract → classify → canonical → dedupe → store (see crawl/settings.py)."""
