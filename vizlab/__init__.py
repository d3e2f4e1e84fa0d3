"""vizlab: learn, explore and measure vision-enabled chat models in Jupyter.

The public API is listed here explicitly; anything not imported here is internal. Heavy parts
(the built-in backend, widgets, plots, experiments) are imported from their own modules:
``vizlab.local``, ``vizlab.widgets``, ``vizlab.plots``, ``vizlab.experiments``,
``vizlab.datasets``.
"""

from __future__ import annotations

import sys

from vizlab import errors, models
from vizlab.client.core import Client, connect
from vizlab.client.replies import Reply, ReplyStream
from vizlab.conversation.core import Conversation
from vizlab.conversation.formats import convert_messages
from vizlab.errors import VizlabError
from vizlab.experiments.calibration import Calibration, calibrate
from vizlab.images.documents import document_info, file_part, page_parts
from vizlab.images.encode import EncodedImage, encode_image, image_part, to_data_url
from vizlab.models.types import Cost
from vizlab.tables import Table
from vizlab.tokens.image import explain_image_tokens, image_tokens
from vizlab.tokens.pricing import PriceTable, default_prices
from vizlab.tokens.request import RequestEstimate, estimate_request
from vizlab.tokens.text import count_text_tokens
from vizlab.tokens.usage import Usage

__version__ = "0.1.0"

if "IPython" in sys.modules:  # in a kernel: hand freed memory back after each cell
    from vizlab.kernel import install_trim

    install_trim()

__all__ = [
    "__version__",
    "errors",
    "models",
    "VizlabError",
    # images
    "EncodedImage",
    "encode_image",
    "image_part",
    "to_data_url",
    # documents (PDF)
    "file_part",
    "page_parts",
    "document_info",
    # tokens and cost
    "image_tokens",
    "explain_image_tokens",
    "count_text_tokens",
    "estimate_request",
    "RequestEstimate",
    "Usage",
    "PriceTable",
    "Cost",
    "default_prices",
    # conversation
    "Conversation",
    "convert_messages",
    # client
    "connect",
    "Client",
    "Reply",
    "ReplyStream",
    # display
    "Table",
    # calibration
    "calibrate",
    "Calibration",
]
