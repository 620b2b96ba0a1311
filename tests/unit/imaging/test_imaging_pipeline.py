"""Pipeline definition and steps: validation, Canny equality with OpenCV, DICOM rescale/window."""

import json

import cv2
import numpy as np
import pytest

from hospital_imaging import pipeline as P
from hospital_imaging.errors import PipelineError
from hospital_imaging.synthetic import phantom, png_bytes


def test_default_pipeline_is_valid_and_hash_is_stable():
    a, b = P.default(), P.load(P.DEFAULT_YAML)
    assert a.hash == b.hash and len(a.hash) == 64
    assert [step[0] for step in a.steps] == list(P.ORDER)
    assert a.params("canny") == {"threshold1": 100.0, "threshold2": 200.0, "aperture": 3, "l2gradient": False}
    changed = P.load(P.DEFAULT_YAML.replace("threshold1: 100", "threshold1: 90"))
    assert changed.hash != a.hash
    assert P.build(a.to_dict()).hash == a.hash


@pytest.mark.parametrize("text, message", [
    ("steps: [read, grey, sharpen, write]", "steps[2]: unknown step 'sharpen' (known steps: read, grey"),
    ("steps: [read, grey, {canny: {threshold: 5}}, write]", "unknown parameter(s) ['threshold']"),
    ("steps: [read, grey, {denoise: {method: wiener}}, write: {outputs: [image]}]", "must be one of"),
    ("steps: [read, grey, {denoise: {ksize: 4}}, {write: {outputs: [image]}}]", "must be odd"),
    ("steps: [read, grey, {canny: {threshold1: fast}}, write]", "expected float"),
    ("steps: [read, canny, grey, write]", "steps must follow the order"),
    ("steps: [read, grey, canny]", "the 'write' step is required"),
    ("steps: [read, grey, write]", "'edges' needs the canny step"),
    ("steps: [read, grey, {window: {center: 40}}, canny, write]", "both center and width"),
    ("steps: [read, grey, {canny: {threshold1: 300}}, write]", "threshold1 must be <= threshold2"),
    ("steps: [read, grey, canny, {write: {outputs: [edges, thumbnail]}}]", "distinct values from"),
    ("stepz: []", "unknown key(s) ['stepz']"),
    ("steps: [read, grey, canny, write]\n  bad: [", "does not parse"),
    ("- just a list", "expected a mapping"),
])
def test_invalid_pipelines_are_rejected_with_a_clear_message(text, message):
    with pytest.raises(PipelineError) as err:
        P.load(text + "\n")
    assert message in err.value.reason
    assert err.value.code == "pipeline"


def test_pipeline_file_errors(tmp_path):
    with pytest.raises(PipelineError, match="cannot read pipeline file"):
        P.load(str(tmp_path / "missing.yml"))
    path = tmp_path / "p.yml"
    path.write_text("pipeline:\n  name: edges\n  version: '7'\n  steps: [read, grey, canny, write]\n")
    pipe = P.load(str(path))
    assert (pipe.name, pipe.version) == ("edges", "7")


EDGES_ONLY = "steps: [read, grey, canny, write]\n"


@pytest.mark.parametrize("t1, t2, aperture, l2", [(100, 200, 3, False), (30, 90, 5, True), (0, 0, 3, False)])
def test_canny_step_equals_direct_opencv_call(t1, t2, aperture, l2):
    img = phantom(256, 8, seed=3)
    colour = cv2.merge([img, np.flipud(img), img // 2])
    pipe = P.load("steps: [read, grey, {canny: {threshold1: %s, threshold2: %s, aperture: %d, l2gradient: %s}}, write]\n"
                  % (t1, t2, aperture, str(l2).lower()))
    for src in (img, colour):
        result = P.run(pipe, png_bytes(src), "x.png")
        got = cv2.imdecode(np.frombuffer(result.outputs["edges"], np.uint8), cv2.IMREAD_UNCHANGED)
        grey = src if src.ndim == 2 else cv2.cvtColor(src, cv2.COLOR_BGR2GRAY)
        expected = cv2.Canny(grey, t1, t2, apertureSize=aperture, L2gradient=l2)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        assert np.array_equal(got, expected)
        assert got.any()


def test_canny_on_16bit_uses_rounded_8bit_conversion():
    img = phantom(128, 16, seed=5)
    result = P.run(P.load(EDGES_ONLY), png_bytes(img), "x.png")
    got = cv2.imdecode(np.frombuffer(result.outputs["edges"], np.uint8), cv2.IMREAD_UNCHANGED)
    eight = np.clip(np.floor(img.astype(np.float64) / 257.0 + 0.5), 0, 255).astype(np.uint8)
    assert np.array_equal(got, cv2.Canny(eight, 100, 200))


def test_window_linear_matches_hand_computed_values():
    # c=40, w=400 (CT soft tissue): lower bound c-0.5-(w-1)/2 = -160, upper c-0.5+(w-1)/2 = 239
    values = np.array([-1000.0, -160.0, -159.0, 39.5, 40.0, 239.0, 239.5, 3000.0])
    # y = ((x - 39.5) / 399 + 0.5) * 255
    expected8 = [0, 0, 0.639, 127.5, 127.82, 255, 255, 255]
    got8 = P.window_linear(values, 40.0, 400.0, 255)
    assert got8.dtype == np.uint8
    assert got8.tolist() == [0, 0, 1, 128, 128, 255, 255, 255]
    assert np.allclose(got8, np.rint(expected8))
    got16 = P.window_linear(values, 40.0, 400.0, 65535)
    # x=-159 -> (-198.5/399 + 0.5) * 65535 = 164.25 -> 164 ; x=40 -> (0.5/399+0.5)*65535 = 32849.62 -> 32850
    assert got16.tolist() == [0, 0, 164, 32768, 32850, 65535, 65535, 65535]
    # width 1 is a threshold at c - 0.5
    assert P.window_linear(np.array([9.0, 9.5, 10.0]), 10.0, 1.0, 255).tolist() == [0, 0, 255]


def test_16bit_png_output_keeps_bit_depth_and_sidecar_info():
    img = phantom(128, 16, seed=1)
    pipe = P.load("steps: [read, grey, rescale, {window: {center: 32768, width: 65536}}, clahe, canny, "
                  "{write: {outputs: [edges, image]}}]\n")
    result = P.run(pipe, png_bytes(img), "x.png")
    out = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == img.shape
    assert result.info["output_bits"] == {"edges": 8, "image": 16}
    assert result.info["steps"] == ["grey", "rescale", "window", "clahe", "canny"]
    assert set(result.info["timings_ms"]) >= {"read", "grey", "window", "clahe", "canny", "write", "total"}
    assert result.info["stats"]["input"]["max"] == float(img.max())
    json.dumps(result.info)


def test_8bit_input_skips_rescale_and_window():
    result = P.run(P.default(), png_bytes(phantom(64, 8)), "x.png")
    assert "rescale:skipped" in result.info["steps"] and "window:skipped" in result.info["steps"]
    out = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("method, params", [("gaussian", "{ksize: 5, sigma: 1.5}"), ("median", "{ksize: 5}"),
                                            ("bilateral", "{d: 5, sigma_color: 30, sigma_space: 5}")])
@pytest.mark.parametrize("bits", [8, 16])
def test_denoise_methods_on_8_and_16_bit(method, params, bits):
    img = phantom(96, bits, seed=2, noise=0.05)
    pipe = P.load("steps: [read, grey, {denoise: %s}, {write: {outputs: [image]}}]\n"
                  % params.replace("{", "{method: %s, " % method, 1))
    out = cv2.imdecode(np.frombuffer(P.run(pipe, png_bytes(img), "x.png").outputs["image"], np.uint8),
                       cv2.IMREAD_UNCHANGED)
    assert out.dtype == img.dtype
    # denoising lowers the high-frequency energy
    assert np.abs(np.diff(out.astype(float), axis=1)).mean() < np.abs(np.diff(img.astype(float), axis=1)).mean()


def test_clahe_step_equals_opencv():
    img = phantom(128, 8, seed=4)
    pipe = P.load("steps: [read, grey, {clahe: {clip_limit: 3.0, tile_grid: 4}}, {write: {outputs: [image]}}]\n")
    out = cv2.imdecode(np.frombuffer(P.run(pipe, png_bytes(img), "x.png").outputs["image"], np.uint8),
                       cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out, cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(img))


@pytest.mark.parametrize("img", [phantom(256, 16, seed=5), phantom(200, 8, seed=6),
                                 (phantom(64, 16, seed=7).astype(np.int32) - 30000).astype(np.int16),
                                 np.full((40, 50), 65535, np.uint16), np.full((40, 50), 7, np.uint8)],
                         ids=["u16", "u8", "i16", "const-u16", "const-u8"])
def test_image_statistics_equal_numpy(img):
    stats = P._stats(img)  # pylint: disable=protected-access
    values = img.astype(np.float64)
    assert stats["min"] == values.min() and stats["max"] == values.max()
    assert stats["mean"] == pytest.approx(values.mean(), abs=1e-4)
    assert stats["std"] == pytest.approx(values.std(), abs=1e-3)
    assert (stats["width"], stats["height"], stats["dtype"]) == (img.shape[1], img.shape[0], str(img.dtype))


def test_image_output_png_is_lossless_and_stats_of_unchanged_image_are_the_input_stats():
    img = phantom(300, 16, seed=8, noise=0.05)
    result = P.run(P.load("steps: [read, grey, canny, {write: {outputs: [edges, image]}}]\n"), png_bytes(img), "x.png")
    out = cv2.imdecode(np.frombuffer(result.outputs["image"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out, img)
    assert result.info["stats"]["image"] == result.info["stats"]["input"]
    assert result.info["stats"]["input"]["std"] == pytest.approx(float(img.std()), abs=1e-3)
