"""GET /openapi.json: OpenAPI 3.1, generated from the pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shop.schemas import ErrorBody, Health, OrderAccepted, OrderRequest, OrderStatusView, OrderView, ProductView

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref(ErrorBody), "error") for s in statuses}


ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


def _paths() -> dict[str, Any]:
    replayed = {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}}
    return {
        "/orders": {
            "post": {
                "operationId": "placeOrder",
                "summary": "Place an order; answers 201 once it is committed.",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                    }
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(OrderRequest)}}},
                "responses": {
                    "201": _json(_ref(OrderAccepted), "order accepted", replayed),
                    **_errors(400, 413, 415, 422, 429),
                },
            }
        },
        "/orders/{order_id}/status": {
            "get": {
                "operationId": "getOrderStatus",
                "summary": "The order's progress, step by step.",
                "parameters": [ORDER_ID],
                "responses": {"200": _json(_ref(OrderStatusView), "status"), **_errors(404)},
            }
        },
        "/orders/{order_id}": {
            "get": {
                "operationId": "getOrder",
                "summary": "The order with its lines and totals (email masked).",
                "parameters": [ORDER_ID],
                "responses": {"200": _json(_ref(OrderView), "order"), **_errors(404)},
            }
        },
        "/products": {
            "get": {
                "operationId": "listProducts",
                "summary": "The catalog.",
                "responses": {"200": _json({"type": "array", "items": _ref(ProductView)}, "products")},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "responses": {"200": _json(_ref(Health), "alive")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Database and broker reachable.",
                "responses": {"200": _json(_ref(Health), "ready"), "503": _json(_ref(Health), "not ready")},
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(OrderRequest, "validation")] + [
        (m, "serialization") for m in (OrderAccepted, OrderStatusView, OrderView, ProductView, ErrorBody, Health)
    ]
    _, schemas = models_json_schema(models, ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "shop", "version": "1.0.0", "description": "Order processing API."},
        "paths": _paths(),
        "components": {"schemas": schemas.get("$defs", {})},
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """This API described in OpenAPI 3.1."""
    return jsonify(openapi_document())
