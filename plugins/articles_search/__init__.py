"""The articles table's search pages at scale; see search.py."""
