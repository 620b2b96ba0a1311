"""Synthetic, anatomy-like test images (smooth ellipses, soft tissue gradients, noise).

Used by the tests, the benchmark and smoke tests on hosts: no patient data is ever needed.
"""

from __future__ import annotations

import cv2
import numpy as np


def phantom(size: int, bits: int = 8, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    """A size x size grey phantom: body ellipse, organs, bright 'bones', blurred, with noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    c = size / 2.0
    cv2.ellipse(img, (int(c), int(c)), (int(size * 0.42), int(size * 0.34)), 0, 0, 360, 0.35, -1)
    for _organ in range(6):
        center = (int(c + rng.uniform(-0.25, 0.25) * size), int(c + rng.uniform(-0.18, 0.18) * size))
        axes = (int(size * rng.uniform(0.04, 0.12)), int(size * rng.uniform(0.03, 0.10)))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.45, 0.7)), -1)
    for _bone in range(3):
        center = (int(c + rng.uniform(-0.3, 0.3) * size), int(c + rng.uniform(-0.25, 0.25) * size))
        cv2.circle(img, center, max(2, int(size * rng.uniform(0.01, 0.03))), 0.95, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img += 0.05 * np.sin(6.0 * xx) * np.cos(4.0 * yy)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0)
    if bits == 8:
        return np.rint(img * 255).astype(np.uint8)
    return np.rint(img * 4095 * 16).astype(np.uint16) if bits == 16 else np.rint(img * 65535).astype(np.uint16)


def png_bytes(img: np.ndarray, compression: int = 1) -> bytes:
    """Encode as PNG (8- or 16-bit)."""
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
