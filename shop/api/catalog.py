"""The catalog as JSON."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop.extensions import services
from shop.services.queries import list_products

bp = Blueprint("catalog", __name__)


@bp.get("/products")
def products() -> Response:
    """Every product with its price and stock."""
    return jsonify([p.model_dump() for p in list_products(services().db)])
