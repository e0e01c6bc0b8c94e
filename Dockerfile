# One image for every role (web, workers, flower, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SHOP_VAR_DIR=/var/lib/shop

# Fonts for invoices naming customers outside Latin-1 (INVOICE_FONT, INVOICE_FALLBACK_FONT).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-droid-fallback \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
# The runtime lock, every file checked against its hash; then shop itself, built by the locked setuptools.
COPY requirements/run.lock ./requirements/
RUN pip install --require-hashes -r requirements/run.lock
COPY shop ./shop
COPY tasks ./tasks
COPY migrations ./migrations
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --home /var/lib/shop --create-home shop

# Celery refuses to be comfortable as root, and nothing here needs it.
USER shop
EXPOSE 8000 5555
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-", "--no-control-socket", "shop:create_app()"]
