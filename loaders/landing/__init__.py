"""The shared dlt machinery every source lands through: batches, cursors and windows, the file manifest, the
record types, the source spec, and the one pipeline factory."""
