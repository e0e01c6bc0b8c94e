"""Request and response models: they validate input and generate /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from shop.countries import known_country
from shop.free_text import LongText, OptionalText, ShortText, Text
from shop.integrations.payment import TEST_TOKENS
from shop.public_errors import PublicErrorCode

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
PaymentToken = Literal[TEST_TOKENS]  # type: ignore[valid-type]

MAX_LINES = 50
MAX_QUANTITY = 100


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Customer(StrictModel):
    email: EmailStr
    name: Text


class Item(StrictModel):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class ShippingAddress(StrictModel):
    line1: Text
    line2: OptionalText = ""
    city: Text
    postal_code: ShortText
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(known_country)] = Field(
        description="ISO 3166-1 alpha-2 country code"
    )


class OrderRequest(StrictModel):
    """The body of POST /orders."""

    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: ShippingAddress
    payment_token: PaymentToken = Field(description="tok_visa succeeds; tok_chargeDeclined is declined")
    priority: Literal["standard", "express"] = "standard"


class ProductUpdate(StrictModel):
    """The body of PUT /admin/api/products/<sku>."""

    name: Text
    price_cents: int = Field(ge=0, le=100_000_000)
    stock: int = Field(ge=0, le=10_000_000)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"
    description: LongText = ""


class OrderAccepted(BaseModel):
    success: Literal[True] = True
    message: str = "Order received"
    order_id: str
    task_id: str
    status: str
    status_url: str


class StepError(BaseModel):
    """A step's failure as the public may see it: a code from shop.public_errors and its message."""

    code: PublicErrorCode
    message: str


class StepView(BaseModel):
    name: str
    status: str
    attempts: int
    error: StepError | None
    started_at: datetime | None
    finished_at: datetime | None


class OrderStatusView(BaseModel):
    order_id: str
    status: str
    processing_status: Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]
    failure_reason: str | None
    updated_at: datetime
    steps: list[StepView]


class LineView(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    total_cents: int


class PublicCustomer(BaseModel):
    """Only the masked email: the full name stays for the admin."""

    email: str


class PublicAddress(BaseModel):
    """Where the order goes, coarsely: no street, no postal code, no recipient."""

    city: str
    country: str


class OrderView(BaseModel):
    order_id: str
    status: str
    failure_reason: str | None
    customer: PublicCustomer
    shipping_address: PublicAddress
    priority: str
    lines: list[LineView]
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime
    invoice_url: str | None


class ProductView(BaseModel):
    sku: str
    name: str
    price_cents: int
    currency: str
    stock: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[Any] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
