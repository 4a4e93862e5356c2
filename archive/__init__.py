"""The storage layer, and the only code that speaks SQL: schema and migrations, the store, near-duplicate
signatures and their index, raw pages, run records, and the read queries behind the commands."""
