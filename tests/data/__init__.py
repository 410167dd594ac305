"""Tests of rawjax.data (a package: tests/isp has a test_pipeline.py too)."""
