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

# PNG: the image data is inflated by libdeflate (the ``deflate`` package, optional), then handed to
# OpenCV's libpng re-stored uncompressed ("stored" deflate blocks), so libpng only undoes the row
# filters. The filtered rows are the same bytes, so the pixels are the same as from the file itself;
# inflate was 75 % of OpenCV's decode time and libdeflate inflates in about half the time of the
# zlib OpenCV's libpng uses. Measured (CPU, best of 20): 2048x2048 16-bit 27.2 ms against 31.6
# (libvips, used before) and 38.4 (OpenCV alone); 512x512 8-bit 1.30 ms against 2.0.
try:
    import deflate
except ImportError:  # OpenCV decodes PNGs alone
    deflate = None
# "auto": the path above where it applies (see _restored_png), OpenCV alone otherwise; "opencv" (or
# any other value, which the worker warns about at start) turns it off. Read once, at import; tests
# set the attribute.
PNG_DECODER = os.environ.get("HOSPITAL_IMAGING_PNG_DECODER", "auto").strip().lower()
PNG_DECODER_SETTINGS = ("auto", "opencv")
# Larger images are left to OpenCV alone: this path holds the inflated rows twice for a moment.
RESTORE_MAX_BYTES = 256 << 20
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}   # colour type -> samples per pixel (grey, RGB, grey+alpha, RGBA)
_STORED_BLOCK = 65535                        # the largest stored deflate block
_BLOCKS_PER_IDAT = 16                        # ~1 MiB IDAT chunks, as encoders write them


# The decoder a sidecar and the worker's start-up line name: the path above, or OpenCV alone.
RESTORED, OPENCV = "opencv+libdeflate", "opencv"


def _restoring() -> bool:
    """The libdeflate path is on: set to auto and ``deflate`` installed."""
    return PNG_DECODER == "auto" and deflate is not None


def png_decoder() -> str:
    """What decodes well-formed PNGs in this process: ``opencv+libdeflate`` or ``opencv`` alone."""
    return RESTORED if _restoring() else OPENCV


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
    # No content in the reason: the bytes may be PHI, or (through a link) another file's.
    raise InputError("unsupported format: not PNG, JPEG, TIFF or DICOM", "unsupported")


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
    arr = None
    if fmt == "png":
        restored = _restored_png(data)
        if restored is not None:
            arr = cv2.imdecode(np.frombuffer(restored, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            decoder = RESTORED
    if arr is None:  # not used for this file, or it failed: OpenCV on the file itself gives the verdict
        decoder = OPENCV
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


def _png_image_data(data: bytes):
    """(offset of the first IDAT chunk, offset after the last, the compressed image data) of a
    well-formed PNG, or None.

    Well-formed here: IHDR first, every chunk inside the file, the IDAT chunks consecutive and each
    with a correct CRC (libpng checks it too), IEND ending the file exactly.
    """
    pos, end, first, last, parts = 8, len(data), None, None, []
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        stop = pos + 12 + length
        if stop > end:
            return None
        if kind == b"IDAT":
            if last is not None and last != pos:
                return None  # image data split by another chunk
            body = data[pos + 8:stop - 4]
            if deflate.crc32(body, deflate.crc32(b"IDAT")) != struct.unpack_from(">I", data, stop - 4)[0]:
                return None
            first = pos if first is None else first
            last = stop
            parts.append(body)
        elif kind == b"IEND":
            return (first, last, b"".join(parts) if len(parts) > 1 else parts[0]) \
                if first is not None and stop == end else None
        pos = stop
    return None


def _restored_png(data: bytes):
    """``data`` with its image data inflated by libdeflate and stored again uncompressed, or None.

    Only for a well-formed (see _png_image_data), non-interlaced 8/16-bit grey, RGB, grey+alpha or
    RGBA PNG whose image data is a zlib stream with a 32 KiB window that inflates to exactly the size
    its header gives. Every other chunk (tRNS, gAMA, sBIT, text...) is kept as it is, so OpenCV's
    libpng interprets the result as it would the file. None leaves the file to OpenCV, so a bad file
    gets OpenCV's verdict, with one exception: libdeflate takes the reserved deflate codes (distance
    30-31, length 286-287) that zlib refuses; no encoder writes them, and the Adler-32 must match
    what they inflate to, so only a file crafted for it decodes here and not with OpenCV alone.
    libpng's warnings for flaws it tolerates (bytes after the zlib stream) are not repeated.
    """
    if not _restoring() or len(data) < 57 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    width, height, depth, colour, _method, _filter, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if depth not in (8, 16) or colour not in _PNG_CHANNELS or interlace != 0 or not width or not height \
            or width * height > 1 << 30 or max(width, height) > 1 << 20:  # OpenCV's limits: it refuses those
        return None
    expected = height * (1 + width * _PNG_CHANNELS[colour] * depth // 8)  # a filter byte per row
    if expected > RESTORE_MAX_BYTES:
        return None
    found = _png_image_data(data)
    if found is None:
        return None
    first, last, compressed = found
    if compressed[:1] != b"\x78":
        # zlib, 32 KiB window only. libdeflate always allows 32 KiB, zlib (OpenCV's libpng) refuses
        # a reference beyond the window the header declares; encoders declare smaller windows for
        # small images only (libpng below 16 KiB of data), which OpenCV decodes fast enough alone.
        return None
    try:
        raw = deflate.zlib_decompress(compressed, expected)  # checks the stream's Adler-32 too
    except deflate.DeflateError:
        return None
    if len(raw) != expected:
        return None
    # zlib header (no compression), stored blocks, Adler-32; cut into IDAT chunks of whole blocks
    view = memoryview(raw)
    starts = range(0, expected, _STORED_BLOCK)
    parts = [data[:first]]
    for chunk_start in range(0, len(starts), _BLOCKS_PER_IDAT):
        body = [b"\x78\x01"] if chunk_start == 0 else []
        for offset in starts[chunk_start:chunk_start + _BLOCKS_PER_IDAT]:
            block = view[offset:offset + _STORED_BLOCK]
            body.append(struct.pack("<BHH", offset + _STORED_BLOCK >= expected, len(block), len(block) ^ 0xFFFF))
            body.append(block)
        if chunk_start + _BLOCKS_PER_IDAT >= len(starts):
            body.append(struct.pack(">I", deflate.adler32(raw)))
        crc = deflate.crc32(b"IDAT")
        for piece in body:
            crc = deflate.crc32(piece, crc)
        parts.append(struct.pack(">I4s", sum(len(piece) for piece in body), b"IDAT"))
        parts.extend(body)
        parts.append(struct.pack(">I", crc))
    parts.append(data[last:])
    return b"".join(parts)


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
