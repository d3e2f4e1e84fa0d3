"""Images in: resolve a source once, sniff its type from the bytes, read its size, fit, encode.

Sources are paths, bytes, ipywidgets uploads, data URLs or https URLs. The MIME type always comes
from the bytes, never from a file name. Submodules: :mod:`.files` (the resolver),
:mod:`.format` (the sniffer), :mod:`.header` (the size reader), :mod:`.dataurl`,
:mod:`.encode` (fit and encode into content parts, each once per image).
"""

from __future__ import annotations

from vizlab.images.dataurl import build_data_url, decode_base64_image, decode_data_url, describe_url
from vizlab.images.encode import (
    DEFAULT_MAX_BYTES,
    JPEG_QUALITY,
    LOW_BOX,
    DETAIL_LEVELS,
    MAX_PIXELS,
    SERVICE_FORMATS,
    EncodedImage,
    ImagePart,
    check_fit,
    encode_image,
    fit_size,
    image_part,
    image_size,
    open_image,
    to_data_url,
)
from vizlab.images.files import RAW_INPUT_FACTOR
from vizlab.images.format import sniff_mime

__all__ = [
    "DEFAULT_MAX_BYTES",
    "JPEG_QUALITY",
    "LOW_BOX",
    "MAX_PIXELS",
    "SERVICE_FORMATS",
    "DETAIL_LEVELS",
    "EncodedImage",
    "ImagePart",
    "sniff_mime",
    "encode_image",
    "to_data_url",
    "image_part",
    "decode_data_url",
    "build_data_url",
    "decode_base64_image",
    "describe_url",
    "image_size",
    "open_image",
    "fit_size",
    "check_fit",
    "RAW_INPUT_FACTOR",
]
