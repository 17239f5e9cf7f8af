"""The modules as asyncstore plugins: the only file that knows about asyncstore."""

from asyncstore.sync import legacy_module_class
from legacy_blobstore.files import FileModule
from legacy_blobstore.scramble import ScrambleModule

FileStore = legacy_module_class(FileModule)
ScrambleStore = legacy_module_class(ScrambleModule)
