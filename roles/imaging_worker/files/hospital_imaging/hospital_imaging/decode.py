"""Decode PNG, JPEG, TIFF and DICOM bytes into a grey-or-colour array plus safe technical metadata.

Only technical attributes leave this module: no DICOM value that could identify a patient is
copied into ``Decoded.meta``; error messages from the DICOM path are redacted against the
identifying values of the header being read.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from hospital_imaging.errors import InputError, redact

FORMATS = ("png", "jpeg", "tiff", "dicom")

# OpenCV's codecs print their own errors on stderr: our JSON logs carry the reason instead.
try:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # older OpenCV builds
    pass
logging.getLogger("tifffile").setLevel(logging.CRITICAL)

# libvips (pyvips, optional) decodes large PNGs faster than OpenCV: a 2048x2048 16-bit phantom in
# ~31 ms CPU against ~39 ms (libvips 8.18 of pyvips-binary: libpng 1.6 + zlib-ng), pixel-identical;
# on small ones it is slower (512x512 8-bit: 2.5 ms against 1.85 ms), hence the size threshold.
# One libvips thread per process (the pool gives the parallelism); no operation cache.
os.environ.setdefault("VIPS_CONCURRENCY", "1")
try:
    import pyvips
    pyvips.cache_set_max(0)
except (ImportError, OSError):  # not installed, or libvips cannot be loaded
    pyvips = None
logging.getLogger("pyvips").setLevel(logging.CRITICAL)


def _no_vips_after_fork() -> None:
    # A forked child has none of libvips' threads (one is started at import): its next libvips
    # call would wait for them forever (seen: a benchmark's forked children hung on a futex).
    # Forked children decode with OpenCV; the worker's pool uses spawn and keeps libvips.
    global pyvips  # pylint: disable=global-statement,invalid-name
    pyvips = None


if pyvips is not None:
    os.register_at_fork(after_in_child=_no_vips_after_fork)

# Below ~2 MiB of decoded samples the per-call overhead of libvips outweighs its faster inflate.
# Measured (CPU per decode): 1024x1024 16-bit grey 10 % less, 1024x1024 RGB 6-20 % less, 2048x2048
# 8-bit grey 2 % less; 1024x1024 8-bit grey (1 MiB) 10 % more, 512x512 8-bit 40 % more.
VIPS_MIN_BYTES = 2 << 20
# "auto": libvips for the PNGs it is used for (see _vips_png), OpenCV otherwise; any other value
# (e.g. "opencv") turns libvips off. Read once, at import; tests set the attribute.
PNG_DECODER = os.environ.get("HOSPITAL_IMAGING_PNG_DECODER", "auto").strip().lower()
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# DICOM attributes that are safe to report (technical, no identity). Everything else stays inside.
_SAFE_DICOM = ("Modality", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
               "PixelRepresentation", "SamplesPerPixel", "Rows", "Columns")
# Keywords holding identifying values besides every PN (person name) element.
_PHI_KEYWORDS = ("PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber",
                 "StudyID", "InstitutionName", "InstitutionAddress", "StudyInstanceUID",
                 "SeriesInstanceUID", "SOPInstanceUID", "MedicalRecordLocator", "PatientAddress",
                 "PatientTelephoneNumbers", "StationName", "DeviceSerialNumber", "StudyDate",
                 "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime", "StudyDescription",
                 "SeriesDescription")


@dataclass
class Decoded:
    """A decoded image: ``image`` is HxW (grey) or HxWx3; ``bits`` the significant bits (8 or 16)."""

    image: np.ndarray
    fmt: str
    bits: int
    channel_order: str = "bgr"      # colour images: OpenCV decoders give BGR, DICOM gives RGB
    monochrome1: bool = False        # DICOM MONOCHROME1: low values are white, invert for display
    slope: float = 1.0
    intercept: float = 0.0
    window: tuple | None = None      # (center, width) from the DICOM header
    meta: dict = field(default_factory=dict)


def sniff(data: bytes, name: str = "") -> str:
    """Return the format of ``data`` from its magic bytes (DICOM also by a .dcm name)."""
    if not data:
        raise InputError("empty input (0 bytes)", "empty")
    if len(data) >= 132 and data[128:132] == b"DICM":  # before TIFF: a DICOM preamble may be a TIFF header
        return "dicom"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if name.lower().endswith((".dcm", ".dicom")):
        return "dicom"
    raise InputError("unsupported format: not PNG, JPEG, TIFF or DICOM (first bytes %s)"
                     % data[:8].hex(), "unsupported")


def decode(data: bytes, name: str = "") -> Decoded:
    """Decode ``data`` (the whole file) into a Decoded image."""
    fmt = sniff(data, name)
    if fmt == "dicom":
        return _decode_dicom(data)
    return _decode_raster(data, fmt)


def _bits_of(arr: np.ndarray) -> int:
    if arr.dtype == np.uint8:
        return 8
    if arr.dtype in (np.uint16, np.int16):
        return 16
    raise InputError("unsupported sample type %s (8- or 16-bit integers only)" % arr.dtype, "unsupported")


def _decode_raster(data: bytes, fmt: str) -> Decoded:
    decoder = "opencv"
    arr = _vips_png(data) if fmt == "png" else None
    if arr is not None:
        decoder = "libvips"
    else:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None and fmt == "tiff":
        arr = _tiff_fallback(data)
        decoder = "tifffile"
    if arr is None:
        raise InputError("corrupt %s: the decoder could not read the data (%d bytes)"
                         % (fmt.upper(), len(data)), "corrupt")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] != 3:
        raise InputError("unsupported channel count %d" % arr.shape[2], "unsupported")
    bits = _bits_of(arr)
    return Decoded(image=arr, fmt=fmt, bits=bits,
                   meta={"format": fmt, "dtype": str(arr.dtype), "channels": 1 if arr.ndim == 2 else arr.shape[2],
                         "decoder": decoder})


def _vips_png(data: bytes):
    """The PNG decoded by libvips as OpenCV would give it, or None: not used for it, or it failed.

    Only for 8/16-bit grey or RGB of at least VIPS_MIN_BYTES decoded, without tRNS (libvips adds an alpha
    band for it, OpenCV for RGB only: its handling stays the reference) and ending in IEND (libvips
    stops after the image data: OpenCV rejects a file without IEND). Any libvips error or
    unexpected result leaves the verdict to OpenCV, so bad files get the same reason either way.
    """
    if pyvips is None or PNG_DECODER != "auto" or len(data) < 45 or data[12:16] != b"IHDR" \
            or data[-12:] != _PNG_IEND:
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    bands = 1 if colour == 0 else 3
    if depth not in (8, 16) or colour not in (0, 2) or width * height * bands * depth // 8 < VIPS_MIN_BYTES \
            or width * height > 1 << 30 or max(width, height) > 1 << 20:  # OpenCV's limits: it refuses those
        return None
    pos = 8
    while pos + 8 <= len(data):  # chunks before the image data: no tRNS
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            break
        if kind == b"tRNS":
            return None
        pos += 12 + length
    try:
        # fail_on="warning": a truncated or corrupt file is an error, never a partly filled image
        # (the default, "none", returns one)
        img = pyvips.Image.pngload_buffer(data, access="sequential", fail_on="warning")
        sample = "uchar" if depth == 8 else "ushort"
        if (img.width, img.height, img.bands, img.format) != (width, height, bands, sample):
            return None
        # write_to_memory's buffer is writable and C-contiguous: grey is used as it is, no copy
        arr = np.frombuffer(img.write_to_memory(), dtype=np.uint8 if depth == 8 else np.uint16)
    except pyvips.Error:
        return None
    if bands == 1:
        return arr.reshape(height, width)
    # RGB -> BGR (OpenCV's order) into a new array: cvtColor is 2x faster than libvips' img[::-1]
    return cv2.cvtColor(arr.reshape(height, width, 3), cv2.COLOR_RGB2BGR)


def _tiff_fallback(data: bytes):
    try:
        import tifffile  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    try:
        arr = tifffile.imread(io.BytesIO(data))
    except Exception:  # pylint: disable=broad-exception-caught
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = np.ascontiguousarray(arr[:, :, ::-1])  # tifffile gives RGB
    return arr


def _phi_values(ds) -> list:
    values = []
    for keyword in _PHI_KEYWORDS:
        value = ds.get(keyword)
        if value is not None:
            values.append(str(value))
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value is not None:
            values.append(str(elem.value))
            values.extend(str(elem.value).split("^"))
    return values


def _decode_dicom(data: bytes) -> Decoded:
    # pydicom and its plugins warn with element values: keep those out of the logs.
    phi = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _decode_dicom_inner(data, phi)
        except InputError as exc:
            raise InputError(redact(exc.reason, phi), exc.code) from None
        except (EOFError, OSError) as exc:
            raise InputError(redact("truncated DICOM: %s" % exc, phi), "truncated") from None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise InputError(redact("corrupt DICOM: %s: %s" % (type(exc).__name__, exc), phi),
                             "corrupt") from None


def _decode_dicom_inner(data: bytes, phi: list) -> Decoded:
    import pydicom  # pylint: disable=import-outside-toplevel
    from pydicom.errors import InvalidDicomError  # pylint: disable=import-outside-toplevel

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except InvalidDicomError as exc:
        raise InputError("corrupt DICOM: %s" % exc, "corrupt") from None
    except (EOFError, OSError) as exc:
        raise InputError("truncated DICOM header: %s" % exc, "truncated") from None
    phi.extend(_phi_values(ds))
    if "PixelData" not in ds:
        raise InputError("DICOM without pixel data (not an image)", "unsupported")
    meta = {"format": "dicom"}
    for keyword in _SAFE_DICOM:
        value = ds.get(keyword)
        if value is not None:
            meta[keyword] = value if isinstance(value, (int, float)) else str(value)
    tsuid = ds.file_meta.get("TransferSyntaxUID") if "file_meta" in dir(ds) and ds.file_meta else None
    if tsuid is not None:
        meta["TransferSyntaxUID"] = str(tsuid)
        _check_decoder(tsuid)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError("multi-frame DICOM (%d frames) is not supported" % frames, "unsupported")
    if int(ds.get("BitsAllocated", 16)) > 16:
        raise InputError("DICOM with %s bits allocated is not supported (8 or 16)" % ds.get("BitsAllocated"),
                         "unsupported")
    try:
        arr = ds.pixel_array
    except ValueError as exc:
        text = str(exc)
        code = "truncated" if "less than expected" in text or "truncat" in text.lower() else "corrupt"
        raise InputError("%s DICOM pixel data: %s" % (code, text.split(" - ", maxsplit=1)[0]), code) from None
    except (RuntimeError, NotImplementedError) as exc:
        raise InputError("cannot decode DICOM pixel data: %s" % " ".join(str(exc).split()), "unsupported") from None
    if arr.dtype not in (np.uint8, np.uint16, np.int16):
        arr = arr.astype(np.int32)
        if arr.min() >= 0 and arr.max() <= 65535:
            arr = arr.astype(np.uint16)
        else:
            raise InputError("DICOM sample range does not fit 16 bits", "unsupported")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    stored = int(ds.get("BitsStored", 8 * arr.dtype.itemsize))
    bits = 8 if stored <= 8 and arr.dtype == np.uint8 else 16
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise InputError("unsupported DICOM samples per pixel: %d" % arr.shape[2], "unsupported")
    if arr.ndim == 3 and bits == 16:
        raise InputError("16-bit colour DICOM is not supported", "unsupported")
    window = None
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
        width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
        window = (float(center), float(width))
    return Decoded(image=np.ascontiguousarray(arr), fmt="dicom", bits=bits,
                   channel_order="rgb", monochrome1=photometric == "MONOCHROME1",
                   slope=float(ds.get("RescaleSlope", 1.0) or 1.0),
                   intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0),
                   window=window, meta=meta)


def _check_decoder(tsuid) -> None:
    if not tsuid.is_compressed:
        return
    from pydicom.pixels import get_decoder  # pylint: disable=import-outside-toplevel
    try:
        decoder = get_decoder(tsuid)
    except NotImplementedError:
        raise InputError("compressed transfer syntax %s (%s) is not supported" % (tsuid.name, tsuid),
                         "unsupported") from None
    if not decoder.is_available:
        raise InputError("compressed transfer syntax %s (%s) cannot be decoded here: no decoder "
                         "plugin installed (pylibjpeg/gdcm); convert it to an uncompressed or "
                         "JPEG 2000/RLE transfer syntax" % (tsuid.name, tsuid), "unsupported")
