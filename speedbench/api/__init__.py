"""Faces over the runner beyond the CLI: config sources, REST service, job planning and merging.

Imports here stay light; FastAPI/uvicorn/submitit are imported only by the modules that need them.
"""
