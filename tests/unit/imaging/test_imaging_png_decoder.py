"""The libvips PNG path of decode: the same arrays as OpenCV's, only where it is used, same verdicts on bad files."""

import functools
import json
import multiprocessing
import os
import struct
import subprocess
import sys
import types
import zlib

import numpy as np
import pytest

from hospital_imaging import decode as D
from hospital_imaging import pipeline as P
from hospital_imaging import worker as W
from hospital_imaging.errors import InputError
from hospital_imaging.sources.spool import SpoolSource
from hospital_imaging.synthetic import phantom, png_bytes

needs_vips = pytest.mark.skipif(D.pyvips is None, reason="pyvips (libvips) is not installed: its PNG path is not tested")


@functools.lru_cache(maxsize=None)
def image(kind):
    rng = np.random.default_rng(7)
    return {"grey16-2048": lambda: phantom(2048, 16),
            "grey8-2048": lambda: phantom(2048, 8),
            "grey8-1024": lambda: phantom(1024, 8),
            "rgb8-1024": lambda: rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8),
            "rgb16-1024": lambda: rng.integers(0, 65536, (1024, 1024, 3), dtype=np.uint16),
            "grey8-512": lambda: phantom(512, 8)}[kind]()


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_trns(data):
    """``data`` (grey PNG) with a tRNS chunk after IHDR (OpenCV never writes one)."""
    return data[:33] + chunk(b"tRNS", b"\x00\x00") + data[33:]


def grey_alpha_png(img):
    alpha = np.dstack([img, 255 - img])
    raw = b"".join(b"\x00" + row.tobytes() for row in alpha)  # filter type 0 on every row
    ihdr = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 4, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(autouse=True)
def fixture_auto(monkeypatch):
    monkeypatch.setattr(D, "PNG_DECODER", "auto")  # whatever the environment says


@pytest.fixture(name="vips_calls")
def fixture_vips_calls(monkeypatch):
    """Each call of the libvips path: (libvips loaded the file, an image came back)."""
    calls, loads, real = [], [], D._vips_png  # pylint: disable=protected-access
    if D.pyvips is not None:
        real_vips = D.pyvips

        def load(*args, **kwargs):
            loads.append(kwargs)
            return real_vips.Image.pngload_buffer(*args, **kwargs)
        monkeypatch.setattr(D, "pyvips", types.SimpleNamespace(Image=types.SimpleNamespace(pngload_buffer=load),
                                                               Error=real_vips.Error))

    def spy(data):
        before = len(loads)
        arr = real(data)
        calls.append((len(loads) > before, arr is not None))
        return arr
    monkeypatch.setattr(D, "_vips_png", spy)
    return calls


def decode_with(data, decoder, monkeypatch):
    monkeypatch.setattr(D, "PNG_DECODER", decoder)
    return D.decode(data)


@needs_vips
@pytest.mark.parametrize("level", [1, 9])
@pytest.mark.parametrize("kind", ["grey16-2048", "grey8-2048", "rgb8-1024", "rgb16-1024"])
def test_vips_and_opencv_give_identical_arrays(kind, level, vips_calls, monkeypatch):
    data = png_bytes(image(kind), level)
    vips = decode_with(data, "auto", monkeypatch)
    assert vips_calls == [(True, True)] and vips.meta["decoder"] == "libvips"
    cv = decode_with(data, "opencv", monkeypatch)
    assert cv.meta["decoder"] == "opencv"
    assert vips.image.dtype == cv.image.dtype and vips.image.shape == cv.image.shape == image(kind).shape
    assert np.array_equal(vips.image, cv.image)
    assert vips.image.flags.writeable and vips.image.flags.c_contiguous
    assert (vips.bits, vips.channel_order) == (cv.bits, cv.channel_order)
    assert dict(vips.meta, decoder="opencv") == cv.meta


@needs_vips
@pytest.mark.parametrize("case", ["small", "grey8-1MiB", "trns", "grey-alpha"])
def test_vips_is_not_used_for(case, vips_calls, monkeypatch):
    data = {"small": lambda: png_bytes(image("grey8-512")),
            "grey8-1MiB": lambda: png_bytes(image("grey8-1024")),  # below VIPS_MIN_BYTES: slower with libvips
            "trns": lambda: with_trns(png_bytes(image("grey8-2048"))),
            "grey-alpha": lambda: grey_alpha_png(image("grey8-2048"))}[case]()
    got = decode_with(data, "auto", monkeypatch)
    assert vips_calls == [(False, False)] and got.meta["decoder"] == "opencv"  # not even loaded
    assert np.array_equal(got.image, decode_with(data, "opencv", monkeypatch).image)


def bad_pngs():
    data = png_bytes(image("grey16-2048"))
    mid = len(data) // 2  # inside the image data (IDAT chunks of 8 kB from OpenCV)
    assert data[12:16] == b"IHDR" and b"IDAT" in data[:45]
    return {"truncated-60pct": data[:len(data) * 6 // 10],
            # the same with an IEND chunk at its end: libvips reads it (and must refuse it)
            "truncated-60pct-iend": data[:len(data) * 6 // 10] + chunk(b"IEND", b""),
            "idat-byte": data[:mid] + bytes([data[mid] ^ 0x5A]) + data[mid + 1:]}


@needs_vips
@pytest.mark.parametrize("case, loaded", [("truncated-60pct", False), ("truncated-60pct-iend", True),
                                          ("idat-byte", True)])
def test_bad_large_png_gets_the_opencv_verdict(case, loaded, vips_calls, monkeypatch):
    data = bad_pngs()[case]
    with pytest.raises(InputError) as vips:
        decode_with(data, "auto", monkeypatch)
    assert vips_calls == [(loaded, False)]  # no partly decoded image from libvips: OpenCV's verdict
    with pytest.raises(InputError) as cv:
        decode_with(data, "opencv", monkeypatch)
    assert vips.value.code == cv.value.code == "corrupt" and vips.value.reason == cv.value.reason


@needs_vips
def test_worker_fails_bad_large_pngs_and_goes_on(tmp_path):
    spool = SpoolSource(str(tmp_path / "spool"), worker_id="unit")
    try:
        jobs = dict(bad_pngs(), good=png_bytes(image("grey16-2048")))
        for job, data in jobs.items():
            spool.submit(job + ".png", data)
        claims = spool.claim(10)
        pipe = P.load("name: edges\nsteps: [read, grey, canny, {write: {outputs: [edges]}}]\n")
        results = {r["job"]: r for r in W.process_tasks(spool.spec(), pipe.to_dict(),
                                                        [(c.job, c.locator) for c in claims])}
        for job in bad_pngs():
            assert results[job + ".png"]["status"] == "failed" and results[job + ".png"]["code"] == "corrupt"
        assert results["good.png"]["status"] == "ok"
        with open(os.path.join(spool.root, "outbox", "good.png.json"), "rb") as handle:
            assert json.loads(handle.read())["source"]["decoder"] == "libvips"
    finally:
        spool.close()


def test_without_pyvips_decode_uses_opencv(monkeypatch, vips_calls):
    monkeypatch.setattr(D, "pyvips", None)
    got = D.decode(png_bytes(image("grey16-2048")))
    assert vips_calls == [(False, False)] and got.meta["decoder"] == "opencv"
    assert np.array_equal(got.image, image("grey16-2048"))


def test_environment_switch_turns_vips_off():
    code = ("from hospital_imaging import decode as D\n"
            "from hospital_imaging.synthetic import phantom, png_bytes\n"
            "print(D.PNG_DECODER, D.decode(png_bytes(phantom(1024, 16))).meta['decoder'])\n")
    env = dict(os.environ, HOSPITAL_IMAGING_PNG_DECODER="OpenCV", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["opencv", "opencv"]


def _decode_in_child(data, conn):
    got = D.decode(data)
    conn.send((got.meta["decoder"], got.image.tobytes() == image("grey16-2048").tobytes()))


@needs_vips
def test_a_forked_child_decodes_with_opencv_instead_of_hanging_in_libvips():
    data = png_bytes(image("grey16-2048"))
    assert D.decode(data).meta["decoder"] == "libvips"  # libvips and its thread are up in this process
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_decode_in_child, args=(data, child_end))
    child.start()
    try:
        assert parent_end.poll(60), "the forked child did not answer within 60 s (hung in libvips?)"
        assert parent_end.recv() == ("opencv", True)
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()  # by PID, the child this test started
            child.join()
    assert D.pyvips is not None and D.decode(data).meta["decoder"] == "libvips"  # the parent keeps it
