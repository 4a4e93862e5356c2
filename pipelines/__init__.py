"""Item pipeline stages, in order: extract → sanitize → classify → canonical → dedupe → store
(see ITEM_PIPELINES in crawl/settings.py)."""
