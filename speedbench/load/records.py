# Kept for compatibility (other branches import it from here); new code imports from speedbench.core.records.
from speedbench.core.records import CANCELLED, FAILED, OK, TIMEOUT, RequestRecord  # noqa: F401
