# wxbot: the webhook and API server (`wxbot serve`); the same image runs `wxbot migrate` and
# `wxbot scheduler` (see docker-compose.yml). Configuration comes from the environment (see .env.example).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system wxbot \
    && useradd --system --gid wxbot --home-dir /app --create-home --shell /usr/sbin/nologin wxbot

# The distribution ships bot, handlers, flows, storage, scheduler and migrations (Alembic's
# env.py, script.py.mako and versions/ travel as package data), so `wxbot migrate` works from
# the installed package; the source tree is not kept in the image.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY flows ./flows
COPY storage ./storage
COPY scheduler ./scheduler
COPY migrations ./migrations
RUN pip install . && rm -rf /src

# The working directory is the user's own: in demo mode (no WECHAT_APPSECRET) the service keeps
# its generated ADMIN_TOKEN and PII_KEY under ./var; set both in production.
WORKDIR /app
USER wxbot

EXPOSE 8000

# slim has no curl: ask /healthz with the interpreter that is already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["wxbot", "serve", "--host", "0.0.0.0", "--port", "8000"]
