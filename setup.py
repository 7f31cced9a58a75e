"""Build hook: setuptools' ``cffi_modules`` keyword (provided by cffi) is not expressible in
pyproject.toml, so it lives here. Everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["scalezero_agents/search/_build.py:ffibuilder"])
