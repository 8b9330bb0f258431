# Kept for compatibility (other branches import it from here); new code imports from speedbench.core.point_id.
from speedbench.core.point_id import PointId, planned_points, point_name, repeat_of  # noqa: F401
