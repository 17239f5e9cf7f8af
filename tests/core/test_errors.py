import pickle

import pytest

import asyncstore
from asyncstore import errors


def test_every_error_derives_from_storage_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.StorageError), name
        assert getattr(asyncstore, name) is cls, f"{name} is not re-exported"


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.NotFoundError, FileNotFoundError),
        (errors.AlreadyExistsError, FileExistsError),
        (errors.InvalidKeyError, ValueError),
        (errors.InvalidMetadataError, ValueError),
        (errors.InvalidRangeError, ValueError),
        (errors.PermissionDeniedError, PermissionError),
    ],
)
def test_builtin_mixins(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, builtin)
    with pytest.raises(builtin):
        raise error("boom", store="s", handle="h")  # type: ignore[call-arg]


def test_plugin_errors() -> None:
    assert issubclass(errors.PluginNotFoundError, errors.PluginError)
    assert issubclass(errors.PluginLoadError, errors.PluginError)


def test_message_names_store_and_handle() -> None:
    error = errors.NotFoundError("no such object", store="archive", handle="a/b.txt")
    assert str(error) == "no such object (store 'archive', handle 'a/b.txt')"
    assert (error.message, error.store, error.handle) == ("no such object", "archive", "a/b.txt")
    assert str(errors.ConfigError("plain")) == "plain"


def test_errors_pickle_with_their_fields() -> None:
    error = errors.NotFoundError("gone", store="s", handle="h")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.NotFoundError
    assert (copy.message, copy.store, copy.handle) == ("gone", "s", "h")


def test_the_tree_is_drawn_in_the_module_docstring() -> None:
    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), name
