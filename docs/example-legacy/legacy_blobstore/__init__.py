"""Storage modules written for the original synchronous SDK, unchanged.

`files.FileModule` keeps objects as files of a directory; `scramble.ScrambleModule` is a
wrapper that transforms the bytes on their way in and out and keeps them in another
configured store. Only `asyncstore_plugin` knows about asyncstore.
"""
