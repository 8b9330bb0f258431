# Kept for compatibility (other branches import it from here); new code imports from speedbench.core.acceptance.
from speedbench.core.acceptance import SpecDecodeCounters, counters_from_histogram  # noqa: F401
