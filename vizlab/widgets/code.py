""""View code": a request body as Python (``openai``), ``requests`` and curl that run as shown.

The body is the exact one the client sent (``Reply.request``). The key is read from an
environment variable, never written out: ``AZURE_OPENAI_API_KEY`` for Azure,
``OPENAI_API_KEY`` for OpenAI and compatible servers, ``VIZLAB_LOCAL_API_KEY`` for the built-in
backend (it accepts any key, so the snippet falls back to its public default ``vizlab-local``).
With ``image_dir`` each image is saved there once (named by its SHA-256) and read back into the
same data URL, so the request is byte for byte the one sent; else data URLs are shortened
(``full=True`` inlines them). Routes and headers: the Azure OpenAI REST reference (read 2026).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

from vizlab.client.targets import BackendKind
from vizlab.widgets.state import elide_data_urls

__all__ = ["request_code", "CODE_KINDS", "LOCAL_KEY", "KEY_VARIABLE_LOCAL", "save_images"]

CODE_KINDS = ("python", "requests", "curl")
# The built-in backend's default key (vizlab.client.targets gives it when none is set); it is
# public, not a secret: that backend accepts any key unless connect(local_options=) set one.
LOCAL_KEY = "vizlab-local"
KEY_VARIABLE_LOCAL = "VIZLAB_LOCAL_API_KEY"

_WHOLE_DATA_URL = re.compile(r"data:([A-Za-z0-9.+/-]+);base64,([A-Za-z0-9+/=]+)", re.S)
_MARK = "\x00vizlab-file-{}\x00"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif", "application/pdf": "pdf"}


def _key(client: Any, secrets: Any = ()) -> tuple[str, str | None]:
    """``(variable, default)`` the snippet reads the key from; default None: the variable must be set."""
    backend = getattr(client, "backend", "")
    if backend == BackendKind.LOCAL:
        return KEY_VARIABLE_LOCAL, LOCAL_KEY if list(secrets or [LOCAL_KEY]) == [LOCAL_KEY] else None
    if backend == BackendKind.OPENAI:
        return "OPENAI_API_KEY", "not-needed" if getattr(client, "auth", "key") == "none" else None
    return "AZURE_OPENAI_API_KEY", None


def _key_py(var: str, default: str | None) -> str:
    return f'os.environ["{var}"]' if default is None else f'os.environ.get("{var}", "{default}")'


def _key_sh(var: str, default: str | None) -> str:
    return f"${var}" if default is None else f"${{{var}:-{default}}}"


def _url(client: Any) -> str:
    endpoint = str(getattr(client, "endpoint", "")).rstrip("/")
    if getattr(client, "backend", "") == BackendKind.OPENAI:
        return f"{endpoint}/chat/completions"
    if getattr(client, "api_version", None) is None:  # Azure's v1 route: no api-version, model in the body
        return f"{endpoint}/openai/v1/chat/completions"
    return f"{endpoint}/openai/deployments/{client.deployment}/chat/completions?api-version={client.api_version}"


def save_images(body: Any, image_dir: str | Path) -> tuple[Any, list[tuple[Path, str]]]:
    """``body`` with each whole base64 data URL replaced by a marker, and ``[(file, mime)]``.

    Each payload is written once to ``image_dir/<sha256[:16]>.<ext>`` (the bytes sent, so
    reading the file back gives the same data URL).
    """
    folder = Path(image_dir)
    files: list[tuple[Path, str]] = []

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            match = _WHOLE_DATA_URL.fullmatch(value)
            if match is None:
                return value
            try:
                data = base64.b64decode(match.group(2), validate=True)
            except (binascii.Error, ValueError):
                return value
            mime = match.group(1)
            path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.{_EXTENSIONS.get(mime, 'bin')}"
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            files.append((path.resolve(), mime))
            return _MARK.format(len(files) - 1)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(body), files


def _py(value: Any, indent: int = 0) -> str:
    """``value`` (JSON data) as a Python literal; strings keep their text exactly (``repr``)."""
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{k!r}: {_py(v, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "\n".join(f"{inner}{_py(v, indent + 4)}," for v in value) + f"\n{pad}]"
    return repr(value)


def _py_with_files(value: Any, files: list[tuple[Path, str]], indent: int = 0) -> str:
    text = _py(value, indent)
    for i, (path, mime) in enumerate(files):
        text = text.replace(repr(_MARK.format(i)), f"data_url({str(path)!r}, {mime!r})")
    return text


_DATA_URL_PY = (
    "def data_url(path, mime):\n"
    '    """A saved copy of an image the panel sent, as the data URL it sent."""\n'
    '    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")\n\n\n'
)


def _header(client: Any, key: tuple[str, str | None], files: list[tuple[Path, str]], note: str) -> str:
    lines = [note] if note else []
    if getattr(client, "backend", "") == BackendKind.LOCAL:
        lines.append(
            f"# vizlab's built-in backend at {client.endpoint} (served by the kernel that started it: keep it running)."
        )
        if key[1] is not None:
            lines.append(f"# It accepts any key: {key[0]} overrides the default {key[1]!r}.")
        else:
            lines.append(f"# Set {key[0]} to the key you gave connect(local_options=...).")
    else:
        lines.append(f"# Set {key[0]} first; the key is never written here.")
    if files:
        lines.append(f"# Images are read from the copies the panel saved in {files[0][0].parent}.")
    return "".join(f"{line}\n" for line in lines)


def _python(body: dict[str, Any], client: Any, key: tuple[str, str | None], files: list[tuple[Path, str]]) -> tuple[str, str]:
    """``(imports, code)`` of the ``openai`` snippet."""
    args = dict(body)
    stream = bool(args.pop("stream", False))
    args.pop("stream_options", None)
    model = args.pop("model", getattr(client, "deployment", ""))
    endpoint = str(getattr(client, "endpoint", "")).rstrip("/")
    if getattr(client, "backend", "") == BackendKind.OPENAI:
        imports = "from openai import OpenAI"
        make = f"client = OpenAI(base_url={endpoint!r}, api_key={_key_py(*key)})"
    elif getattr(client, "api_version", None) is None:  # Azure's v1 route: the plain OpenAI client
        imports, credential = "from openai import OpenAI", _key_py(*key)
        if getattr(client, "auth", "key") == "entra-id":
            imports = "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\n" + imports
            credential = 'get_bearer_token_provider(DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default")'
        make = f"client = OpenAI(\n    base_url={endpoint + '/openai/v1/'!r},\n    api_key={credential},\n)"
    elif getattr(client, "auth", "key") == "entra-id":
        imports = "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\nfrom openai import AzureOpenAI"
        make = (
            "token_provider = get_bearer_token_provider(\n"
            '    DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"\n)\n'
            f"client = AzureOpenAI(\n    azure_endpoint={endpoint!r},\n    azure_ad_token_provider=token_provider,\n"
            f"    api_version={client.api_version!r},\n)"
        )
    else:
        imports = "from openai import AzureOpenAI"
        make = (
            f"client = AzureOpenAI(\n    azure_endpoint={endpoint!r},\n    api_key={_key_py(*key)},\n"
            f"    api_version={client.api_version!r},\n)"
        )
    kwargs = "".join(f"    {k}={_py_with_files(v, files, 4)},\n" for k, v in args.items())
    call = f"response = client.chat.completions.create(\n    model={model!r},\n{kwargs}"
    if stream:
        call += "    stream=True,\n)\n"
        out = 'for chunk in response:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end="")\nprint()\n'
    else:
        call += ")\n"
        out = "print(response.choices[0].message.content)\n"
    return imports, f"{make}\n{call}{out}"


def _auth_headers(client: Any, key: tuple[str, str | None]) -> tuple[str, str]:
    """``(python dict, curl -H)`` for the key, or an Entra ID token from the environment."""
    if getattr(client, "auth", "key") == "entra-id":  # a token from `az account get-access-token`
        return '{"Authorization": "Bearer " + os.environ["AZURE_OPENAI_AD_TOKEN"]}', '-H "Authorization: Bearer $AZURE_OPENAI_AD_TOKEN"'
    if getattr(client, "backend", "") == BackendKind.OPENAI:
        return f'{{"Authorization": "Bearer " + {_key_py(*key)}}}', f'-H "Authorization: Bearer {_key_sh(*key)}"'
    return f'{{"api-key": {_key_py(*key)}}}', f'-H "api-key: {_key_sh(*key)}"'


def _curl(payload: Any, url: str, header_sh: str, files: list[tuple[Path, str]]) -> str:
    """curl reading the body from a here-document (no argument-length limit for big images)."""
    data = json.dumps(payload, indent=2, ensure_ascii=False)
    # An unquoted here-document expands $, ` and \ : escape them, then put the file reads in.
    data = data.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")
    for i, (path, mime) in enumerate(files):
        read = f"data:{mime};base64,$(base64 < {shlex.quote(str(path))} | tr -d '\\n')"
        data = data.replace(json.dumps(_MARK.format(i)).replace("\\", "\\\\"), f'"{read}"')
    return (
        f"curl -sS --fail-with-body {shlex.quote(url)} \\\n  -H \"Content-Type: application/json\" \\\n"
        f"  {header_sh} \\\n  --data-binary @- <<JSON\n{data}\nJSON\n"
    )


def request_code(
    body: dict[str, Any], client: Any, kind: str = "python", *, full: bool = False,
    image_dir: str | Path | None = None, secrets: Any = (),
) -> str:  # fmt: skip
    """``body`` as a runnable snippet of ``kind`` for ``client``'s endpoint; the key stays in the env.

    ``image_dir``: save the images there and read them back (runs as shown); else ``full=True``
    inlines them and the default shortens them. ``secrets``: the client's key(s), to tell the
    built-in backend's public default key from one that was set.

    >>> class C: backend, endpoint, deployment, api_version, auth = "azure", "https://r.openai.azure.com", "d", "2024-10-21", "key"
    >>> 'os.environ["AZURE_OPENAI_API_KEY"]' in request_code({"model": "d", "messages": []}, C())
    True
    """
    if kind not in CODE_KINDS:
        raise ValueError(f"kind={kind!r} is not a code kind; use one of {', '.join(CODE_KINDS)}")
    files: list[tuple[Path, str]] = []
    note = ""
    if image_dir is not None:
        shown, files = save_images(body, image_dir)
    elif full:
        shown = body
    else:
        shown = elide_data_urls(body)
        if shown != body:
            note = "# Image data is shortened here; request_code(..., image_dir=...) gives code that runs."
    key = _key(client, secrets)
    head = _header(client, key, files, note)
    if kind == "python":
        imports, code = _python(dict(shown), client, key, files)
        if files:
            return f"{head}import base64\nimport os\nfrom pathlib import Path\n\n{imports}\n\n\n{_DATA_URL_PY}{code}"
        return f"{head}import os\n\n{imports}\n\n{code}"
    payload = {k: v for k, v in dict(shown).items() if k not in ("stream", "stream_options")}
    header_py, header_sh = _auth_headers(client, key)
    url = _url(client)
    if kind == "requests":
        imports = "import base64\nimport os\nfrom pathlib import Path\n\nimport requests\n\n\n" + _DATA_URL_PY if files else "import os\n\nimport requests\n\n"
        return (
            f"{head}{imports}payload = {_py_with_files(payload, files)}\n"
            f"response = requests.post(\n    {url!r},\n    headers={header_py},\n    json=payload,\n    timeout=120,\n)\n"
            "response.raise_for_status()\n"
            'print(response.json()["choices"][0]["message"]["content"])\n'
        )
    return head + _curl(payload, url, header_sh, files)
