"""decode's libdeflate PNG path: OpenCV's own arrays and verdicts, used only where it applies."""
# pylint: disable=protected-access

import functools
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hospital_imaging import decode as D
from hospital_imaging import pipeline as P
from hospital_imaging import worker as W
from hospital_imaging.errors import InputError
from hospital_imaging.sources.spool import SpoolSource
from hospital_imaging.synthetic import phantom, png_bytes
from imaging_ids import jid

needs_deflate = pytest.mark.skipif(D.deflate is None, reason="deflate (libdeflate) is not installed: no path to test")
SIGNATURE = b"\x89PNG\r\n\x1a\n"
PATH, ALONE = "opencv+libdeflate", "opencv"


# -- PNG surgery ---------------------------------------------------------------------------------

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def parse(data):
    """The chunks of a (well-formed) PNG as [type, body] pairs."""
    pos, found = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        found.append([kind, data[pos + 8:pos + 8 + length]])
        pos += 12 + length
    return found


def build(chunks):
    return SIGNATURE + b"".join(chunk(kind, body) for kind, body in chunks)


def image_data(data):
    return b"".join(body for kind, body in parse(data) if kind == b"IDAT")


def reframed(data, size=None, stream=None, before=(), between=(), after=()):
    """``data`` with its image data (or ``stream``) cut into IDAT chunks of ``size`` bytes (None: one
    chunk), ``before``/``after`` chunks around them and ``between`` chunks after the first one."""
    chunks = parse(data)
    stream = image_data(data) if stream is None else stream
    first = [c[0] for c in chunks].index(b"IDAT")
    size = size or max(len(stream), 1)
    idats = [[b"IDAT", stream[i:i + size]] for i in range(0, len(stream), size)] or [[b"IDAT", b""]]
    rest = [c for c in chunks[first:] if c[0] != b"IDAT"]
    return build(chunks[:first] + list(before) + idats[:1] + list(between) + idats[1:] + list(after) + rest)


def rezipped(data, level=6, raw=None):
    """``data`` with its image data (or the filtered rows ``raw``) compressed again by Python's zlib.

    Python's zlib declares a 32 KiB window, as most encoders do; OpenCV's libpng declares a smaller one
    for small images, which the path leaves to OpenCV (zlib refuses a reference beyond that window).
    """
    raw = zlib.decompress(image_data(data)) if raw is None else raw
    return reframed(data, 8192, zlib.compress(raw, level))


def with_ihdr(data, **fields):
    """``data`` with IHDR fields (width, height, depth, colour, interlace) changed, its CRC fixed."""
    chunks = parse(data)
    values = dict(zip(("width", "height", "depth", "colour", "method", "filter", "interlace"),
                      struct.unpack(">IIBBBBB", chunks[0][1])), **fields)
    chunks[0][1] = struct.pack(">IIBBBBB", *values.values())
    return build(chunks)


def flipped(data, offset):
    return data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1:]


def text(key, value):
    return [b"tEXt", key + b"\0" + value]


def by_hand(img, colour, interlace=0):
    """A PNG written here: ``img`` HxW or HxWxC (uint8/uint16), filter 0 on every row, Adam7 if asked."""
    big_endian = img.astype(img.dtype.newbyteorder(">"))
    if interlace:
        passes = [big_endian[y0::dy, x0::dx] for x0, y0, dx, dy in
                  ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))]
    else:
        passes = [big_endian]
    raw = b"".join(b"\0" + row.tobytes() for part in passes if part.size for row in part)
    ihdr = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8 * img.dtype.itemsize, colour, 0, 0, interlace)
    return build([[b"IHDR", ihdr], [b"IDAT", zlib.compress(raw)], [b"IEND", b""]])


def fixed_huffman_png(length_symbol, distance_symbol, extra_bits):
    """A 255x256 black grey8 PNG whose image data is one fixed-Huffman block written here: 65278 zero
    bytes, one 258-byte match (``length_symbol`` 285, or a reserved one) at ``distance_symbol`` (its
    extra bits 0), end of block."""
    bits = "110" + format(0x30, "08b") * 65278 + format(0xC0 + length_symbol - 280, "08b") \
        + format(distance_symbol, "05b") + "0" * extra_bits + "0" * 7
    bits += "0" * (-len(bits) % 8)  # Huffman codes go most significant bit first, bytes fill from bit 0
    block = bytes(int(bits[i:i + 8][::-1], 2) for i in range(0, len(bits), 8))
    stream = b"\x78\x01" + block + struct.pack(">I", zlib.adler32(bytes(65536)))
    ihdr = struct.pack(">IIBBBBB", 255, 256, 8, 0, 0, 0, 0)
    return build([[b"IHDR", ihdr], [b"IDAT", stream], [b"IEND", b""]])


def pillow_png(img, *more, mode):
    """``img`` written by Pillow in ``mode``; with ``more`` images: an animated PNG."""
    out = io.BytesIO()
    frames = [Image.fromarray(frame).convert(mode) for frame in (img,) + more]
    frames[0].save(out, format="PNG", save_all=bool(more), append_images=frames[1:])
    return out.getvalue()


# -- images --------------------------------------------------------------------------------------

def picture(shape, dtype, seed=0, spread=None):
    """Smooth waves plus noise in every channel: compresses like a scan, not like random bytes."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    spread = spread or top // 8 + 1
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    planes = [(np.sin(xx / (5.0 + 3 * c)) * np.cos(yy / (4.0 + c)) + 1) * (top - spread) / 2
              + rng.integers(0, spread, shape[:2]) for c in range(shape[2] if len(shape) == 3 else 1)]
    return np.dstack(planes).astype(dtype).reshape(shape)


KINDS = {"grey8": ((240, 320), np.uint8), "grey16": ((240, 320), np.uint16),
         "rgb8": ((240, 320, 3), np.uint8), "rgb16": ((240, 320, 3), np.uint16),
         "rgba8": ((240, 320, 4), np.uint8), "rgba16": ((240, 320, 4), np.uint16)}


@functools.lru_cache(maxsize=None)
def large_png():
    """2048x2048 16-bit: 8 MiB of filtered rows, so the stored stream takes several ~1 MiB IDAT chunks."""
    return png_bytes(phantom(2048, 16), 1)


@functools.lru_cache(maxsize=None)
def good_png():
    """A 320x256 16-bit PNG as OpenCV writes it (8 KiB IDAT chunks, 32 KiB window): the path takes it."""
    data = png_bytes(picture((256, 320), np.uint16), 1)
    assert len([c for c in parse(data) if c[0] == b"IDAT"]) > 3 and image_data(data)[:1] == b"\x78"
    return data


# -- decoding both ways --------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def fixture_auto(monkeypatch):
    monkeypatch.setattr(D, "PNG_DECODER", "auto")  # whatever the environment says


@pytest.fixture(name="calls")
def fixture_calls(monkeypatch):
    """What decided: each cv2.imdecode call of decode() as (what it read, it gave an image), where
    what it read is "restored" (the path's output), "file" (decode's input itself) or "other"."""
    calls, inputs, outputs = [], [], []
    real_restore, real_imdecode = D._restored_png, cv2.imdecode

    def restore(data):
        inputs.append(data)
        outputs.append(real_restore(data))
        return outputs[-1]

    def imdecode(buf, flags):
        arr = real_imdecode(buf, flags)
        read = buf.tobytes()
        source = "restored" if outputs and outputs[-1] is not None and read == outputs[-1] \
            else "file" if inputs and read == inputs[-1] else "other"
        calls.append((source, arr is not None))
        return arr
    monkeypatch.setattr(D, "_restored_png", restore)
    monkeypatch.setattr(D.cv2, "imdecode", imdecode)
    return calls


def outcome(data):
    """decode(data): the Decoded image or the InputError it raised."""
    try:
        return D.decode(data)
    except InputError as exc:
        return exc


def decoded(data, monkeypatch, calls):
    """(decode() as configured, its imdecode calls, decode() by OpenCV alone)."""
    del calls[:]
    monkeypatch.setattr(D, "PNG_DECODER", "opencv")
    alone = outcome(data)
    assert calls == [("file", not isinstance(alone, InputError))]
    monkeypatch.setattr(D, "PNG_DECODER", "auto")
    del calls[:]
    got = outcome(data)
    return got, list(calls), alone


def assert_same(got, alone):
    """The same verdict: the same InputError, or the same array, dtype and meta (but the decoder)."""
    if isinstance(alone, InputError):
        assert isinstance(got, InputError), "OpenCV alone refuses it (%s), the path decoded it" % alone.reason
        assert (type(got), got.code, got.reason) == (type(alone), alone.code, alone.reason)
        return
    assert not isinstance(got, InputError), "OpenCV alone decodes it, the path says: %s" % got.reason
    assert (got.image.dtype, got.image.shape) == (alone.image.dtype, alone.image.shape)
    assert np.array_equal(got.image, alone.image)
    assert (got.fmt, got.bits, got.channel_order) == (alone.fmt, alone.bits, alone.channel_order)
    assert dict(got.meta, decoder=ALONE) == alone.meta and alone.meta["decoder"] == ALONE


def assert_path_used(data, monkeypatch, calls):
    got, used, alone = decoded(data, monkeypatch, calls)
    assert_same(got, alone)
    assert used == [("restored", True)] and got.meta["decoder"] == PATH
    return got


def assert_path_not_used(data, monkeypatch, calls):
    got, used, alone = decoded(data, monkeypatch, calls)
    assert_same(got, alone)
    assert used == [("file", True)] and got.meta["decoder"] == ALONE
    return got


# -- the same arrays as OpenCV alone -------------------------------------------------------------

@needs_deflate
@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize("kind", list(KINDS))
def test_same_arrays_as_opencv_alone(kind, level, monkeypatch, calls):
    shape, dtype = KINDS[kind]
    img = picture(shape, dtype, seed=level)
    got = assert_path_used(png_bytes(img, level), monkeypatch, calls)
    assert np.array_equal(got.image, img if img.ndim == 2 or img.shape[2] == 3 else img[:, :, :3])


def grey_alpha16():
    img = picture((90, 70, 2), np.uint16)
    return by_hand(img, 4)


def grey16_trns():
    img = picture((150, 120), np.uint16)
    chunks = parse(png_bytes(img, 1))
    return build(chunks[:1] + [[b"tRNS", struct.pack(">H", int(img[10, 10]))]] + chunks[1:])


SPECIAL = {
    "odd-77x131-grey8": lambda: rezipped(png_bytes(picture((77, 131), np.uint8))),
    "odd-131x77-rgb16": lambda: png_bytes(picture((131, 77, 3), np.uint16)),
    "1x1-grey8": lambda: rezipped(png_bytes(np.full((1, 1), 200, np.uint8))),
    "1x1-rgba16": lambda: rezipped(png_bytes(np.full((1, 1, 4), 40000, np.uint16))),
    "1-wide-300-tall-grey8": lambda: rezipped(png_bytes(picture((300, 1), np.uint8))),
    "1-wide-300-tall-grey8-stored": lambda: rezipped(png_bytes(picture((300, 1), np.uint8)), level=0),
    # a stored block (65535 bytes) ends inside a row
    "3x70000-grey8": lambda: png_bytes(picture((3, 70000), np.uint8)),
    "2x15000-rgb16": lambda: png_bytes(picture((2, 15000, 3), np.uint16), 9),
    # exactly one full stored block, then exactly 16 of them (a full IDAT chunk)
    "65535-bytes": lambda: rezipped(png_bytes(picture((5, 13106), np.uint8))),
    "16-blocks": lambda: rezipped(png_bytes(picture((16, 65534), np.uint8))),
    "2048-grey16-several-idat": large_png,
    "2048-grey16-one-idat": lambda: reframed(large_png()),
    "2048-grey16-100-byte-idat": lambda: reframed(large_png(), 100),
    "1-byte-idat": lambda: reframed(rezipped(png_bytes(picture((20, 30), np.uint8))), 1),
    "empty-idat-between": lambda: reframed(large_png(), 65536, between=[[b"IDAT", b""]]),
    "ancillary-before-and-after": lambda: reframed(
        good_png(), 8192, before=[[b"gAMA", struct.pack(">I", 45455)], text(b"Comment", b"before")],
        after=[text(b"Comment", b"after"), [b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9)]]),
    "apng-fctl-before-idat": lambda: pillow_png(*(picture((120, 160, 3), np.uint8, seed) for seed in range(3)),
                                                mode="RGB"),
    "fixed-huffman-by-hand": lambda: fixed_huffman_png(285, 29, 13),  # distance 24577
    "grey-alpha8-pillow-LA": lambda: pillow_png(picture((100, 90, 2), np.uint8), mode="LA"),
    "grey-alpha16-by-hand": grey_alpha16,
    "grey16-trns": grey16_trns,
    "rgb8-trns": lambda: reframed(png_bytes(picture((100, 90, 3), np.uint8)), 8192,
                                  before=[[b"tRNS", b"\x00\x10\x00\x20\x00\x30"]]),
}


@needs_deflate
@pytest.mark.parametrize("case", list(SPECIAL))
def test_same_arrays_as_opencv_alone_for(case, monkeypatch, calls):
    assert_path_used(SPECIAL[case](), monkeypatch, calls)


@needs_deflate
@pytest.mark.parametrize("case", ["ancillary-before-and-after", "1x1-grey8", "65535-bytes", "16-blocks",
                                  "2048-grey16-several-idat", "2048-grey16-100-byte-idat", "apng-fctl-before-idat"])
def test_restored_file_is_the_same_file_stored(case):
    """The same chunks around the image data, which inflates (Python's zlib) to the same rows, stored."""
    data = SPECIAL[case]()
    restored = D._restored_png(data)
    assert build(parse(restored)) == restored  # chunk lengths and CRCs right, nothing after IEND
    kinds = [c[0] for c in parse(restored)]
    first = kinds.index(b"IDAT")
    assert kinds[first:first + kinds.count(b"IDAT")] == [b"IDAT"] * kinds.count(b"IDAT")  # consecutive
    assert [c for c in parse(restored) if c[0] != b"IDAT"] == [c for c in parse(data) if c[0] != b"IDAT"]
    assert restored.index(b"IDAT") == data.index(b"IDAT")  # in their place
    raw = zlib.decompress(image_data(data))
    assert zlib.decompress(image_data(restored)) == raw
    assert len(image_data(restored)) == 2 + len(raw) + 5 * -(-len(raw) // 65535) + 4  # stored blocks only


@needs_deflate
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from([np.uint8, np.uint16]), channels=st.sampled_from([1, 3, 4]),
       height=st.integers(1, 64), width=st.integers(1, 64), level=st.integers(0, 9),
       spread=st.sampled_from([2, 50, None]), seed=st.integers(0, 1 << 32), rezip=st.booleans())
def test_random_images_same_as_opencv_alone(dtype, channels, height, width, level, spread, seed, rezip,
                                            monkeypatch, calls):
    shape = (height, width) if channels == 1 else (height, width, channels)
    data = png_bytes(picture(shape, dtype, seed, spread), level)
    if rezip:  # a 32 KiB window: the path takes it (OpenCV declares less for most of these small images)
        data = rezipped(data, level)
    got, used, alone = decoded(data, monkeypatch, calls)
    assert_same(got, alone)
    if rezip:
        assert used == [("restored", True)] and got.meta["decoder"] == PATH


# -- where the path is not used ------------------------------------------------------------------

NOT_USED = {
    "interlaced-1x1": lambda: with_ihdr(rezipped(png_bytes(np.full((1, 1), 7, np.uint8))), interlace=1),
    "interlaced-97x131": lambda: by_hand(picture((97, 131), np.uint8), 0, interlace=1),
    "interlaced-rgba16": lambda: by_hand(picture((40, 33, 4), np.uint16), 6, interlace=1),
    "palette": lambda: pillow_png(picture((200, 300, 3), np.uint8), mode="P"),
    "1-bit": lambda: pillow_png(picture((200, 300), np.uint8), mode="1"),
}


@needs_deflate
@pytest.mark.parametrize("case", list(NOT_USED))
def test_not_used_for(case, monkeypatch, calls):
    data = NOT_USED[case]()
    assert image_data(data)[:1] == b"\x78"  # a 32 KiB window: only the layout keeps the path off
    assert_path_not_used(data, monkeypatch, calls)


def test_not_used_when_switched_off(monkeypatch, calls):
    monkeypatch.setattr(D, "PNG_DECODER", "opencv")
    assert D.decode(good_png()).meta["decoder"] == ALONE and calls == [("file", True)]


def test_not_used_without_libdeflate(monkeypatch, calls):
    monkeypatch.setattr(D, "deflate", None)
    got = D.decode(good_png())
    assert got.meta["decoder"] == ALONE and calls == [("file", True)]
    assert np.array_equal(got.image, picture((256, 320), np.uint16))


@needs_deflate
@pytest.mark.parametrize("limit, used", [(256 * (1 + 320 * 2), True), (256 * (1 + 320 * 2) - 1, False)],
                         ids=["at-the-limit", "one-byte-over"])
def test_restore_max_bytes(limit, used, monkeypatch, calls):
    monkeypatch.setattr(D, "RESTORE_MAX_BYTES", limit)
    (assert_path_used if used else assert_path_not_used)(good_png(), monkeypatch, calls)


def with_bad_text_crc(data):
    return data[:33] + chunk(b"tEXt", b"Comment\0crc")[:-4] + bytes(4) + data[33:]


TOLERATED = {
    "bytes-after-the-zlib-stream": lambda: reframed(good_png(), 8192, image_data(good_png()) + b"after the end"),
    "ancillary-chunk-crc-wrong": lambda: with_bad_text_crc(good_png()),
    "iend-crc-wrong": lambda: good_png()[:-4] + bytes(4),
}


@needs_deflate
@pytest.mark.parametrize("case", list(TOLERATED))
def test_flaws_opencv_tolerates_give_the_same_image(case, monkeypatch, calls):
    """libpng warns about these and decodes the image: the same image, whichever decided."""
    got, _used, alone = decoded(TOLERATED[case](), monkeypatch, calls)
    assert not isinstance(alone, InputError)
    assert_same(got, alone)


# -- bad files: OpenCV's verdict ------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def bad_pngs():
    data = good_png()
    chunks = parse(data)
    stream = image_data(data)
    second_idat = 8 + 25 + 12 + len(chunks[1][1])  # IHDR, then OpenCV's first 8 KiB IDAT chunk
    assert chunks[2][0] == b"IDAT" and data[second_idat + 4:second_idat + 8] == b"IDAT"
    inside = second_idat + 8 + 1000
    raw = zlib.decompress(stream)
    height = struct.unpack_from(">I", data, 20)[0]
    row = np.random.default_rng(3).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    far = zlib.compress((b"\0" + row) * 64, 9)  # every row repeats the one 2049 bytes back
    small_window = b"\x08\x1d" + far[2:]  # the header says: a 256-byte window (0x081d is a multiple of 31)
    return {
        "idat-byte-flipped": flipped(data, inside),
        "idat-byte-flipped-crc-fixed": reframed(data, 8192, flipped(stream, 9000)),
        "adler32-wrong": reframed(data, 8192, stream[:-4] + bytes(4)),
        "zlib-preset-dictionary": reframed(data, 8192, b"\x78\xbb" + stream[2:]),
        "small-window-far-reference": build([[b"IHDR", struct.pack(">IIBBBBB", 2048, 64, 8, 0, 0, 0, 0)],
                                             [b"IDAT", small_window], [b"IEND", b""]]),
        "row-filter-type-5": rezipped(data, 1, b"\x05" + raw[1:]),
        "ihdr-crc-wrong": flipped(data, 29),
        "truncated-in-signature-ihdr": data[:20],
        "truncated-after-ihdr": data[:33],
        "truncated-in-idat": data[:inside],
        "truncated-in-last-idat": data[:-20],
        "truncated-in-iend": data[:-6],
        "no-iend": data[:-12],
        "bytes-after-iend": data + b"\0" * 16,
        "idat-split-by-text": reframed(data, 8192, between=[text(b"Comment", b"in the middle")]),
        "ihdr-more-rows": with_ihdr(data, height=height + 1),
        "ihdr-fewer-rows": with_ihdr(data, height=height - 1),  # more image data than IHDR says
        "only-idat-empty": reframed(data, None, b""),
        "no-idat": build([c for c in chunks if c[0] != b"IDAT"]),
    }


@needs_deflate
@pytest.mark.parametrize("case", list(bad_pngs()))
def test_bad_file_gets_opencv_verdict(case, monkeypatch, calls):
    got, used, alone = decoded(bad_pngs()[case], monkeypatch, calls)
    assert_same(got, alone)
    assert used[-1][0] == "file" and used[:-1] in ([], [("restored", False)]), used  # OpenCV on the file decided
    assert isinstance(got, InputError) or got.meta["decoder"] == ALONE


@needs_deflate
@pytest.mark.parametrize("case", [(285, 30, 13), (286, 0, 0)],
                         ids=["reserved-distance-symbol-30", "reserved-length-symbol-286"])
def test_reserved_deflate_codes_decode_where_opencv_alone_refuses(case, monkeypatch, calls):
    """The one documented difference: libdeflate takes the reserved deflate codes (distance 30-31, length
    286-287) that zlib refuses. No encoder writes them, and the stream's Adler-32 must still match
    what they inflate to, so only a file crafted for it decodes here while OpenCV alone calls it corrupt."""
    got, used, alone = decoded(fixed_huffman_png(*case), monkeypatch, calls)
    assert isinstance(alone, InputError) and alone.code == "corrupt", alone
    assert not isinstance(got, InputError) and got.meta["decoder"] == PATH and used == [("restored", True)], used


# -- the worker ------------------------------------------------------------------------------------

BAD_FOR_WORKER = ("idat-byte-flipped", "idat-byte-flipped-crc-fixed", "truncated-in-idat", "ihdr-more-rows",
                  "no-iend", "row-filter-type-5")


@needs_deflate
def test_worker_fails_bad_pngs_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(W.Worker, "_new_executor", lambda self: ThreadPoolExecutor(max_workers=self.processes))
    spool = SpoolSource(str(tmp_path / "spool"), worker_id="unit")
    try:
        bad = bad_pngs()
        jobs = {"good-1.png": good_png(), "good-2.png": png_bytes(picture((200, 150, 3), np.uint8)),
                "after-iend.png": bad["bytes-after-iend"]}  # OpenCV alone decodes this one
        jobs.update((case + ".png", bad[case]) for case in BAD_FOR_WORKER)
        for job, data in sorted(jobs.items()):
            spool.submit(jid(job), data)
        pipe = P.load("name: edges\nsteps: [read, grey, canny, {write: {outputs: [edges]}}]\n")
        counts = W.Worker(spool, pipe, processes=2, batch=2, poll=0.01).run(once=True)
        assert (counts["ok"], counts["failed"]) == (3, len(BAD_FOR_WORKER))
        failed = os.path.join(spool.root, "failed")
        assert sorted(os.listdir(failed)) == sorted(n for case in BAD_FOR_WORKER
                                                    for n in (jid(case + ".png"), jid(case + ".png") + ".reason"))
        for case in BAD_FOR_WORKER:
            with open(os.path.join(failed, jid(case + ".png") + ".reason"), "rb") as handle:
                reason = json.loads(handle.read())
            assert reason["code"] == "corrupt" and reason["reason"].startswith("corrupt PNG"), reason
        for job, decoder in (("good-1.png", PATH), ("good-2.png", PATH), ("after-iend.png", ALONE)):
            with open(os.path.join(spool.root, "outbox", jid(job) + ".json"), "rb") as handle:
                assert json.loads(handle.read())["source"]["decoder"] == decoder, job
    finally:
        spool.close()


# -- the environment switch --------------------------------------------------------------------------

@needs_deflate
@pytest.mark.parametrize("setting, expected", [("OpenCV", ["opencv", ALONE]), (None, ["auto", PATH])],
                         ids=["opencv", "unset"])
def test_environment_switch(setting, expected):
    code = ("from hospital_imaging import decode as D\n"
            "from hospital_imaging.synthetic import phantom, png_bytes\n"
            "print(D.PNG_DECODER, D.decode(png_bytes(phantom(512, 16))).meta['decoder'])\n")
    env = {k: v for k, v in os.environ.items() if k != "HOSPITAL_IMAGING_PNG_DECODER"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if setting:
        env["HOSPITAL_IMAGING_PNG_DECODER"] = setting
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.split() == expected


@needs_deflate
def test_worker_says_which_png_decoder_it_uses_and_warns_about_an_unknown_setting(tmp_path):
    """A typo in HOSPITAL_IMAGING_PNG_DECODER turns the fast path off: the worker says so when it starts."""
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes(phantom(256, 16, seed=3)))  # above 16 KiB: encoders declare a 32 KiB window
    base = [sys.executable, "-m", "hospital_imaging"]
    for setting, decoder, warned in (("auto", PATH, False), ("libdeflat", ALONE, True)):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOSPITAL_IMAGING_PNG_DECODER=setting)
        root = tmp_path / setting
        subprocess.run(base + ["submit", "--source", "spool:%s" % root, str(image)], env=env, check=True,
                       capture_output=True, timeout=120)
        run = subprocess.run(base + ["process", "--source", "spool:%s" % root, "--processes", "1", "--metrics-port",
                                     "0", "--log-level", "info"], env=env, capture_output=True, text=True,
                             timeout=180, check=False)
        assert run.returncode == 0, run.stderr
        events = {e["event"]: e for e in (json.loads(line) for line in run.stderr.splitlines() if line.startswith("{"))}
        assert events["worker_started"]["png_decoder"] == decoder
        assert ("png_decoder_setting_unknown" in events) is warned
        if warned:
            unknown = events["png_decoder_setting_unknown"]
            assert (unknown["value"], unknown["known"], unknown["level"]) == ("libdeflat", ["auto", "opencv"], "warning")
        sidecars = [json.loads((root / "outbox" / n).read_text()) for n in os.listdir(root / "outbox")
                    if n.endswith(".json")]
        assert [s["source"]["decoder"] for s in sidecars] == [decoder]
