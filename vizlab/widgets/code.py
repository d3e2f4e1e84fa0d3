""""View code": a request body as Python (``openai``), ``requests`` and curl, ready to copy.

The body is the exact one the client sent (``Reply.request``). The key is always read from an
environment variable, never written out (Entra ID clients get the bearer-token form). Base64
image data is shortened unless ``full=True``. Routes and headers follow the Azure OpenAI and
OpenAI REST references (cited beside the code).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from vizlab.widgets.state import elide_data_urls

__all__ = ["request_code", "CODE_KINDS"]

CODE_KINDS = ("python", "requests", "curl")


def _key_var(client: Any) -> str:
    return "OPENAI_API_KEY" if getattr(client, "backend", "") == "openai" else "AZURE_OPENAI_API_KEY"


def _url(client: Any) -> str:
    endpoint = str(getattr(client, "endpoint", "")).rstrip("/")
    if getattr(client, "backend", "") == "openai":
        return f"{endpoint}/chat/completions"
    if getattr(client, "api_version", None) is None:  # Azure's v1 route: no api-version, model in the body
        return f"{endpoint}/openai/v1/chat/completions"
    return (
        # Azure OpenAI REST reference: POST {endpoint}/openai/deployments/{deployment}/chat/completions
        # ?api-version=..., header api-key (learn.microsoft.com/azure/ai-foundry/openai/reference, read 2026).
        f"{endpoint}/openai/deployments/{client.deployment}/chat/completions?api-version={client.api_version}"
    )


def _py_literal(value: Any) -> str:
    """JSON as a Python literal (true/false/null spelled the Python way)."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace(": true", ": True").replace(": false", ": False").replace(": null", ": None")


def request_code(body: dict[str, Any], client: Any, kind: str = "python", *, full: bool = False) -> str:
    """``body`` as a runnable snippet of ``kind`` for ``client``'s endpoint; the key stays in the env.

    >>> class C: backend, endpoint, deployment, api_version, auth = "azure", "https://r.openai.azure.com", "d", "2024-10-21", "key"
    >>> "os.environ[\\"AZURE_OPENAI_API_KEY\\"]" in request_code({"model": "d", "messages": []}, C())
    True
    """
    if kind not in CODE_KINDS:
        raise ValueError(f"kind={kind!r} is not a code kind; use one of {', '.join(CODE_KINDS)}")
    shown = dict(body if full else elide_data_urls(body))
    note = "" if full else "# Image data is shortened here; request_code(..., full=True) gives it whole.\n"
    key_var = _key_var(client)
    entra = getattr(client, "auth", "key") == "entra-id"
    backend = getattr(client, "backend", "")
    endpoint = str(getattr(client, "endpoint", "")).rstrip("/")
    if kind == "python":
        args = dict(shown)
        stream = bool(args.pop("stream", False))
        args.pop("stream_options", None)
        model = args.pop("model", getattr(client, "deployment", ""))
        if backend == "openai":
            make = f'client = OpenAI(base_url="{endpoint}", api_key=os.environ["{key_var}"])'
            imports = "from openai import OpenAI"
        elif getattr(client, "api_version", None) is None:  # Azure's v1 route: the plain OpenAI client
            imports = "from openai import OpenAI"
            credential = f'os.environ["{key_var}"]'
            if entra:
                imports = "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\n" + imports
                credential = 'get_bearer_token_provider(DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default")'
            make = f'client = OpenAI(\n    base_url="{endpoint}/openai/v1/",\n    api_key={credential},\n)'
        elif entra:
            imports = "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\nfrom openai import AzureOpenAI"
            make = (
                "token_provider = get_bearer_token_provider(\n"
                '    DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"\n)\n'
                f'client = AzureOpenAI(\n    azure_endpoint="{endpoint}",\n    azure_ad_token_provider=token_provider,\n'
                f'    api_version="{client.api_version}",\n)'
            )
        else:
            imports = "from openai import AzureOpenAI"
            make = (
                f'client = AzureOpenAI(\n    azure_endpoint="{endpoint}",\n    api_key=os.environ["{key_var}"],\n'
                f'    api_version="{client.api_version}",\n)'
            )
        kwargs = ",\n".join(f"    {k}={_py_literal(v)}".replace("\n", "\n    ") for k, v in args.items())
        call = f'response = client.chat.completions.create(\n    model="{model}",\n{kwargs},\n)'
        out = "print(response.choices[0].message.content)"
        if stream:
            call = call.replace(",\n)", ",\n    stream=True,\n)")
            out = "for chunk in response:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end=\"\")"
        return f"{note}import os\n\n{imports}\n\n{make}\n{call}\n{out}\n"
    payload = dict(shown)
    payload.pop("stream", None)
    payload.pop("stream_options", None)
    if backend == "openai" or entra:
        header_py = f'{{"Authorization": "Bearer " + os.environ["{key_var}"]}}'
        header_sh = f'-H "Authorization: Bearer ${key_var}"'
    else:
        header_py = f'{{"api-key": os.environ["{key_var}"]}}'
        header_sh = f'-H "api-key: ${key_var}"'
    if entra:  # a token from `az account get-access-token`, not a key
        key_var = "AZURE_OPENAI_AD_TOKEN"
        header_py = '{"Authorization": "Bearer " + os.environ["AZURE_OPENAI_AD_TOKEN"]}'
        header_sh = '-H "Authorization: Bearer $AZURE_OPENAI_AD_TOKEN"'
    url = _url(client)
    if kind == "requests":
        return (
            f"{note}import os\n\nimport requests\n\n"
            f"payload = {_py_literal(payload)}\n"
            f'response = requests.post(\n    "{url}",\n    headers={header_py},\n    json=payload,\n    timeout=120,\n)\n'
            "response.raise_for_status()\n"
            'print(response.json()["choices"][0]["message"]["content"])\n'
        )
    data = json.dumps(payload, indent=2, ensure_ascii=False)
    note_sh = note.replace("request_code(..., full=True)", "request_code(..., full=True) in Python")
    return (
        f"{note_sh}curl {shlex.quote(url)} \\\n  -H \"Content-Type: application/json\" \\\n  {header_sh} \\\n"
        f"  -d {shlex.quote(data)}\n"
    )
