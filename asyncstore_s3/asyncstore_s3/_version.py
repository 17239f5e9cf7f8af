"""The version of asyncstore-s3 (one place, used in the user agent too)."""

__version__ = "0.1.0"
