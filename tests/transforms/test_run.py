"""run_transform over memory, fs and a loopback S3 server: outputs are atomic puts, failures
and cancellation store nothing, and each kind of error reaches the caller as documented."""

from __future__ import annotations

import gzip
import io

import anyio
import pytest

from asyncstore import NotFoundError, TransformError, run_transform
from asyncstore.module import StorageModule

from .helpers import Concat, FailAfter, LateMetadata, Split, Stall, Upper
from .stores import OVER_STORES, leftovers

pytestmark = [pytest.mark.anyio, OVER_STORES]


@pytest.fixture
def anyio_backend(setting: tuple[str, str]) -> str:
    return setting[1]


MiB = 1 << 20
DATA = b"".join(b"%08d some text that compresses\n" % i for i in range(100_000))  # 3.2 MB


async def read(store: StorageModule, key: str) -> bytes:
    async with await store.get_read_stream(key) as stream:
        return await stream.read()


async def test_identity_copies_bytes_metadata_and_content_type(store: StorageModule) -> None:
    await store.put(DATA, key="in/a.txt", metadata={"owner": "ann"}, content_type="text/plain")
    result = await run_transform(
        "identity", inputs=[(store, "in/a.txt")], outputs=[(store, "out/a.txt")]
    )
    assert await read(store, "out/a.txt") == DATA
    info = await store.stat("out/a.txt")
    assert dict(info.metadata) == {"owner": "ann"}
    assert info.content_type == "text/plain"
    (output,) = result.outputs
    assert (output.size, output.store, output.handle) == (len(DATA), store.name, "out/a.txt")
    # The etag the store's put reported for a streamed write (None where it reports none).
    plain = await store.put(iter([b"x"] * 3), key="probe")
    assert output.etag == (info.etag if getattr(plain, "etag", None) else None)
    assert result.bytes_read == len(DATA) and result.transform == "identity"


async def test_gzip_round_trip(store: StorageModule) -> None:
    await store.put(DATA, key="log")
    await run_transform("gzip", inputs=[(store, "log")], outputs=[(store, "log.gz")])
    packed = await read(store, "log.gz")
    assert gzip.decompress(packed) == DATA and len(packed) < len(DATA) // 3
    assert (await store.stat("log.gz")).metadata["content-encoding"] == "gzip"
    await run_transform(
        "gzip",
        inputs=[(store, "log.gz")],
        outputs=[(store, "log.copy")],
        params={"mode": "decompress"},
    )
    assert await read(store, "log.copy") == DATA
    assert "content-encoding" not in (await store.stat("log.copy")).metadata


async def test_several_inputs_and_outputs(store: StorageModule) -> None:
    await store.put(b"one\n", key="a")
    await store.put(b"two\nthree\n", key="b")
    await run_transform(Concat, inputs=[(store, "a"), (store, "b")], outputs=[(store, "ab")])
    assert await read(store, "ab") == b"one\ntwo\nthree\n"
    assert (await store.stat("ab")).metadata["parts"] == "a,b"
    await run_transform(Split, inputs=[(store, "ab")], outputs=[(store, "even"), (store, "odd")])
    assert await read(store, "even") == b"one\nthree\n"
    assert await read(store, "odd") == b"two\n"
    assert (await store.stat("odd")).content_type == "text/plain"


async def test_a_failing_transform_stores_nothing_and_names_itself(
    store: StorageModule, request: pytest.FixtureRequest
) -> None:
    await store.put(DATA, key="in")
    with pytest.raises(TransformError) as caught:
        await run_transform(
            FailAfter, inputs=[(store, "in")], outputs=[(store, "out")], params={"after": "300000"}
        )
    error = caught.value
    assert error.transform == "fail-after"
    assert isinstance(error.__cause__, ValueError) and str(error.__cause__) == "boom"
    assert "fail-after" in str(error) and "boom" in str(error)
    assert not await store.available("out")
    assert [info.handle async for info in store.list()] == ["in"]
    assert await leftovers(store, request) in ([], ["in"])


async def test_a_failing_transform_keeps_the_old_object(store: StorageModule) -> None:
    await store.put(DATA, key="in")
    await store.put(b"old", key="out", metadata={"v": "1"})
    with pytest.raises(TransformError):
        await run_transform(
            FailAfter, inputs=[(store, "in")], outputs=[(store, "out")], params={"after": "2000000"}
        )
    assert await read(store, "out") == b"old"
    assert dict((await store.stat("out")).metadata) == {"v": "1"}


async def test_cancelling_the_caller_cancels_the_transform_and_stores_nothing(
    store: StorageModule, request: pytest.FixtureRequest
) -> None:
    big = DATA * 5  # 16 MB: an S3 store is in a multipart upload when cancelled
    await store.put(big, key="in")
    with anyio.move_on_after(60) as deadline:
        with anyio.move_on_after(1.5):
            await run_transform(
                Stall, inputs=[(store, "in")], outputs=[(store, "out")], params={"mib": "12"}
            )
    assert not deadline.cancelled_caught
    assert not await store.available("out")
    assert await leftovers(store, request) in ([], ["in"])


async def test_a_missing_input_raises_not_found_and_stores_nothing(
    store: StorageModule,
) -> None:
    with pytest.raises(NotFoundError):
        await run_transform("identity", inputs=[(store, "missing")], outputs=[(store, "out")])
    assert not await store.available("out")


async def test_metadata_after_a_write_is_a_clear_error(store: StorageModule) -> None:
    await store.put(b"x", key="in")
    with pytest.raises(TransformError) as caught:
        await run_transform(LateMetadata, inputs=[(store, "in")], outputs=[(store, "out")])
    assert "before the first write" in str(caught.value)
    assert not await store.available("out")


async def test_a_stream_output_gets_the_bytes_and_the_result_the_metadata(
    store: StorageModule,
) -> None:
    await store.put(DATA, key="in", content_type="text/plain")
    sink = io.BytesIO()  # a blocking file: written in a worker thread
    result = await run_transform("checksum", inputs=[(store, "in")], outputs=sink)
    assert sink.getvalue() == DATA
    import hashlib

    assert result.outputs[0].metadata["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert result.outputs[0].store is None and result.outputs[0].handle is None


async def test_upper_with_progress(store: StorageModule) -> None:
    await store.put(DATA, key="in")
    seen: list[int] = []
    await run_transform(
        Upper, inputs=[(store, "in")], outputs=[(store, "out")], progress=seen.append
    )
    assert await read(store, "out") == DATA.upper()
    assert sum(seen) == len(DATA) and len(seen) > 1
