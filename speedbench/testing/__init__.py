"""Test doubles shipped with the package (a fake vLLM-shaped server), so users and CI can try the API offline."""
