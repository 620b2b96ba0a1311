"""Inputs: PNG, JPEG, TIFF and the real DICOM files shipped with pydicom; bad inputs; no PHI in outputs."""

import io
import json

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from hospital_imaging import pipeline as P
from hospital_imaging.decode import decode
from hospital_imaging.errors import InputError
from hospital_imaging.synthetic import phantom, png_bytes


def dicom_bytes(name):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip("pydicom test file %s is not installed" % name)
    with open(path, "rb") as handle:
        return handle.read()


def phi_of(data):
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    values = [str(ds.PatientName), str(ds.PatientID)] + str(ds.PatientName).split("^")
    return [v for v in values if len(v) >= 3]


def test_ct_small_rescale_and_header_free_window_by_hand():
    data = dicom_bytes("CT_small.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    raw = ds.pixel_array.astype(np.float64)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    pipe = P.load("steps: [read, grey, rescale, {window: {center: 40, width: 400, bits: 8}}, "
                  "{write: {outputs: [image]}}]\n")
    result = P.run(pipe, data, "ct.dcm")
    out = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    hu = raw * 1.0 - 1024.0
    expected = np.rint(np.clip(((hu - 39.5) / 399.0 + 0.5) * 255.0, 0, 255)).astype(np.uint8)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)
    # spot checks by hand on single pixels
    for (y, x) in [(0, 0), (64, 64), (100, 30)]:
        value = raw[y, x] - 1024.0
        hand = 0 if value <= -160 else 255 if value > 239 else round(((value - 39.5) / 399 + 0.5) * 255)
        assert out[y, x] == hand
    assert result.info["window"] == [40.0, 400.0]
    assert result.info["source"]["Modality"] == "CT"


def test_mr_small_uses_header_window_and_16bit_output():
    data = dicom_bytes("MR_small.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    pipe = P.load("steps: [read, grey, rescale, window, {write: {outputs: [image]}}]\n")
    result = P.run(pipe, data, "mr.dcm")
    assert result.info["window"] == [float(ds.WindowCenter), float(ds.WindowWidth)] == [600.0, 1600.0]
    out = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16
    expected = P.window_linear(ds.pixel_array.astype(np.float64), 600.0, 1600.0, 65535)
    assert np.array_equal(out, expected)


def test_monochrome1_is_inverted(tmp_path):
    data = dicom_bytes("MR_small.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    pipe = P.load("steps: [read, grey, rescale, window, {write: {outputs: [image]}}]\n")
    normal = cv2.imdecode(np.frombuffer(P.run(pipe, data, "a.dcm").outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    result = P.run(pipe, path.read_bytes(), "b.dcm")
    inverted = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert result.info["source"]["monochrome1"] is True
    assert np.array_equal(inverted, 65535 - normal)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm"])
def test_real_dicom_files_run_through_default_pipeline_without_phi(name):
    data = dicom_bytes(name)
    result = P.run(P.default(), data, name)
    assert set(result.outputs) == {"edges", "image"}
    blob = json.dumps(result.info)
    for value in phi_of(data):
        assert value not in blob
        for out in result.outputs.values():
            assert value.encode() not in out


def test_rle_and_uncompressed_mr_give_identical_pixels():
    a = P.run(P.default(), dicom_bytes("MR_small.dcm"), "a.dcm").outputs
    b = P.run(P.default(), dicom_bytes("MR_small_RLE.dcm"), "b.dcm").outputs
    assert a == b


@pytest.mark.parametrize("name, code, fragment", [
    ("MR_small_jpeg_ls_lossless.dcm", "unsupported", "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80) cannot be decoded"),
    ("JPEG-lossy.dcm", "unsupported", "12-bit precision"),
    ("MR_truncated.dcm", "truncated", "less than expected"),
    ("rtplan.dcm", "unsupported", "without pixel data"),
])
def test_dicom_rejections_are_clear_and_phi_free(name, code, fragment):
    data = dicom_bytes(name)
    with pytest.raises(InputError) as err:
        P.run(P.default(), data, name)
    assert err.value.code == code and fragment in err.value.reason
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    for value in (str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))):
        if len(value) >= 3:
            assert value not in err.value.reason


def test_truncated_ct_header_is_reported_as_truncated():
    data = dicom_bytes("CT_small.dcm")
    for cut in (1000, len(data) - 4000):
        with pytest.raises(InputError) as err:
            P.run(P.default(), data[:cut], "x.dcm")
        assert err.value.code == "truncated"


@pytest.mark.parametrize("data, name, code, fragment", [
    (b"", "e.png", "empty", "empty input (0 bytes)"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, "c.png", "corrupt", "corrupt PNG"),
    (b"\xff\xd8\xff\xe0" + b"\x13" * 50, "c.jpg", "corrupt", "corrupt JPEG"),
    (b"GIF89a" + b"\x00" * 40, "x.gif", "unsupported", "unsupported format"),
    (b"BM" + b"\x00" * 60, "x.bmp", "unsupported", "unsupported format"),
])
def test_bad_inputs(data, name, code, fragment):
    with pytest.raises(InputError) as err:
        P.run(P.default(), data, name)
    assert err.value.code == code and fragment in err.value.reason


def test_one_pixel_image_is_too_small():
    with pytest.raises(InputError) as err:
        P.run(P.default(), png_bytes(np.zeros((1, 1), np.uint8)), "one.png")
    assert err.value.code == "too_small" and "1x1" in err.value.reason


@pytest.mark.parametrize("ext, bits", [(".jpg", 8), (".tif", 8), (".tif", 16), (".png", 16)])
def test_jpeg_and_tiff_inputs(ext, bits):
    img = phantom(64, bits, seed=9)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    decoded = decode(buf.tobytes(), "x" + ext)
    assert decoded.bits == bits and decoded.image.shape == (64, 64)
    if ext != ".jpg":
        assert np.array_equal(decoded.image, img)
    assert P.run(P.default(), buf.tobytes(), "x" + ext).outputs["edges"]
