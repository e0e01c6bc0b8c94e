"""The OpenAPI document is valid OpenAPI 3.1 and generated from the request models."""

from __future__ import annotations

from openapi_spec_validator import validate

from shop.api.openapi import openapi_document
from shop.schemas import OrderRequest


def test_openapi_document_is_valid() -> None:
    validate(openapi_document())


def test_request_schema_is_the_pydantic_models_own() -> None:
    schema = openapi_document()["components"]["schemas"]["OrderRequest"]
    assert schema["properties"].keys() == OrderRequest.model_json_schema()["properties"].keys()
    assert schema["additionalProperties"] is False
