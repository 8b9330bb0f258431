"""Pure functions from raw records (and acceptance counters) to summaries. No I/O, no engine branches."""
